using System.Security.Cryptography;
using System.Text;
using Cairn.Core;

namespace Cairn.Coordination;

/// <summary>
/// Site tokens look like <c>cairn_&lt;id&gt;_&lt;secret&gt;</c>: the id finds the row, the secret proves possession.
/// Only SHA-256 of the whole token is stored. A plain hash suffices (no bcrypt/argon2) because the secret is 256
/// random bits, not a password a person chose: there is nothing to guess.
/// </summary>
public static class SiteTokens
{
    public const string Prefix = "cairn_";

    public static (string Id, string Token) Generate()
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var secret = Base64Url(RandomNumberGenerator.GetBytes(32));
        return (id, $"{Prefix}{id}_{secret}");
    }

    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    /// <summary>The token's id, or throws <see cref="ErrorCode.TokenInvalid"/> when it is not shaped like a token.</summary>
    public static string ParseId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        token = token.Trim();
        if (token.StartsWith(Prefix, StringComparison.Ordinal))
        {
            var rest = token[Prefix.Length..];
            var underscore = rest.IndexOf('_', StringComparison.Ordinal);
            if (underscore == 16 && rest.Length > 17)
            {
                return rest[..16];
            }
        }

        throw Invalid();
    }

    /// <summary>Constant-time comparison of a presented token with the stored hash.</summary>
    public static bool Matches(string token, string storedHash) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Hash(token.Trim())), Encoding.ASCII.GetBytes(storedHash));

    internal static CairnException Invalid() => new(ErrorCode.TokenInvalid,
        "the site token is not valid (unknown, mistyped or truncated)",
        "check the token file passed with --token-file; the gateway's operator can issue a new token");

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
