using Cairn.Core;
using Cairn.Core.Transparency;
using Cairn.Repository;
using Cairn.Repository.Transparency;
using Cairn.Trust.Transparency;
using NSec.Cryptography;

namespace Cairn.Trust;

/// <summary>Signs revisions with a publishing key that carries the root's certificate (docs/format/repository.md §6.1).</summary>
public sealed class ManifestSigner : IManifestSigner, ICheckpointSigner, IDisposable
{
    private readonly KeyPair _key;
    private readonly PublicKey _root;
    private readonly TimeProvider _time;

    public ManifestSigner(KeyPair key, TimeProvider time, TimeSpan? lifetime = null)
    {
        _key = key;
        _time = time;
        Lifetime = lifetime ?? DefaultLifetime;
        if (key.Kind != KeyKind.Publishing || key.Certificate is null || Keys.DecodePublic(key.RootPublicKey) is not { } root)
        {
            key.Dispose();
            throw new CairnException(ErrorCode.TrustKeyInvalid, "the signing key is not a certified publishing key",
                "generate one with 'cairn key generate --publishing' and certify it with 'cairn key certify'");
        }

        // The publisher need not hold the root: the envelope carries the root's public key and clients check that
        // against the root they trust; here only the key file's consistency is checked.
        _root = root;
        var cert = ReadCertificate(key.Certificate);
        if (cert.KeyId != key.KeyId || !key.Certificate.IsSignedBy(_root))
        {
            key.Dispose();
            throw new CairnException(ErrorCode.TrustKeyInvalid, "the signing key's certificate is not for this key or not signed by its root",
                "certify this key again with 'cairn key certify'");
        }

        Certificate = cert;
    }

    /// <summary>Manifests expire this long after they are signed unless re-signed (cairn key resign) or superseded.</summary>
    public static TimeSpan DefaultLifetime { get; } = TimeSpan.FromDays(7);

    public TimeSpan Lifetime { get; }

    public PublishingCertificate Certificate { get; }

    public static ManifestSigner Load(string path, TimeProvider time, TimeSpan? lifetime = null) =>
        new(Keys.ReadPrivate(path, KeyKind.Publishing), time, lifetime);

    internal static PublishingCertificate ReadCertificate(Envelope env) =>
        env.PayloadType == Envelope.CertificateType
            ? env.Read(TrustJson.Default.PublishingCertificate, "certificate")
            : throw new CairnException(ErrorCode.TrustKeyInvalid, "the key's certificate is not a publishing certificate", "certify the key again");

    public byte[] Sign(byte[] manifestBytes, Manifest manifest)
    {
        var now = _time.GetUtcNow();
        if (now >= Certificate.Expires)
        {
            // A signature clients will refuse is worse than none: fail the commit before anything is written.
            throw new CairnException(ErrorCode.TrustCertificateExpired, $"the publishing key's certificate expired at {Certificate.Expires:u}",
                "certify a new publishing key with the root key (cairn key certify) and sign with it");
        }

        var expires = now + Lifetime;
        if (expires > Certificate.Expires) expires = Certificate.Expires;
        var statement = new ManifestStatement(1, manifest.Repository, manifest.Revision, now, expires, manifestBytes.Length, Envelope.Sha256Hex(manifestBytes));
        var file = new SignatureFile(1, Envelope.Create(Envelope.ManifestType, statement, TrustJson.Default.ManifestStatement, _key), _key.Certificate!, Keys.Encode(_root));
        return CairnJson.Serialize(file, TrustJson.Default.SignatureFile);
    }

    /// <summary>Signs the publication log's checkpoint with the same key (a C2SP Ed25519 note signature).</summary>
    public NoteSignature SignNote(string keyName, string text) => NoteKeys.Sign(_key.Private, keyName, text);

    public void Dispose() => _key.Dispose();
}
