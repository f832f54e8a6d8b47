using System.Globalization;
using System.Runtime.CompilerServices;
using Cairn.Core;
using Cairn.Repository.IO;
using Cairn.Repository.Transparency;

namespace Cairn.Repository.FileSystem;

/// <summary>
/// Revisions as one immutable JSON file each under revisions/, and manifest.json as the head, replaced
/// atomically last. Locks are flock(2) files under locks/.
/// </summary>
public sealed class FileRevisionStore : WritableRevisionStore, IResignableRevisionStore
{
    private readonly string _root;
    private readonly string _revisions;
    private readonly string _tmp;
    private readonly string _locks;
    private readonly TimeProvider _time;
    private readonly TimeSpan _lockTimeout;

    public FileRevisionStore(string root, RepositoryConfig config, TimeProvider time, TimeSpan lockTimeout)
    {
        _root = root;
        _revisions = Path.Combine(root, FileSystemLayout.Revisions);
        _tmp = Path.Combine(root, FileSystemLayout.Tmp);
        _locks = Path.Combine(root, FileSystemLayout.Locks);
        Config = config;
        _time = time;
        _lockTimeout = lockTimeout;
    }

    public override RepositoryConfig Config { get; }

    /// <summary>Signs each revision at commit (revisions/N.sig, manifest.sig; format §6.1); null: unsigned.</summary>
    public IManifestSigner? Signer { get; init; }

    public string HeadPath => Path.Combine(_root, FileSystemLayout.Head);

    public string RevisionPath(long revision) =>
        Path.Combine(_root, RepositoryFiles.Revision(revision));

    public override ValueTask<Manifest?> ReadHeadAsync(CancellationToken ct) => ValueTask.FromResult(ReadManifest(HeadPath));

    public override ValueTask<Manifest?> ReadRevisionAsync(long revision, CancellationToken ct) =>
        ValueTask.FromResult(ReadManifest(RevisionPath(revision)));

    private static Manifest? ReadManifest(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException)
        {
            return null;
        }

