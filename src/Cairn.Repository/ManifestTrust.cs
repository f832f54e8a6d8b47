using Cairn.Core;

namespace Cairn.Repository;

/// <summary>What a manifest signature vouches for (docs/format/repository.md §6.1): checked before the manifest is read.</summary>
public sealed record SignedManifest(string Repository, long Revision, DateTimeOffset Timestamp, DateTimeOffset Expires, long Length, string Sha256);

/// <summary>Signs a revision at commit (a directory repository with a publishing key); implemented by Cairn.Trust.</summary>
public interface IManifestSigner
{
    /// <summary>The detached signature envelope (revisions/N.sig, manifest.sig) of the exact manifest bytes.</summary>
    byte[] Sign(byte[] manifestBytes, Manifest manifest);
}

/// <summary>A revision store whose head can be signed again with a fresh expiry (<c>cairn key resign</c>, from cron).</summary>
public interface IResignableRevisionStore
{
    /// <summary>
    /// Under the commit lock (a concurrent publish must not get its new head's signature replaced by the old one's):
    /// signs the head's exact bytes again and replaces revisions/N.sig and manifest.sig. The manifest never changes.
    /// </summary>
    Task<Manifest> ResignHeadAsync(IManifestSigner signer, CancellationToken ct);
}

/// <summary>Checks signed manifests for a remote client that trusts a root key; implemented by Cairn.Trust.</summary>
public interface IManifestVerifier
{
    /// <summary>Most bytes read of a signature envelope or revocation list.</summary>
    long MaxEnvelopeBytes { get; }

    /// <summary>
    /// Checks an envelope's signatures, certificate, revocation and (for the head) expiry; throws a coded trust error.
    /// Nothing of the manifest has been downloaded yet (fast-forward attacks stop here).
    /// </summary>
    SignedManifest CheckEnvelope(byte[] envelope, string repository, long? revision, string where);

    /// <summary>Checks the manifest bytes against what was signed (length, SHA-256, repository, revision).</summary>
    Manifest CheckManifest(SignedManifest statement, byte[] manifestBytes, string where);

    /// <summary>Refuses rollback and equivocation against the last head accepted, then records this one.</summary>
    void AcceptHead(Manifest manifest, string where);

    /// <summary>Takes a root-signed revocation list from the server if it is newer than the one known.</summary>
    void UseRevocations(byte[] list, string where);
}
