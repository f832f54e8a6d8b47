using System.Globalization;
using System.Runtime.CompilerServices;
using Cairn.Core;
using Cairn.Repository.Transparency;

namespace Cairn.Repository.S3;

/// <summary>
/// Revisions in a bucket, in the directory repository's layout: revisions/N.json (immutable), manifest.json as
/// the head, written last. Commits are serialised by the commit lease (<see cref="S3Lock"/>) and, on servers that
/// honour conditional writes (AWS S3, MinIO, Ceph RGW ≥ 18, R2), also by If-None-Match on the revision file and
/// If-Match on the head's ETag; see docs/adr/0007-s3-backend.md for what holds where.
/// </summary>
public sealed class S3RevisionStore : WritableRevisionStore, IResignableRevisionStore
{
    private readonly S3Calls _s3;
    private readonly TimeProvider _time;
    private readonly TimeSpan _lockTimeout;

    internal S3RevisionStore(S3Calls s3, RepositoryConfig config, TimeProvider time, TimeSpan lockTimeout)
    {
        _s3 = s3;
        Config = config;
        _time = time;
        _lockTimeout = lockTimeout;
    }

    public const string Head = RepositoryFiles.Head;

    /// <summary>The head's detached signature, written after the head (format §6.1).</summary>
    public const string HeadSignature = RepositoryFiles.HeadSignature;

    /// <summary>Signs each revision at commit (revisions/N.sig, manifest.sig; format §6.1); null: unsigned.</summary>
    public IManifestSigner? Signer { get; init; }

    public override RepositoryConfig Config { get; }

    public static string RevisionKey(long revision) => RepositoryFiles.Revision(revision);

    private static string SignatureKey(long revision) => RepositoryFiles.RevisionSignature(revision);

    public override async ValueTask<Manifest?> ReadHeadAsync(CancellationToken ct) => (await ReadAsync(Head, ct).ConfigureAwait(false))?.Manifest;

    public override async ValueTask<Manifest?> ReadRevisionAsync(long revision, CancellationToken ct) =>
        (await ReadAsync(RevisionKey(revision), ct).ConfigureAwait(false))?.Manifest;

    private async Task<(Manifest Manifest, string ETag)?> ReadAsync(string key, CancellationToken ct) =>
        await _s3.GetAsync(key, ct).ConfigureAwait(false) is { } got
            ? (CairnJson.Deserialize(got.Bytes, CoreJson.Default.Manifest, $"manifest '{_s3.Location.Display}{key}'"), got.ETag)
            : null;

