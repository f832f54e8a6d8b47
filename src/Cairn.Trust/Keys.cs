using System.Text.Json;
using System.Text.Json.Serialization;
using Cairn.Core;
using NSec.Cryptography;

namespace Cairn.Trust;

[JsonConverter(typeof(CamelCaseEnumConverter<KeyKind>))]
public enum KeyKind
{
    Root,
    Publishing,

    /// <summary>Signs build attestations only (docs/format/provenance.md): a gateway site's key, or a host's local builder key.</summary>
    Builder,
}

/// <summary>A private key file (0600): the Ed25519 seed, and for a publishing key the certificate the root gave it.</summary>
public sealed record PrivateKeyFile(int Format, KeyKind Kind, string Algorithm, string KeyId, string PublicKey, string PrivateKey, Envelope? Certificate = null, string? RootPublicKey = null);

/// <summary>A public key file: what clients are given (the root's) to trust a repository.</summary>
public sealed record PublicKeyFile(int Format, KeyKind Kind, string Algorithm, string KeyId, string PublicKey);

/// <summary>An Ed25519 key pair in memory.</summary>
public sealed class KeyPair : IDisposable
{
    internal KeyPair(Key key, KeyKind kind, Envelope? certificate, string? rootPublicKey = null)
    {
        RootPublicKey = rootPublicKey;
        Private = key;
        Kind = kind;
        Certificate = certificate;
        KeyId = Keys.Fingerprint(key.PublicKey);
    }

    public Key Private { get; }

    public PublicKey Public => Private.PublicKey;

    public KeyKind Kind { get; }

    public string KeyId { get; }

    public Envelope? Certificate { get; }

    /// <summary>The public key of the root that certified this publishing key (base64), recorded by cairn key certify.</summary>
    public string? RootPublicKey { get; }

    public void Dispose() => Private.Dispose();
}

public static class Keys
{
    private static readonly SignatureAlgorithm Ed25519 = SignatureAlgorithm.Ed25519;
    public const string FingerprintPrefix = "ed25519:";
    private const UnixFileMode PrivateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>A key's id: "ed25519:" and the SHA-256 of its raw public key, in hex.</summary>
    public static string Fingerprint(PublicKey key) => FingerprintPrefix + Envelope.Sha256Hex(key.Export(KeyBlobFormat.RawPublicKey));

    public static string Encode(PublicKey key) => Convert.ToBase64String(key.Export(KeyBlobFormat.RawPublicKey));

    public static PublicKey? DecodePublic(string? base64)
    {
        var raw = Envelope.TryBase64(base64);
        return raw is not null && PublicKey.TryImport(Ed25519, raw, KeyBlobFormat.RawPublicKey, out var key) ? key : null;
    }

