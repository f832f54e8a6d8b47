using Cairn.Core;

namespace Cairn.Repository;

public readonly record struct ObjectInfo(Digest Digest, long StoredSize, long Size);

public sealed record RetainResult(long ObjectsKept, long ObjectsDeleted, long BytesDeleted, long ContainersRewritten);

/// <summary>
/// Content-addressed objects as every backend can read them (directory, S3, HTTP), keyed by the SHA-256 of their
/// uncompressed content. Every backend passes tests/Cairn.Repository.Tests/ObjectStoreReadConformance.cs.
/// </summary>
public interface IObjectReader : IAsyncDisposable
{
    ValueTask<bool> ContainsAsync(Digest digest, CancellationToken ct);

    /// <summary>Returns the content, verified against its digest; throws ObjectMissing or ObjectCorrupt.</summary>
    ValueTask<byte[]> GetAsync(Digest digest, CancellationToken ct);

    IAsyncEnumerable<ObjectInfo> ListAsync(CancellationToken ct);

    /// <summary>
    /// Catches up with objects other processes added and gc removed since the store was opened. Callers refresh
    /// after taking a repository lock, so dedup and gc decide on what is on disk now, not at open.
    /// </summary>
    ValueTask RefreshAsync(CancellationToken ct) => ValueTask.CompletedTask;

    /// <summary>True when <see cref="PrefetchAsync"/> does something (a remote store fetching objects in batches).</summary>
    bool PrefetchesInBatches => false;

    /// <summary>
    /// Announces objects the caller is about to read, most urgent first. A store that reads them faster together
    /// (one range request for neighbouring objects) claims them: when the outer task completes, readers of them wait
    /// for the batch instead of fetching each; the inner task completes when the batch is done and never faults
    /// (an object the batch could not deliver fails its reader, with the same errors as <see cref="GetAsync"/>).
    /// </summary>
    ValueTask<Task> PrefetchAsync(IReadOnlyList<Digest> digests, CancellationToken ct) => ValueTask.FromResult(Task.CompletedTask);
}

/// <summary>
/// Objects this process can also write (directory, S3; a site's staging store): the reads, plus put, flush, abort
/// and gc's retain. The HTTP store is only an <see cref="IObjectReader"/>, so it cannot be asked to write. Every
/// writable backend passes the same conformance suite (tests/Cairn.Repository.Tests/ObjectStoreConformance.cs).
/// </summary>
public interface IObjectStore : IObjectReader
{
    /// <summary>
    /// Stores content whose digest the caller computed. Thread-safe. Not durable until <see cref="FlushAsync"/>;
    /// objects already present are skipped.
    /// </summary>
    ValueTask PutAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct);

    /// <summary>Makes every object put so far durable (on disk and fsynced, or acknowledged by the remote).</summary>
    ValueTask FlushAsync(CancellationToken ct);

    /// <summary>Drops objects put since the last flush where the backend can (a failed import leaves nothing).</summary>
    ValueTask AbortAsync(CancellationToken ct);

    /// <summary>Deletes every object for which <paramref name="isLive"/> is false (caller holds the exclusive gc lock).</summary>
    ValueTask<RetainResult> RetainAsync(Func<Digest, bool> isLive, bool dryRun, CancellationToken ct);
}

/// <summary>Revisions (manifests) and the head, as every repository can be read (directory, S3, HTTP).</summary>
public interface IRevisionReader
{
    RepositoryConfig Config { get; }

    ValueTask<Manifest?> ReadHeadAsync(CancellationToken ct);

    ValueTask<Manifest?> ReadRevisionAsync(long revision, CancellationToken ct);

    /// <summary>All kept revisions, oldest first.</summary>
    IAsyncEnumerable<Manifest> ListRevisionsAsync(CancellationToken ct);
}

/// <summary>
/// Revisions of a repository this process can write (directory, S3): the reads, plus the repository locks and the
/// commit. Those are <c>protected internal</c>: only this assembly calls them (<see cref="PublishSession"/> in the
/// order docs/format/repository.md §7 prescribes, and <see cref="GarbageCollector"/>), so no other project can take
/// a lock or commit out of order. Every backend passes tests/Cairn.Repository.Testing/RevisionStoreConformance.cs.
/// </summary>
public abstract class WritableRevisionStore : IRevisionReader
{
    public abstract RepositoryConfig Config { get; }

    public abstract ValueTask<Manifest?> ReadHeadAsync(CancellationToken ct);

    public abstract ValueTask<Manifest?> ReadRevisionAsync(long revision, CancellationToken ct);

    public abstract IAsyncEnumerable<Manifest> ListRevisionsAsync(CancellationToken ct);

    /// <summary>Serialises commits: read head, compute, write, release.</summary>
    protected internal abstract Task<IAsyncDisposable> LockCommitAsync(CancellationToken ct);

    /// <summary>Publishers hold it shared for their whole run; gc holds it exclusive, so it never deletes an object a publish is about to reference.</summary>
    protected internal abstract Task<IAsyncDisposable> LockObjectsAsync(bool exclusive, CancellationToken ct);

    /// <summary>Writes the revision, then atomically makes it the head. Caller holds the commit lock.</summary>
    protected internal abstract ValueTask CommitAsync(Manifest manifest, CancellationToken ct);

    protected internal abstract ValueTask DeleteRevisionAsync(long revision, CancellationToken ct);

    /// <summary>Signs the publication log's checkpoints; null: the repository keeps no log (it is unsigned).</summary>
    public virtual Transparency.ICheckpointSigner? CheckpointSigner => null;

    /// <summary>The publication log's files (docs/format/transparency-log.md), as readers see them.</summary>
    public Transparency.ILogSource LogSource => new StoreLogSource(this);

    /// <summary>A file under log/ (<see cref="LogFiles"/>); null when it does not exist.</summary>
    protected internal abstract ValueTask<byte[]?> ReadLogFileAsync(string path, CancellationToken ct);

    /// <summary>Writes a file under log/ durably (replacing it); only <see cref="PublishSession"/> calls it, under the commit lock.</summary>
    protected internal abstract ValueTask WriteLogFileAsync(string path, byte[] bytes, CancellationToken ct);

    private sealed class StoreLogSource(WritableRevisionStore store) : Transparency.ILogSource
    {
        public string Where(string path) => path;

        public async Task<byte[]?> ReadAsync(string path, long maxBytes, CancellationToken ct)
        {
            var bytes = await store.ReadLogFileAsync(path, ct).ConfigureAwait(false);
            return bytes is null || bytes.LongLength <= maxBytes ? bytes
                : throw new CairnException(ErrorCode.LogTileInvalid, $"'{path}' is {bytes.LongLength} bytes, above the limit of {maxBytes}", "restore log/ from a mirror");
        }
    }
}
