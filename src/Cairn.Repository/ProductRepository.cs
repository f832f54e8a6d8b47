using System.Text.Json.Serialization;
using Cairn.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Repository;

public sealed record PublishOptions
{
    public string? Platform { get; init; }
    public string? BuildKey { get; init; }
    public IReadOnlyList<string> Dependencies { get; init; } = [];
    public TestSummary? Tests { get; init; }
    public string? PublishedBy { get; init; }
    public bool Replace { get; init; }
    public string? ReplaceReason { get; init; }

    /// <summary>
    /// Files placed in the repository tree outside the product, in the same revision (e.g. its modulefile and
    /// build log). They may not lie under a platform directory.
    /// </summary>
    public IReadOnlyList<ExtraFile> ExtraFiles { get; init; } = [];

    /// <summary>Path in the repository tree of the product's build log (normally one of <see cref="ExtraFiles"/>).</summary>
    public string? Log { get; init; }

    /// <summary>
    /// Leave the product alone (outcome Unchanged) when it is already published with <see cref="BuildKey"/>,
    /// whatever its content: decided under the commit lock, so of two commits of one build key that both passed
    /// their checks (a gateway whose lease expired mid-commit) only the first is written.
    /// </summary>
    public bool SkipIfBuildKeyPublished { get; init; }
}

/// <summary>A host file stored at <paramref name="Path"/> ('/'-separated) in the repository tree.</summary>
public sealed record ExtraFile(string Path, string HostFile, bool Executable = false);

[JsonConverter(typeof(CamelCaseEnumConverter<PublishOutcome>))]
public enum PublishOutcome { Published, Unchanged, Replaced }

public sealed record PublishResult(PublishOutcome Outcome, ProductRecord Product, long Revision, long FilesStored, long BytesRead);

/// <summary>
/// The product repository: publish trees as NAME/VERSION, read them back, keep revisions. Storage-agnostic:
/// it sees only <see cref="IObjectStore"/> and <see cref="IRevisionStore"/>.
/// </summary>
public sealed class ProductRepository(IObjectStore objects, IRevisionStore revisions, TimeProvider time, ILogger? logger = null) : IAsyncDisposable
{
    private readonly ILogger _log = logger ?? NullLogger.Instance;

    public IObjectStore Objects => objects;

    public IRevisionStore Revisions => revisions;

    public TimeProvider Time => time;

    public TreeWalker Trees { get; } = new(objects);

    public string DefaultPlatform => revisions.Config.Platform;

    public static string DefaultPublisher => $"{Environment.UserName}@{Environment.MachineName}";

    public async ValueTask<Manifest> HeadAsync(CancellationToken ct) =>
        await revisions.ReadHeadAsync(ct).ConfigureAwait(false)
        ?? throw new CairnException(ErrorCode.RepositoryNotFound, "the repository has no manifest", "run 'cairn init' first");

    public async ValueTask<Manifest> RevisionAsync(long? revision, CancellationToken ct)
    {
        if (revision is null) return await HeadAsync(ct).ConfigureAwait(false);
        return await revisions.ReadRevisionAsync(revision.Value, ct).ConfigureAwait(false)
            ?? throw new CairnException(ErrorCode.RevisionNotFound, $"revision {revision} does not exist (or was removed by gc)", "run 'cairn history' to list the kept revisions");
    }

    public async ValueTask<Catalog> CatalogAsync(Manifest manifest, CancellationToken ct) =>
        CairnJson.Deserialize(await objects.GetAsync(manifest.Catalog, ct).ConfigureAwait(false), CoreJson.Default.Catalog, $"catalog of revision {manifest.Revision}");

    public async ValueTask<ProductRecord> FindAsync(ProductRef product, string? platform, long? revision, CancellationToken ct)
    {
        var manifest = await RevisionAsync(revision, ct).ConfigureAwait(false);
        var catalog = await CatalogAsync(manifest, ct).ConfigureAwait(false);
        return catalog.Find(platform ?? DefaultPlatform, product)
            ?? throw new CairnException(ErrorCode.ProductNotFound,
                $"product {product} is not in revision {manifest.Revision} for platform {platform ?? DefaultPlatform}",
                "run 'cairn list' to see what is published");
    }