        return CairnJson.Deserialize(bytes, CoreJson.Default.Manifest, $"manifest '{path}'");
    }

    public override async IAsyncEnumerable<Manifest> ListRevisionsAsync([EnumeratorCancellation] CancellationToken ct)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        // The head is the commit point: a revision file above it is from a commit that crashed or failed before
        // replacing the head (or one in progress), and is not part of the history.
        var head = ReadManifest(HeadPath)?.Revision ?? long.MaxValue;
        foreach (var file in Directory.EnumerateFiles(_revisions, "*.json").Order(StringComparer.Ordinal))
        {
            ct.ThrowIfCancellationRequested();
            if (ReadManifest(file) is { } m && m.Revision <= head) yield return m;
        }
    }

    protected override async Task<IAsyncDisposable> LockCommitAsync(CancellationToken ct) =>
        await FileLock.AcquireAsync(Path.Combine(_locks, "commit"), exclusive: true, _lockTimeout, _time, ct).ConfigureAwait(false);

    protected override async Task<IAsyncDisposable> LockObjectsAsync(bool exclusive, CancellationToken ct) =>
        await FileLock.AcquireAsync(Path.Combine(_locks, "objects"), exclusive, _lockTimeout, _time, ct).ConfigureAwait(false);

    protected override ValueTask CommitAsync(Manifest manifest, CancellationToken ct)
    {
        // Every object of this revision is in a pack by now (objects are flushed before the commit lock is taken),
        // and the head's list is what a client of a static web server reads to find the packs (format §6).
        manifest = manifest with { Packs = ListPacks() };
        var bytes = CairnJson.Serialize(manifest, CoreJson.Default.Manifest);
        var revisionPath = RevisionPath(manifest.Revision);
        var previous = File.Exists(HeadPath) ? File.ReadAllBytes(HeadPath) : null;
        var headRevision = previous is null ? 0 : CairnJson.Deserialize(previous, CoreJson.Default.Manifest, $"manifest '{HeadPath}'").Revision;
        // A revision file above the head is left by a commit that died before replacing the head; we hold the commit
        // lock, so it is garbage and is overwritten. One at or below the head means someone committed without the lock.
        if (File.Exists(revisionPath) && manifest.Revision <= headRevision)
        {
            throw new CairnException(ErrorCode.ConcurrentUpdate, $"revision {manifest.Revision} already exists",
                "another writer committed without holding the commit lock; run 'cairn verify'");
        }

        // Signed before anything is written: a signer that refuses (expired certificate) fails the commit cleanly.
        var signature = Signer?.Sign(bytes, manifest);
        if (signature is null && File.Exists(Path.Combine(_root, FileSystemLayout.HeadSignature)))
        {
            // An unsigned head would leave trusting clients on the last signed one without a word.
            throw new CairnException(ErrorCode.Usage, "this repository is signed (manifest.sig): a new revision must be signed too",
                "pass --signing-key FILE or set CAIRN_SIGNING_KEY (docs/security.md)");
        }

        DurableFile.WriteAllBytes(revisionPath, bytes, _tmp);
        if (signature is not null) DurableFile.WriteAllBytes(Path.ChangeExtension(revisionPath, ".sig"), signature, _tmp);
        FaultPoints.Hit("after-revision");
        try
        {
            DurableFile.WriteAllBytes(HeadPath, bytes, _tmp);
        }
        catch (CairnException) when (previous is not null)
        {
            // The rename may have happened before the directory fsync failed: put the old head back, so a publish
            // that reports failure has not changed the repository.
            try
            {
                DurableFile.WriteAllBytes(HeadPath, previous, _tmp);
            }
            catch (CairnException)
            {
                // The device is failing; the head is then the new revision, which is complete (objects came first).
            }

            throw;
        }

        // The head's signature goes last; a reader that sees it before the new head falls back to revisions/N.json.
        if (signature is not null) DurableFile.WriteAllBytes(Path.Combine(_root, FileSystemLayout.HeadSignature), signature, _tmp);
        FaultPoints.Hit("after-head");
        return ValueTask.CompletedTask;
    }

    public async Task<Manifest> ResignHeadAsync(IManifestSigner signer, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(signer);
        await using (await LockCommitAsync(ct).ConfigureAwait(false))
        {
            var bytes = await File.ReadAllBytesAsync(HeadPath, ct).ConfigureAwait(false);
            var manifest = CairnJson.Deserialize(bytes, CoreJson.Default.Manifest, $"manifest '{HeadPath}'");
            var signature = signer.Sign(bytes, manifest);
            DurableFile.WriteAllBytes(Path.ChangeExtension(RevisionPath(manifest.Revision), ".sig"), signature, _tmp);
            DurableFile.WriteAllBytes(Path.Combine(_root, FileSystemLayout.HeadSignature), signature, _tmp);
            return manifest;
        }
    }

    /// <summary>Packs with a complete index, sorted: an index only ever exists beside its complete pack.</summary>
    private List<string> ListPacks()
    {
        var packs = Path.Combine(_root, FileSystemLayout.Packs);
        return Directory.Exists(packs)
            ? Directory.EnumerateFiles(packs, "*.idx")
                .Where(idx => File.Exists(Path.ChangeExtension(idx, ".pack")))
                .Select(Path.GetFileNameWithoutExtension).OfType<string>()
                .Order(StringComparer.Ordinal).ToList()
            : [];
    }

    public override ICheckpointSigner? CheckpointSigner => Signer as ICheckpointSigner;

    protected override ValueTask<byte[]?> ReadLogFileAsync(string path, CancellationToken ct)
    {
        try
        {
            return ValueTask.FromResult<byte[]?>(File.ReadAllBytes(Path.Combine(_root, path)));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return ValueTask.FromResult<byte[]?>(null);
        }
    }

    protected override ValueTask WriteLogFileAsync(string path, byte[] bytes, CancellationToken ct)
    {
        var full = Path.Combine(_root, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        DurableFile.WriteAllBytes(full, bytes, _tmp);
        return ValueTask.CompletedTask;
    }

    protected override ValueTask DeleteRevisionAsync(long revision, CancellationToken ct)
    {
        File.Delete(RevisionPath(revision));
        File.Delete(Path.Combine(_root, RepositoryFiles.RevisionSignature(revision)));
        return ValueTask.CompletedTask;
    }
}

/// <summary>Names of the files and folders of a directory repository (docs/format/repository.md).</summary>
public static class FileSystemLayout
{
    public const string Config = RepositoryFiles.Config;
    public const string Head = RepositoryFiles.Head;
    public const string HeadSignature = RepositoryFiles.HeadSignature;
    public const string Revocations = RepositoryFiles.Revocations;
    public const string Revisions = RepositoryFiles.RevisionsFolder;
    public const string Packs = RepositoryFiles.PacksFolder;
    public const string Tmp = "tmp";
    public const string Locks = "locks";
    public const string Cache = "cache";
}
