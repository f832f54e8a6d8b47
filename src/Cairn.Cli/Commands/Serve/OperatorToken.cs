using System.CommandLine;
using Cairn.Core;

namespace Cairn.Cli.Commands.Serve;

/// <summary>The dashboard's options shared by cairn serve and cairn gateway, and the operator's secret read from --operator-token-file.</summary>
internal static class OperatorToken
{
    public static Option<string?> BasePathOption() => new("--base-path")
    {
        Description = "Path prefix a reverse proxy serves this under, e.g. /cairn, for the dashboard's links (default: X-Forwarded-Prefix, else none)",
    };

    public static Option<string?> TokenFileOption() => new("--operator-token-file")
    {
        Description = "A private file holding the operator's secret (32+ characters): enables the dashboard's sign-in (and, on the gateway, its actions: revoke a token, promote, re-run)",
    };

    public static Option<bool> RequireTokenOption() => new("--require-token")
    {
        Description = "Every dashboard page needs the operator's sign-in (or the token as a bearer header); the repository's files and the gateway's API are unaffected",
    };

    /// <summary>--base-path without a trailing slash; null when absent or just "/".</summary>
    public static string? BasePath(string? value) => value?.TrimEnd('/') is { Length: > 0 } prefix ? prefix : null;

    public static async Task<string?> ReadAsync(string? path, CancellationToken ct)
    {
        if (path is null) return null;
        string text;
        try
        {
            text = (await File.ReadAllTextAsync(path, ct)).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CairnException(ErrorCode.Usage, $"cannot read the operator token file {path}: {e.Message}", "pass a readable file, e.g. head -c 32 /dev/urandom | base64 > operator.token");
        }

        return text.Length >= 32 ? text
            : throw new CairnException(ErrorCode.Usage, $"the operator token in {path} is shorter than 32 characters",
                "write a random secret into it, e.g. head -c 32 /dev/urandom | base64 > operator.token");
    }

    /// <summary>--require-token needs the token file: a sign-in nobody can pass would lock every page.</summary>
    public static bool RequireSignIn(bool required, string? tokenFile) =>
        !required || tokenFile is not null ? required
            : throw new CairnException(ErrorCode.Usage, "--require-token needs --operator-token-file", "pass the file holding the operator's secret too");
}