    public override async IAsyncEnumerable<Manifest> ListRevisionsAsync([EnumeratorCancellation] CancellationToken ct)
    {
        // As in the directory store: a revision above the head is from a commit that did not finish.
        var head = (await ReadHeadAsync(ct).ConfigureAwait(false))?.Revision ?? long.MaxValue;
        foreach (var key in (await _s3.ListAsync("revisions/", ct).ConfigureAwait(false)).Where(k => k.EndsWith(".json", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            if ((await ReadAsync(key, ct).ConfigureAwait(false))?.Manifest is { } m && m.Revision <= head) yield return m;
        }
    }

    protected override Task<IAsyncDisposable> LockCommitAsync(CancellationToken ct) => S3Lock.AcquireAsync(_s3, "commit", exclusive: true, _lockTimeout, _time, ct);

    protected override Task<IAsyncDisposable> LockObjectsAsync(bool exclusive, CancellationToken ct) => S3Lock.AcquireAsync(_s3, "objects", exclusive, _lockTimeout, _time, ct);

    protected override async ValueTask CommitAsync(Manifest manifest, CancellationToken ct)
    {
        manifest = manifest with { Packs = await S3PackObjectStore.ListPacksAsync(_s3, ct).ConfigureAwait(false) };
        var bytes = CairnJson.Serialize(manifest, CoreJson.Default.Manifest);
        var head = await ReadAsync(Head, ct).ConfigureAwait(false);
        var headRevision = head?.Manifest.Revision ?? 0;
        var key = RevisionKey(manifest.Revision);

        // Signed before anything is written, as in the directory store: a refusing signer fails the commit cleanly,
        // and a signed repository never gets an unsigned head.
        var signature = Signer?.Sign(bytes, manifest);
        if (signature is null && await _s3.GetAsync(HeadSignature, ct).ConfigureAwait(false) is not null)
        {
            throw new CairnException(ErrorCode.Usage, $"{_s3.Location.Display} is signed (manifest.sig): a new revision must be signed too",
                "pass --signing-key FILE or set CAIRN_SIGNING_KEY (docs/security.md)");
        }

        if (!await _s3.PutAsync(key, bytes, ct, ifNoneMatch: true).ConfigureAwait(false))
        {
            // The revision exists. Above the head it is left by a commit that died before moving the head (we hold
            // the commit lease, so nobody else is writing it): overwrite. At or below the head, someone else won.
            if (manifest.Revision <= headRevision) throw Conflict(manifest.Revision);
            await _s3.PutAsync(key, bytes, ct).ConfigureAwait(false);
        }
        else if (manifest.Revision <= headRevision)
        {
            // A server that ignores If-None-Match let us overwrite a committed revision: only possible without the lease.
            throw Conflict(manifest.Revision);
        }

        // The revision's signature once the revision is ours (a losing writer must not replace the winner's), before
        // the head: format §6.1's order.
        if (signature is not null) await _s3.PutAsync(SignatureKey(manifest.Revision), signature, ct).ConfigureAwait(false);

        // The head last, and only if it is still the one this commit was computed from.
        var moved = head is { } h
            ? await _s3.PutAsync(Head, bytes, ct, ifMatch: h.ETag).ConfigureAwait(false)
            : await _s3.PutAsync(Head, bytes, ct, ifNoneMatch: true).ConfigureAwait(false);
        if (!moved) throw Conflict(manifest.Revision);

        // The head's signature last; a reader that sees it before the new head falls back to revisions/N.sig.
        if (signature is not null) await _s3.PutAsync(HeadSignature, signature, ct).ConfigureAwait(false);
    }

    public async Task<Manifest> ResignHeadAsync(IManifestSigner signer, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(signer);
        await using (await LockCommitAsync(ct).ConfigureAwait(false))
        {
            var got = await _s3.GetAsync(Head, ct).ConfigureAwait(false)
                ?? throw new CairnException(ErrorCode.RepositoryNotFound, $"{_s3.Location.Display} has no manifest.json", "publish once, then sign");
            var manifest = CairnJson.Deserialize(got.Bytes, CoreJson.Default.Manifest, $"manifest '{_s3.Location.Display}{Head}'");
            var signature = signer.Sign(got.Bytes, manifest);
            await _s3.PutAsync(SignatureKey(manifest.Revision), signature, ct).ConfigureAwait(false);
            await _s3.PutAsync(HeadSignature, signature, ct).ConfigureAwait(false);
            return manifest;
        }
    }

    private CairnException Conflict(long revision) =>
        new(ErrorCode.ConcurrentUpdate, $"revision {revision} of {_s3.Location.Display} was committed by another writer",
            "another publisher committed at the same time (its lease expired or it ignored the lock); run the command again");

    public override ICheckpointSigner? CheckpointSigner => Signer as ICheckpointSigner;

    protected override async ValueTask<byte[]?> ReadLogFileAsync(string path, CancellationToken ct) =>
        (await _s3.GetAsync(path, ct).ConfigureAwait(false))?.Bytes;

    protected override async ValueTask WriteLogFileAsync(string path, byte[] bytes, CancellationToken ct) =>
        await _s3.PutAsync(path, bytes, ct).ConfigureAwait(false);

    protected override async ValueTask DeleteRevisionAsync(long revision, CancellationToken ct)
    {
        await _s3.DeleteAsync(RevisionKey(revision), ct).ConfigureAwait(false);
        await _s3.DeleteAsync(SignatureKey(revision), ct).ConfigureAwait(false);
    }
}
