using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Cairn.Core;
using NSec.Cryptography;

namespace Cairn.Trust;

/// <summary>One signature of an envelope: the signer's key id (its fingerprint) and the Ed25519 signature.</summary>
public sealed record EnvelopeSignature(string KeyId, string Sig);

/// <summary>
/// A signed statement (docs/format/repository.md §6.1): the payload is kept as the exact bytes that were signed
/// (base64), so no JSON canonicalisation is needed, and the signature covers the payload type too (no statement
/// of one kind can be replayed as another).
/// </summary>
public sealed record Envelope(string PayloadType, string Payload, IReadOnlyList<EnvelopeSignature> Signatures)
{
    public const string ManifestType = "application/vnd.cairn.manifest-signature+json";
    public const string CertificateType = "application/vnd.cairn.publishing-certificate+json";
    public const string RevocationsType = "application/vnd.cairn.revocations+json";

    /// <summary>What Ed25519 signs: a fixed prefix, the payload type and the payload (pre-authentication encoding).</summary>
    public static byte[] SignedBytes(string payloadType, byte[] payload)
    {
        var header = Encoding.UTF8.GetBytes($"cairn-sig-v1 {payloadType.Length} {payloadType} {payload.Length} ");
        return [.. header, .. payload];
    }

    public static Envelope Create<T>(string payloadType, T statement, JsonTypeInfo<T> type, KeyPair signer)
    {
        var payload = JsonSerializer.SerializeToUtf8Bytes(statement, type);
        var sig = SignatureAlgorithm.Ed25519.Sign(signer.Private, SignedBytes(payloadType, payload));
        return new Envelope(payloadType, Convert.ToBase64String(payload), [new EnvelopeSignature(signer.KeyId, Convert.ToBase64String(sig))]);
    }

    /// <summary>True when one of the signatures is a valid signature of <paramref name="key"/>.</summary>
    public bool IsSignedBy(PublicKey key)
    {
        var id = Keys.Fingerprint(key);
        byte[] payload;
        try
        {
            payload = Convert.FromBase64String(Payload);
        }
        catch (FormatException)
        {
            return false;
        }

        var signed = SignedBytes(PayloadType, payload);
        foreach (var s in Signatures.Where(s => s.KeyId == id))
        {
            var sig = TryBase64(s.Sig);
            if (sig is not null && SignatureAlgorithm.Ed25519.Verify(key, signed, sig)) return true;
        }

        return false;
    }

    /// <summary>The statement, read only after <see cref="IsSignedBy"/> held.</summary>
    public T Read<T>(JsonTypeInfo<T> type, string what) =>
        JsonSerializer.Deserialize(Convert.FromBase64String(Payload), type)
        ?? throw new CairnException(ErrorCode.TrustSignatureInvalid, $"{what}: empty statement", "the signature file is damaged");

    internal static byte[]? TryBase64(string? text)
    {
        if (text is null) return null;
        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    public static string Sha256Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}

/// <summary>What a root key says about a publishing key: which key, for which repositories, and until when.</summary>
/// <param name="Repositories">Repository names the key may sign; empty: any repository that trusts the root.</param>
public sealed record PublishingCertificate(int Format, string KeyId, string PublicKey, string Name, DateTimeOffset NotBefore, DateTimeOffset Expires, IReadOnlyList<string> Repositories);

/// <summary>The statement of manifest.sig / revisions/N.sig, signed by a publishing key.</summary>
public sealed record ManifestStatement(int Format, string Repository, long Revision, DateTimeOffset Timestamp, DateTimeOffset Expires, long Length, string Sha256);

/// <summary>
/// manifest.sig and revisions/N.sig: the signed statement, the publishing key's certificate (an envelope signed by
/// the root) and the root's public key, so a client configured with the root's fingerprint alone can check it.
/// </summary>
public sealed record SignatureFile(int Format, Envelope Statement, Envelope Certificate, string RootPublicKey);

public sealed record RevokedKey(string KeyId, DateTimeOffset At, string? Reason);

/// <summary>revocations.json's statement, signed by the root. Lists are cumulative; a higher serial replaces a lower one.</summary>
public sealed record RevocationList(int Format, long Serial, DateTimeOffset Issued, IReadOnlyList<RevokedKey> Revoked);