    /// <summary>Creates revision 1 (empty) for a fresh repository.</summary>
    public async ValueTask InitializeAsync(CancellationToken ct)
    {
        await using var commitLock = await revisions.LockCommitAsync(ct).ConfigureAwait(false);
        if (await revisions.ReadHeadAsync(ct).ConfigureAwait(false) is not null) return;
        var ingest = new Ingest(objects);
        var root = await ingest.AddDirectoryAsync("", [], ct).ConfigureAwait(false);
        var catalog = CairnJson.Serialize(Catalog.Empty, CoreJson.Default.Catalog);
        var catalogDigest = Digest.Of(catalog);
        await objects.PutAsync(catalogDigest, catalog, ct).ConfigureAwait(false);
        await objects.FlushAsync(ct).ConfigureAwait(false);
        await revisions.CommitAsync(new Manifest(1, revisions.Config.Name, 1, null, time.GetUtcNow(), root.Digest, root.Size, catalogDigest,
            new Dictionary<string, long>(), "init"), ct).ConfigureAwait(false);
    }

    public async Task<PublishResult> PublishDirectoryAsync(ProductRef product, string directory, PublishOptions options, IProgress<long>? progress, CancellationToken ct)
    {
        await using var objectsLock = await revisions.LockObjectsAsync(exclusive: false, ct).ConfigureAwait(false);
        // Dedup must not trust an index read before a gc that ran while we waited for the lock.
        await objects.RefreshAsync(ct).ConfigureAwait(false);
        var ingest = new Ingest(objects);
        TreeEntry root;
        try
        {
            root = await DirectorySnapshot.StoreAsync(ingest, directory, progress, ct).ConfigureAwait(false);
        }
        catch
        {
            await objects.AbortAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        return await CommitProductAsync(product, root, ingest, options, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Records an already-stored tree as NAME/VERSION. Objects are flushed before the commit lock is taken, so
    /// the manifest never names an object that is not durable. Caller holds the shared objects lock.
    /// </summary>
    public async Task<PublishResult> CommitProductAsync(ProductRef product, TreeEntry root, Ingest ingest, PublishOptions options, CancellationToken ct)
    {
        Platforms.Validate(options.Platform ?? DefaultPlatform);
        var extras = await StoreExtraFilesAsync(ingest, options.ExtraFiles, ct).ConfigureAwait(false);
        return await CommitStoredAsync(product, root, ingest, extras, options, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Like <see cref="CommitProductAsync(ProductRef, TreeEntry, Ingest, PublishOptions, CancellationToken)"/>, for a
    /// product whose extra files are already stored (the gateway: a site uploaded them as objects).
    /// <paramref name="options"/>' ExtraFiles must be empty. Caller holds the shared objects lock and has checked
    /// that every object the entries reach is stored.
    /// </summary>
    public Task<PublishResult> CommitProductAsync(ProductRef product, TreeEntry root, Ingest ingest, IReadOnlyList<(string Path, TreeEntry Entry)> storedExtras,
        PublishOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(storedExtras);
        ArgumentNullException.ThrowIfNull(options);
        if (options.ExtraFiles.Count > 0)
        {
            throw new ArgumentException("pass extra files either as host files or as stored entries, not both", nameof(options));
        }

        Platforms.Validate(options.Platform ?? DefaultPlatform);
        var extras = new List<(string[], TreeEntry)>();
        foreach (var (path, entry) in storedExtras)
        {
            var parts = ExtraPath(path);
            extras.Add((parts, entry with { Name = parts[^1] }));
        }

        return CommitStoredAsync(product, root, ingest, extras, options, ct);
    }

    private async Task<PublishResult> CommitStoredAsync(ProductRef product, TreeEntry root, Ingest ingest, List<(string[] Path, TreeEntry Entry)> extras,
        PublishOptions options, CancellationToken ct)
    {
        var platform = options.Platform ?? DefaultPlatform;
        await objects.FlushAsync(ct).ConfigureAwait(false);
        FaultPoints.Hit("after-objects");

        await using var commitLock = await LockCommitFreshAsync(ct).ConfigureAwait(false);
        var head = await HeadAsync(ct).ConfigureAwait(false);
        var catalog = await CatalogAsync(head, ct).ConfigureAwait(false);
        var existing = catalog.Find(platform, product);
        var files = 0L;
        var size = 0L;
        await foreach (var (_, e) in Trees.WalkAsync(root.Digest, ct).ConfigureAwait(false))
        {
            if (!e.IsFile) continue;
            files++;
            size += e.Size;
        }

        var now = time.GetUtcNow();
        var record = new ProductRecord(platform, product.Name, product.Version, root.Digest, size, files, options.BuildKey,
            options.Dependencies, options.Tests, options.PublishedBy ?? DefaultPublisher, now, Log: options.Log);
        var outcome = PublishOutcome.Published;
        if (existing is not null && options.SkipIfBuildKeyPublished && options.BuildKey is not null && existing.BuildKey == options.BuildKey)
        {
            _log.LogInformation("{Product} is already published with build key {BuildKey}", product, options.BuildKey);
            return new PublishResult(PublishOutcome.Unchanged, existing, head.Revision, ingest.Files, ingest.Bytes);
        }

        if (existing is not null)
        {
            // Identical content is left alone, unless a replacement was asked for to record a new build key (a
            // rebuild that reproduced the product bit for bit): else the old key would look stale forever.
            if (existing.Root == root.Digest && (!options.Replace || existing.BuildKey == options.BuildKey))
            {
                _log.LogInformation("{Product} is already published with identical content", product);
                return new PublishResult(PublishOutcome.Unchanged, existing, head.Revision, ingest.Files, ingest.Bytes);
            }

            if (!options.Replace)
            {
                throw new CairnException(ErrorCode.ProductExists,
                    $"{product} ({platform}) is already published with different content (root {existing.Root.Abbreviated}, new {root.Digest.Abbreviated})",
                    "products are immutable: publish a new version, or pass --replace with --reason to replace it on purpose (recorded)");
            }

            outcome = PublishOutcome.Replaced;
            record = record with
            {
                Replaced = [.. existing.Replaced ?? [], new Replacement(existing.Root, now, record.PublishedBy, options.ReplaceReason)],
            };
        }

        var newRoot = await Trees.ReplaceAsync(ingest, TreeEntry.Dir("", head.RootSize, head.Root),
            [platform, product.Name, product.Version], root, ct).ConfigureAwait(false);
        foreach (var (path, entry) in extras)
        {
            if (path[0] == platform || catalog.Products.Any(p => p.Platform == path[0]))
            {
                throw new CairnException(ErrorCode.InvalidPath, $"extra file '{string.Join('/', path)}' would lie under platform directory '{path[0]}'",
                    "place extra files under a top-level directory that is not a platform (e.g. modules/)");
            }

            newRoot = await Trees.ReplaceAsync(ingest, newRoot, path, entry, ct).ConfigureAwait(false);
        }

        var manifest = await CommitLockedAsync(head, newRoot, catalog.With(record), head.Tags,
            $"{(outcome == PublishOutcome.Replaced ? "replace" : "publish")} {platform}/{product}", ct).ConfigureAwait(false);
        _log.LogInformation("published {Product} as revision {Revision}", product, manifest.Revision);
        return new PublishResult(outcome, record, manifest.Revision, ingest.Files, ingest.Bytes);
    }

    private static async Task<List<(string[] Path, TreeEntry Entry)>> StoreExtraFilesAsync(Ingest ingest, IReadOnlyList<ExtraFile> files, CancellationToken ct)
    {
        var result = new List<(string[], TreeEntry)>();
        foreach (var file in files)
        {
            var parts = ExtraPath(file.Path);
            await using var stream = File.OpenRead(file.HostFile);
            result.Add((parts, await ingest.AddFileAsync(parts[^1], stream, stream.Length, file.Executable, ct).ConfigureAwait(false)));
        }

        return result;
    }

    private static string[] ExtraPath(string path)
    {
        var parts = path.Split('/');
        if (parts.Length < 2 || parts.Any(p => TreeCodec.ValidateName(p) is not null))
        {
            throw new CairnException(ErrorCode.InvalidPath, $"'{path}' is not a path for an extra file", "use a relative '/'-separated path with at least two parts");
        }

        return parts;
    }

    /// <summary>Takes the commit lock and catches up with the objects of revisions committed while we waited for it.</summary>
    private async Task<IAsyncDisposable> LockCommitFreshAsync(CancellationToken ct)
    {
        var commitLock = await revisions.LockCommitAsync(ct).ConfigureAwait(false);
        try
        {
            await objects.RefreshAsync(ct).ConfigureAwait(false);
            return commitLock;
        }
        catch
        {
            await commitLock.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Writes catalog and manifest: objects, then catalog, then manifest. Caller holds the commit lock.</summary>
    private async Task<Manifest> CommitLockedAsync(Manifest head, TreeEntry root, Catalog catalog, IReadOnlyDictionary<string, long> tags, string message, CancellationToken ct)
    {
        var catalogBytes = CairnJson.Serialize(catalog, CoreJson.Default.Catalog);
        var catalogDigest = Digest.Of(catalogBytes);
        await objects.PutAsync(catalogDigest, catalogBytes, ct).ConfigureAwait(false);
        await objects.FlushAsync(ct).ConfigureAwait(false);
        FaultPoints.Hit("after-catalog");
        var manifest = new Manifest(1, head.Repository, head.Revision + 1, head.Revision, time.GetUtcNow(), root.Digest, root.Size,
            catalogDigest, new SortedDictionary<string, long>(tags.ToDictionary(), StringComparer.Ordinal), message);
        await revisions.CommitAsync(manifest, ct).ConfigureAwait(false);
        return manifest;
    }

    public async Task<Manifest> RollbackAsync(long revision, CancellationToken ct)
    {
        await using var objectsLock = await revisions.LockObjectsAsync(exclusive: false, ct).ConfigureAwait(false);
        await using var commitLock = await LockCommitFreshAsync(ct).ConfigureAwait(false);
        var target = await RevisionAsync(revision, ct).ConfigureAwait(false);
        var head = await HeadAsync(ct).ConfigureAwait(false);
        var catalog = await CatalogAsync(target, ct).ConfigureAwait(false);
        return await CommitLockedAsync(head, TreeEntry.Dir("", target.RootSize, target.Root), catalog, head.Tags, $"rollback to revision {revision}", ct).ConfigureAwait(false);
    }

    /// <summary>Sets (revision not null) or removes a tag; tags live in the manifest so they are part of each revision.</summary>
    public async Task<Manifest> TagAsync(string name, long? revision, CancellationToken ct)
    {
        if (!ProductRef.IsValidComponent(name))
        {
            throw new CairnException(ErrorCode.Usage, $"'{name}' is not a tag name", "use letters, digits and . _ + - (e.g. stable)");
        }

        await using var objectsLock = await revisions.LockObjectsAsync(exclusive: false, ct).ConfigureAwait(false);
        await using var commitLock = await LockCommitFreshAsync(ct).ConfigureAwait(false);
        var head = await HeadAsync(ct).ConfigureAwait(false);
        var tags = head.Tags.ToDictionary();
        if (revision is { } rev)
        {
            _ = await RevisionAsync(rev, ct).ConfigureAwait(false);
            tags[name] = rev;
        }
        else if (!tags.Remove(name))
        {
            throw new CairnException(ErrorCode.TagNotFound, $"tag '{name}' does not exist", "run 'cairn tag' to list tags");
        }

        var catalog = await CatalogAsync(head, ct).ConfigureAwait(false);
        return await CommitLockedAsync(head, TreeEntry.Dir("", head.RootSize, head.Root), catalog, tags,
            revision is null ? $"untag {name}" : $"tag {name} = {revision}", ct).ConfigureAwait(false);
    }

    public async Task<long?> ResolveTagAsync(string name, CancellationToken ct)
    {
        var head = await HeadAsync(ct).ConfigureAwait(false);
        return head.Tags.TryGetValue(name, out var rev) ? rev : null;
    }

    public ValueTask DisposeAsync() => objects.DisposeAsync();
}

public static class DependencyClosure
{
    /// <summary>The named products, or (with <paramref name="withDependencies"/>) their closure; each must exist in the catalog.</summary>
    public static IReadOnlyList<ProductRecord> Select(Catalog catalog, long revision, string platform, IReadOnlyList<ProductRef> products, bool withDependencies) =>
        withDependencies
            ? Resolve(catalog, platform, products)
            : products.Select(r => catalog.Find(platform, r) ?? throw new CairnException(ErrorCode.ProductNotFound,
                $"product {r} is not in revision {revision} for {platform}", "run 'cairn list' to see what is published")).ToList();

    /// <summary>The products and, transitively, the dependencies they record ("name/version"), each once, dependencies first.</summary>
    public static IReadOnlyList<ProductRecord> Resolve(Catalog catalog, string platform, IEnumerable<ProductRef> roots)
    {
        var result = new List<ProductRecord>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Visit(ProductRef product, string? requiredBy)
        {
            if (!seen.Add(product.ToString())) return;
            var record = catalog.Find(platform, product) ?? throw new CairnException(ErrorCode.ProductNotFound,
                requiredBy is null ? $"product {product} is not published for {platform}" : $"{product}, a dependency of {requiredBy}, is not published for {platform}",
                "publish it first, or run 'cairn list' to see what is published");
            foreach (var dep in record.Dependencies) Visit(ProductRef.Parse(dep), product.ToString());
            result.Add(record);
        }

        foreach (var root in roots) Visit(root, null);
        return result;
    }
}
