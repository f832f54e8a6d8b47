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
    /// Path in the repository tree of the product's attestation bundle (docs/format/provenance.md), recorded in its
    /// catalog record. With <see cref="Attest"/> the file is written there; without it, it must be among the stored extras.
    /// </summary>
    public string? Attestations { get; init; }

    /// <summary>
    /// Makes the attestation bundle once the product's root is known (its statements name the root), for a commit
    /// of host files; the bytes are stored at <see cref="Attestations"/> in the same revision.
    /// </summary>
    public Func<Digest, byte[]>? Attest { get; init; }

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
/// A repository as every backend can be read (directory, S3, HTTP): revisions, catalogs, products and their trees.
/// Storage-agnostic: it sees only <see cref="IObjectReader"/> and <see cref="IRevisionReader"/>. Writing is
/// <see cref="WritableRepository"/>'s, which only the directory and S3 backends open.
/// </summary>
public class ProductRepository(IObjectReader objects, IRevisionReader revisions, TimeProvider time, ILogger? logger = null) : IAsyncDisposable
{
    protected ILogger Log { get; } = logger ?? NullLogger.Instance;

    public virtual IObjectReader Objects => objects;

    public IRevisionReader Revisions => revisions;

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

    public async Task<long?> ResolveTagAsync(string name, CancellationToken ct)
    {
        var head = await HeadAsync(ct).ConfigureAwait(false);
        return head.Tags.TryGetValue(name, out var rev) ? rev : null;
    }

    /// <summary>
    /// Keeps a local gc from sweeping objects while a reader lists them (verify); a repository this process cannot
    /// write has no gc it could hold off, so there is nothing to hold.
    /// </summary>
    internal virtual Task<IAsyncDisposable> HoldObjectsAsync(CancellationToken ct) => Task.FromResult<IAsyncDisposable>(NothingHeld.Instance);

    private sealed class NothingHeld : IAsyncDisposable
    {
        public static NothingHeld Instance { get; } = new();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await objects.DisposeAsync().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// A repository this process can write (directory, S3). Every revision is written through a
/// <see cref="PublishSession"/>, which holds the locks and commits in the order docs/format/repository.md §7 prescribes.
/// </summary>
public sealed class WritableRepository(IObjectStore objects, WritableRevisionStore revisions, TimeProvider time, ILogger? logger = null)
    : ProductRepository(objects, revisions, time, logger)
{
    internal WritableRevisionStore Store => revisions;

    public override IObjectStore Objects => objects;

    internal ILogger Logger => Log;

    internal override Task<IAsyncDisposable> HoldObjectsAsync(CancellationToken ct) => revisions.LockObjectsAsync(exclusive: false, ct);

    /// <summary>Takes the shared objects lock and catches up with the store: objects may be put from here on.</summary>
    public Task<PublishSession> BeginPublishAsync(CancellationToken ct) => PublishSession.BeginAsync(this, ct);

    /// <summary>Adds a witness's cosignature to the log's checkpoint if it is still the one cosigned; false when a newer one replaced it.</summary>
    public Task<bool> AttachCosignatureAsync(string checkpointText, Core.Transparency.NoteSignature cosignature, CancellationToken ct) =>
        PublishSession.AttachCosignatureAsync(this, checkpointText, cosignature, ct);

    /// <summary>Creates revision 1 (empty) for a fresh repository.</summary>
    public async ValueTask InitializeAsync(CancellationToken ct)
    {
        await using var session = await BeginPublishAsync(ct).ConfigureAwait(false);
        await session.CommitFirstRevisionAsync(ct).ConfigureAwait(false);
    }

    public async Task<PublishResult> PublishDirectoryAsync(ProductRef product, string directory, PublishOptions options, IProgress<long>? progress, CancellationToken ct)
    {
        await using var session = await BeginPublishAsync(ct).ConfigureAwait(false);
        var root = await session.StoreAsync(ingest => DirectorySnapshot.StoreAsync(ingest, directory, progress, ct)).ConfigureAwait(false);
        return await session.CommitProductAsync(product, root, options, ct).ConfigureAwait(false);
    }

    public async Task<Manifest> RollbackAsync(long revision, CancellationToken ct)
    {
        await using var session = await BeginPublishAsync(ct).ConfigureAwait(false);
        return await session.CommitRevisionAsync(async head =>
        {
            var target = await RevisionAsync(revision, ct).ConfigureAwait(false);
            var catalog = await CatalogAsync(target, ct).ConfigureAwait(false);
            return new RevisionChange(TreeEntry.Dir("", target.RootSize, target.Root), catalog, head.Tags, $"rollback to revision {revision}");
        }, ct).ConfigureAwait(false);
    }

    /// <summary>Sets (revision not null) or removes a tag; tags live in the manifest so they are part of each revision.</summary>
    public async Task<Manifest> TagAsync(string name, long? revision, CancellationToken ct)
    {
        if (!ProductRef.IsValidComponent(name))
        {
            throw new CairnException(ErrorCode.Usage, $"'{name}' is not a tag name", "use letters, digits and . _ + - (e.g. stable)");
        }

        await using var session = await BeginPublishAsync(ct).ConfigureAwait(false);
        return await session.CommitRevisionAsync(async head =>
        {
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
            return new RevisionChange(TreeEntry.Dir("", head.RootSize, head.Root), catalog, tags, revision is null ? $"untag {name}" : $"tag {name} = {revision}");
        }, ct).ConfigureAwait(false);
    }
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