    public static KeyPair Generate(KeyKind kind) =>
        new(Key.Create(Ed25519, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }), kind, null);

    /// <summary>A key pair from its 32-byte Ed25519 seed (RFC 8032's private key): for test vectors and key files.</summary>
    public static KeyPair FromSeed(ReadOnlySpan<byte> seed, KeyKind kind) =>
        Key.TryImport(Ed25519, seed, KeyBlobFormat.RawPrivateKey, out var key, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }) && key is not null
            ? new KeyPair(key, kind, null)
            : throw new CairnException(ErrorCode.TrustKeyInvalid, "not a 32-byte Ed25519 seed");

    public static bool IsFingerprint(string text) =>
        text.StartsWith(FingerprintPrefix, StringComparison.Ordinal) && text.Length == FingerprintPrefix.Length + 64;

    /// <summary>Writes the private key (mode 0600 from creation, never world-readable) and returns its path.</summary>
    public static void WritePrivate(KeyPair pair, string path, Envelope? certificate = null, PublicKey? root = null)
    {
        var file = new PrivateKeyFile(1, pair.Kind, "ed25519", pair.KeyId, Encode(pair.Public),
            Convert.ToBase64String(pair.Private.Export(KeyBlobFormat.RawPrivateKey)), certificate ?? pair.Certificate,
            root is null ? pair.RootPublicKey : Encode(root));
        var bytes = CairnJson.SerializeIndented(file, TrustJson.Default.PrivateKeyFile);
        var tmp = path + ".tmp";
        File.Delete(tmp);
        using (var stream = new FileStream(tmp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = PrivateMode }))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }

        File.Move(tmp, path, overwrite: true);
    }

    public static void WritePublic(PublicKey key, KeyKind kind, string path) =>
        File.WriteAllBytes(path, CairnJson.SerializeIndented(new PublicKeyFile(1, kind, "ed25519", Fingerprint(key), Encode(key)), TrustJson.Default.PublicKeyFile));

    public static KeyPair ReadPrivate(string path, KeyKind? expected = null)
    {
        PrivateKeyFile? file;
        try
        {
            file = JsonSerializer.Deserialize(File.ReadAllBytes(path), TrustJson.Default.PrivateKeyFile);
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw Invalid(path, e.Message);
        }

        if ((File.GetUnixFileMode(path) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
        {
            // Like ssh: a private key others can read is already lost.
            throw new CairnException(ErrorCode.TrustKeyInvalid, $"private key '{path}' is readable by others", $"chmod 600 '{path}' (and consider the key compromised)");
        }

        var raw = Envelope.TryBase64(file?.PrivateKey);
        if (file is null || raw is null || file.Algorithm != "ed25519"
            || !Key.TryImport(Ed25519, raw, KeyBlobFormat.RawPrivateKey, out var imported, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport })
            || imported is not { } key)
        {
            throw Invalid(path, "not a cairn private key file");
        }

        if (expected is { } k && file.Kind != k)
        {
            key.Dispose();
            throw new CairnException(ErrorCode.TrustKeyInvalid, $"'{path}' is a {file.Kind.ToString().ToLowerInvariant()} key, not a {k.ToString().ToLowerInvariant()} key",
                k == KeyKind.Root ? "give the root key (cairn key generate --root)" : "give a publishing key certified by the root (cairn key certify)");
        }

        return new KeyPair(key, file.Kind, file.Certificate, file.RootPublicKey);
    }

    /// <summary>A root public key from a public or private key file.</summary>
    public static PublicKey ReadPublic(string path)
    {
        PublicKeyFile? file;
        try
        {
            file = JsonSerializer.Deserialize(File.ReadAllBytes(path), TrustJson.Default.PublicKeyFile);
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw Invalid(path, e.Message);
        }

        return DecodePublic(file?.PublicKey) ?? throw Invalid(path, "no ed25519 public key in it");
    }

    private static CairnException Invalid(string path, string why) =>
        new(ErrorCode.TrustKeyInvalid, $"cannot read key '{path}': {why}", "give a key file written by 'cairn key generate' (or a root fingerprint ed25519:<64 hex>)");

    /// <summary>The root certifies a publishing key until <paramref name="expires"/>.</summary>
    public static Envelope Certify(KeyPair root, PublicKey publishing, string name, DateTimeOffset notBefore, DateTimeOffset expires, IReadOnlyList<string> repositories)
    {
        if (root.Kind != KeyKind.Root) throw new CairnException(ErrorCode.TrustKeyInvalid, "only a root key certifies publishing keys", "give --root ROOT_KEY");
        return Envelope.Create(Envelope.CertificateType,
            new PublishingCertificate(1, Fingerprint(publishing), Encode(publishing), name, notBefore, expires, repositories), TrustJson.Default.PublishingCertificate, root);
    }

    /// <summary>A revocation list adding <paramref name="keyIds"/> to <paramref name="previous"/>, with the next serial.</summary>
    public static Envelope Revoke(KeyPair root, RevocationList? previous, IEnumerable<string> keyIds, string? reason, DateTimeOffset now)
    {
        if (root.Kind != KeyKind.Root) throw new CairnException(ErrorCode.TrustKeyInvalid, "only a root key signs revocations", "give --root ROOT_KEY");
        var revoked = (previous?.Revoked ?? []).ToList();
        foreach (var id in keyIds.Where(id => revoked.All(r => r.KeyId != id))) revoked.Add(new RevokedKey(id, now, reason));
        return Envelope.Create(Envelope.RevocationsType, new RevocationList(1, (previous?.Serial ?? 0) + 1, now, revoked), TrustJson.Default.RevocationList, root);
    }

    /// <summary>Reads a revocation list checked against the root; null when it is not signed by it.</summary>
    public static RevocationList? ReadRevocations(byte[] bytes, PublicKey root)
    {
        try
        {
            var env = JsonSerializer.Deserialize(bytes, TrustJson.Default.Envelope);
            if (env is null || env.PayloadType != Envelope.RevocationsType || !env.IsSignedBy(root)) return null;
            return env.Read(TrustJson.Default.RevocationList, "revocation list");
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
