using Cairn.Core;
using Cairn.Core.Transparency;
using Cairn.Repository.Transparency;
using Microsoft.Extensions.Logging;

namespace Cairn.Repository;

/// <summary>What a commit that is not a publish (rollback, tag) makes of the head it read under the commit lock.</summary>
internal sealed record RevisionChange(TreeEntry Root, Catalog Catalog, IReadOnlyDictionary<string, long> Tags, string Message, string? By = null);

/// <summary>
/// The one path by which a revision is written (docs/format/repository.md §7 and §8 name this class). In order:
/// <list type="number">
/// <item>the shared objects lock, held until the session is disposed (gc, exclusive, cannot sweep what is being referenced);</item>
/// <item>a refresh of the object store (dedup must not trust an index read before a gc that ran while we waited);</item>
/// <item>objects are ingested (<see cref="Ingest"/>, <see cref="StoreAsync"/>) or accepted as uploaded (<see cref="PutAsync"/>);</item>
/// <item>every object is flushed, before the commit lock, so a manifest never names an object that is not durable;</item>
/// <item>the commit lock, and a refresh again (revisions committed while we waited brought objects);</item>
/// <item>the head is read, the new tree and catalog written and flushed, then the manifest is committed;</item>
/// <item>in a signed repository, the publication log: entry bundles and tiles before the manifest, the signed checkpoint
/// after it (docs/format/transparency-log.md §5).</item>
/// </list>
/// </summary>
public sealed class PublishSession : IAsyncDisposable
{
    private readonly WritableRepository _repository;
    private readonly IAsyncDisposable _objectsLock;

    private PublishSession(WritableRepository repository, IAsyncDisposable objectsLock)
    {
        _repository = repository;
        _objectsLock = objectsLock;
        Ingest = new Ingest(repository.Objects);
    }

    internal static async Task<PublishSession> BeginAsync(WritableRepository repository, CancellationToken ct)
    {
        var objectsLock = await repository.Store.LockObjectsAsync(exclusive: false, ct).ConfigureAwait(false);
        try
        {
            await repository.Objects.RefreshAsync(ct).ConfigureAwait(false);
            return new PublishSession(repository, objectsLock);
        }
        catch
        {
            await objectsLock.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Stores files and trees in this session, counting what it read.</summary>
    public Ingest Ingest { get; }

    private IObjectStore Objects => _repository.Objects;

    /// <summary>Runs <paramref name="store"/> with this session's ingest; if it fails, the objects put since the last flush are dropped.</summary>
    public async Task<T> StoreAsync<T>(Func<Ingest, Task<T>> store)
    {
        ArgumentNullException.ThrowIfNull(store);
        try
        {
            return await store(Ingest).ConfigureAwait(false);
        }
        catch
        {
            await AbortAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Accepts an object whose digest the caller verified (a site's upload to the gateway). Durable after <see cref="FlushAsync"/>.</summary>
    public ValueTask PutAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct) => Objects.PutAsync(digest, content, ct);

    /// <summary>Makes every object put so far durable.</summary>
    public ValueTask FlushAsync(CancellationToken ct) => Objects.FlushAsync(ct);

    /// <summary>Drops the objects put since the last flush, where the store can.</summary>
    public ValueTask AbortAsync() => Objects.AbortAsync(CancellationToken.None);

    /// <summary>Records a tree stored in this session as NAME/VERSION, with extra files read from the host.</summary>
    public async Task<PublishResult> CommitProductAsync(ProductRef product, TreeEntry root, PublishOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        Platforms.Validate(options.Platform ?? _repository.DefaultPlatform);
        var extras = await StoreExtraFilesAsync(Ingest, options.ExtraFiles, ct).ConfigureAwait(false);
        if (options.Attest is { } attest)
        {
            var path = ExtraPath(options.Attestations ?? throw new ArgumentException("Attest needs the Attestations path", nameof(options)));
            using var bytes = new MemoryStream(attest(root.Digest), writable: false);
            extras.Add((path, await Ingest.AddFileAsync(path[^1], bytes, bytes.Length, false, ct).ConfigureAwait(false)));
        }

        return await CommitStoredAsync(product, root, extras, options, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Records NAME/VERSION whose extra files are already stored (the gateway: a site uploaded them as objects).
    /// <paramref name="options"/>' ExtraFiles must be empty. The caller has checked that every object the entries reach is stored.
    /// </summary>
    public Task<PublishResult> CommitProductAsync(ProductRef product, TreeEntry root, IReadOnlyList<(string Path, TreeEntry Entry)> storedExtras,
        PublishOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(storedExtras);
        ArgumentNullException.ThrowIfNull(options);
        if (options.ExtraFiles.Count > 0)
        {
            throw new ArgumentException("pass extra files either as host files or as stored entries, not both", nameof(options));
        }

        Platforms.Validate(options.Platform ?? _repository.DefaultPlatform);
        var extras = new List<(string[], TreeEntry)>();
        foreach (var (path, entry) in storedExtras)
        {
            var parts = ExtraPath(path);
            extras.Add((parts, entry with { Name = parts[^1] }));
        }

        return CommitStoredAsync(product, root, extras, options, ct);
    }

    private async Task<PublishResult> CommitStoredAsync(ProductRef product, TreeEntry root, List<(string[] Path, TreeEntry Entry)> extras,
        PublishOptions options, CancellationToken ct)
    {
        var platform = options.Platform ?? _repository.DefaultPlatform;
        await Objects.FlushAsync(ct).ConfigureAwait(false);
        FaultPoints.Hit("after-objects");

        await using var commitLock = await LockCommitFreshAsync(ct).ConfigureAwait(false);
        var head = await _repository.HeadAsync(ct).ConfigureAwait(false);
        var catalog = await _repository.CatalogAsync(head, ct).ConfigureAwait(false);
        var record = await NewRecordAsync(product, platform, root, options, ct).ConfigureAwait(false);
        var (outcome, decided) = Decide(catalog.Find(platform, product), record, options);
        if (outcome == PublishOutcome.Unchanged) return new PublishResult(PublishOutcome.Unchanged, decided, head.Revision, Ingest.Files, Ingest.Bytes);

        var newRoot = await _repository.Trees.ReplaceAsync(Ingest, TreeEntry.Dir("", head.RootSize, head.Root),
            [platform, product.Name, product.Version], root, ct).ConfigureAwait(false);
        foreach (var (path, entry) in extras)
        {
            if (path[0] == platform || catalog.Products.Any(p => p.Platform == path[0]))
            {
                throw new CairnException(ErrorCode.InvalidPath, $"extra file '{string.Join('/', path)}' would lie under platform directory '{path[0]}'",
                    "place extra files under a top-level directory that is not a platform (e.g. modules/)");
            }

            newRoot = await _repository.Trees.ReplaceAsync(Ingest, newRoot, path, entry, ct).ConfigureAwait(false);
        }

        var manifest = await CommitLockedAsync(head, new RevisionChange(newRoot, catalog.With(decided), head.Tags,
            $"{(outcome == PublishOutcome.Replaced ? "replace" : "publish")} {platform}/{product}", decided.PublishedBy), ct).ConfigureAwait(false);
        _repository.Logger.LogInformation("published {Product} as revision {Revision}", product, manifest.Revision);
        return new PublishResult(outcome, decided, manifest.Revision, Ingest.Files, Ingest.Bytes);
    }

    /// <summary>
    /// Records many trees stored in this session as new products in one revision, all or nothing (a bulk load, e.g.
    /// the dashboard benchmark's seeding). Each is published as <see cref="CommitProductAsync(ProductRef, TreeEntry, PublishOptions, CancellationToken)"/>
    /// would, without extra files; one already published with other content refuses the whole batch.
    /// </summary>
    public async Task<Manifest> CommitProductsAsync(IReadOnlyList<(ProductRef Product, TreeEntry Root, PublishOptions Options)> products, string message,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(products);
        foreach (var (_, _, options) in products)
        {
            if (options.ExtraFiles.Count > 0) throw new ArgumentException("a bulk commit takes no extra files", nameof(products));
            Platforms.Validate(options.Platform ?? _repository.DefaultPlatform);
        }

        await Objects.FlushAsync(ct).ConfigureAwait(false);
        await using var commitLock = await LockCommitFreshAsync(ct).ConfigureAwait(false);
        var head = await _repository.HeadAsync(ct).ConfigureAwait(false);
        var catalog = await _repository.CatalogAsync(head, ct).ConfigureAwait(false);
        var records = catalog.Products.ToDictionary(p => (p.Platform, p.Name, p.Version));
        var root = TreeEntry.Dir("", head.RootSize, head.Root);
        foreach (var (product, productRoot, options) in products)
        {
            var platform = options.Platform ?? _repository.DefaultPlatform;
            var (outcome, decided) = Decide(records.GetValueOrDefault((platform, product.Name, product.Version)),
                await NewRecordAsync(product, platform, productRoot, options, ct).ConfigureAwait(false), options);
            if (outcome == PublishOutcome.Unchanged) continue;
            root = await _repository.Trees.ReplaceAsync(Ingest, root, [platform, product.Name, product.Version], productRoot, ct).ConfigureAwait(false);
            records[(platform, product.Name, product.Version)] = decided;
        }

        // Sorted as Catalog.With keeps it, built once rather than re-sorted per product.
        var merged = catalog with
        {
            Products = [.. records.Values.OrderBy(p => p.Platform, StringComparer.Ordinal).ThenBy(p => p.Name, StringComparer.Ordinal).ThenBy(p => p.Version, StringComparer.Ordinal)],
        };
        var manifest = await CommitLockedAsync(head, new RevisionChange(root, merged, head.Tags, message), ct).ConfigureAwait(false);
        _repository.Logger.LogInformation("published {Count} products as revision {Revision}", products.Count, manifest.Revision);
        return manifest;
    }

    private async Task<ProductRecord> NewRecordAsync(ProductRef product, string platform, TreeEntry root, PublishOptions options, CancellationToken ct)
    {
        var files = 0L;
        var size = 0L;
        await foreach (var (_, e) in _repository.Trees.WalkAsync(root.Digest, ct).ConfigureAwait(false))
        {
            if (!e.IsFile) continue;
            files++;
            size += e.Size;
        }

        return new ProductRecord(platform, product.Name, product.Version, root.Digest, size, files, options.BuildKey,
            options.Dependencies, options.Tests, options.PublishedBy ?? ProductRepository.DefaultPublisher, _repository.Time.GetUtcNow(), Log: options.Log,
            Attestations: options.Attestations);
    }

    /// <summary>Whether the new record is published, replaces the existing one, or leaves it alone (then the existing record is returned).</summary>
    private (PublishOutcome Outcome, ProductRecord Record) Decide(ProductRecord? existing, ProductRecord record, PublishOptions options)
    {
        if (existing is null) return (PublishOutcome.Published, record);
        var product = new ProductRef(record.Name, record.Version);
        if (options.SkipIfBuildKeyPublished && options.BuildKey is not null && existing.BuildKey == options.BuildKey)
        {
            _repository.Logger.LogInformation("{Product} is already published with build key {BuildKey}", product, options.BuildKey);
            return (PublishOutcome.Unchanged, existing);
        }

        // Identical content is left alone, unless a replacement was asked for to record a new build key (a
        // rebuild that reproduced the product bit for bit): else the old key would look stale forever.
        if (existing.Root == record.Root && (!options.Replace || existing.BuildKey == options.BuildKey))
        {
            _repository.Logger.LogInformation("{Product} is already published with identical content", product);
            return (PublishOutcome.Unchanged, existing);
        }

        if (!options.Replace)
        {
            throw new CairnException(ErrorCode.ProductExists,
                $"{product} ({record.Platform}) is already published with different content (root {existing.Root.Abbreviated}, new {record.Root.Abbreviated})",
                "products are immutable: publish a new version, or pass --replace with --reason to replace it on purpose (recorded)");
        }

        return (PublishOutcome.Replaced, record with
        {
            Replaced = [.. existing.Replaced ?? [], new Replacement(existing.Root, record.PublishedAt, record.PublishedBy, options.ReplaceReason)],
        });
    }

    /// <summary>
    /// Adds a confirming builder's statements to a published product's attestation bundle (docs/format/provenance.md
    /// §5): a new revision whose tree holds the bundle at <paramref name="path"/> with <paramref name="lines"/>
    /// appended, and whose catalog record names it. Nothing is written (null) when the head no longer has the
    /// product with <paramref name="root"/>: the statements are about that tree only.
    /// </summary>
    public async Task<Manifest?> AppendAttestationsAsync(string platform, ProductRef product, Digest root, string path, byte[] lines, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(product);
        ArgumentNullException.ThrowIfNull(lines);
        var parts = ExtraPath(path);
        await using var commitLock = await LockCommitFreshAsync(ct).ConfigureAwait(false);
        var head = await _repository.HeadAsync(ct).ConfigureAwait(false);
        var catalog = await _repository.CatalogAsync(head, ct).ConfigureAwait(false);
        if (catalog.Find(platform, product) is not { } record || record.Root != root) return null;
        using var content = new MemoryStream();
        if (record.Attestations is { } current && await _repository.Trees.LookupAsync(head.Root, current, ct).ConfigureAwait(false) is { IsFile: true } existing)
        {
            await _repository.Trees.CopyContentAsync(existing, content, ct).ConfigureAwait(false);
        }

        content.Write(lines);
        content.Position = 0;
        var entry = await Ingest.AddFileAsync(parts[^1], content, content.Length, false, ct).ConfigureAwait(false);
        var newRoot = await _repository.Trees.ReplaceAsync(Ingest, TreeEntry.Dir("", head.RootSize, head.Root), parts, entry, ct).ConfigureAwait(false);
        await Objects.FlushAsync(ct).ConfigureAwait(false);
        return await CommitLockedAsync(head, new RevisionChange(newRoot, catalog.With(record with { Attestations = path }), head.Tags,
            $"attest {platform}/{product}"), ct).ConfigureAwait(false);
    }

    /// <summary>Commits a revision that is not a publish (rollback, tag): <paramref name="change"/> sees the head read under the commit lock.</summary>
    internal async Task<Manifest> CommitRevisionAsync(Func<Manifest, Task<RevisionChange>> change, CancellationToken ct)
    {
        await using var commitLock = await LockCommitFreshAsync(ct).ConfigureAwait(false);
        var head = await _repository.HeadAsync(ct).ConfigureAwait(false);
        return await CommitLockedAsync(head, await change(head).ConfigureAwait(false), ct).ConfigureAwait(false);
    }

    /// <summary>Revision 1 of a fresh repository: an empty tree and catalog. Nothing happens if the repository has a head.</summary>
    internal async Task CommitFirstRevisionAsync(CancellationToken ct)
    {
        await using var commitLock = await _repository.Store.LockCommitAsync(ct).ConfigureAwait(false);
        if (await _repository.Store.ReadHeadAsync(ct).ConfigureAwait(false) is not null) return;
        var root = await Ingest.AddDirectoryAsync("", [], ct).ConfigureAwait(false);
        var catalogDigest = await PutCatalogAsync(Catalog.Empty, ct).ConfigureAwait(false);
        var config = _repository.Store.Config;
        await CommitLoggedAsync(new Manifest(1, config.Name, 1, null, _repository.Time.GetUtcNow(), root.Digest, root.Size, catalogDigest,
            new Dictionary<string, long>(), "init"), null, ct).ConfigureAwait(false);
    }

    /// <summary>Takes the commit lock and catches up with the objects of revisions committed while we waited for it.</summary>
    private async Task<IAsyncDisposable> LockCommitFreshAsync(CancellationToken ct)
    {
        var commitLock = await _repository.Store.LockCommitAsync(ct).ConfigureAwait(false);
        try
        {
            await Objects.RefreshAsync(ct).ConfigureAwait(false);
            return commitLock;
        }
        catch
        {
            await commitLock.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Writes catalog and manifest: objects, then catalog, then manifest. Caller holds the commit lock.</summary>
    private async Task<Manifest> CommitLockedAsync(Manifest head, RevisionChange change, CancellationToken ct)
    {
        var catalogDigest = await PutCatalogAsync(change.Catalog, ct).ConfigureAwait(false);
        FaultPoints.Hit("after-catalog");
        var manifest = new Manifest(1, head.Repository, head.Revision + 1, head.Revision, _repository.Time.GetUtcNow(), change.Root.Digest, change.Root.Size,
            catalogDigest, new SortedDictionary<string, long>(change.Tags.ToDictionary(), StringComparer.Ordinal), change.Message);
        await CommitLoggedAsync(manifest, change.By, ct).ConfigureAwait(false);
        return manifest;
    }

    private Task CommitLoggedAsync(Manifest manifest, string? by, CancellationToken ct) => CommitLoggedAsync(_repository, manifest, by, null, ct);

    /// <summary>
    /// Commits the manifest and, in a signed repository, appends it to the publication log: tiles and entries first, the
    /// checkpoint last. A log that missed revisions (a commit that died between its head and its checkpoint, or a
    /// repository signed before it had a log) first catches up with the revisions still there. <paramref name="before"/>
    /// is a record logged just before the revision (gc's). Caller holds the commit lock.
    /// </summary>
    internal static async Task CommitLoggedAsync(WritableRepository repository, Manifest manifest, string? by, LogRecord? before, CancellationToken ct)
    {
        var store = repository.Store;
        if (store.CheckpointSigner is not { } signer)
        {
            await store.CommitAsync(manifest, ct).ConfigureAwait(false);
            return;
        }

        var log = new LogAppender(store, signer);
        var (size, last) = await log.ReadStateAsync(ct).ConfigureAwait(false);
        var records = await MissedRecordsAsync(store, last, manifest.Revision, ct).ConfigureAwait(false);
        if (before is not null) records.Add(before.Encode());
        records.Add(LogAppender.RecordOf(manifest, by ?? ProductRepository.DefaultPublisher).Encode());
        var checkpoint = await log.AppendAsync(size, records, ct).ConfigureAwait(false);
        FaultPoints.Hit("after-log-tiles");
        await store.CommitAsync(manifest, ct).ConfigureAwait(false);
        await log.PublishAsync(checkpoint, ct).ConfigureAwait(false);
    }

    /// <summary>Appends a record that is not a revision (gc that removed revisions) to a signed repository's log. Caller holds the commit lock.</summary>
    internal static async Task AppendLogLockedAsync(WritableRepository repository, LogRecord record, CancellationToken ct)
    {
        var store = repository.Store;
        if (store.CheckpointSigner is not { } signer) return;
        var log = new LogAppender(store, signer);
        var (size, last) = await log.ReadStateAsync(ct).ConfigureAwait(false);
        var records = await MissedRecordsAsync(store, last, record.Revision + 1, ct).ConfigureAwait(false);
        records.Add(record.Encode());
        var checkpoint = await log.AppendAsync(size, records, ct).ConfigureAwait(false);
        await log.PublishAsync(checkpoint, ct).ConfigureAwait(false);
    }

    /// <summary>Records of the revisions after the log's last one and before <paramref name="next"/> that still exist.</summary>
    private static async Task<List<byte[]>> MissedRecordsAsync(WritableRevisionStore store, LogRecord? last, long next, CancellationToken ct)
    {
        var records = new List<byte[]>();
        var by = $"{ProductRepository.DefaultPublisher} (catching up)";
        for (var r = (last?.Revision ?? 0) + 1; r < next; r++)
        {
            if (await store.ReadRevisionAsync(r, ct).ConfigureAwait(false) is { } missed) records.Add(LogAppender.RecordOf(missed, by).Encode());
        }

        return records;
    }

    /// <summary>
    /// Adds a witness's cosignature line to log/checkpoint if it still holds <paramref name="checkpointText"/> (a newer
    /// checkpoint needs a new cosignature); false otherwise. Takes the commit lock.
    /// </summary>
    internal static async Task<bool> AttachCosignatureAsync(WritableRepository repository, string checkpointText, NoteSignature cosignature, CancellationToken ct)
    {
        var store = repository.Store;
        await using var commitLock = await store.LockCommitAsync(ct).ConfigureAwait(false);
        var bytes = await store.LogSource.ReadAsync(LogFiles.Checkpoint, SignedNote.MaxBytes, ct).ConfigureAwait(false);
        if (bytes is null || SignedNote.Parse(bytes) is not { } note || note.Text != checkpointText) return false;
        var others = note.Signatures.Where(s => s.KeyName != cosignature.KeyName || s.KeyId != cosignature.KeyId);
        await store.WriteLogFileAsync(LogFiles.Checkpoint, new SignedNote(note.Text, [.. others, cosignature]).EncodeBytes(), ct).ConfigureAwait(false);
        return true;
    }

    private async Task<Digest> PutCatalogAsync(Catalog catalog, CancellationToken ct)
    {
        var bytes = CairnJson.Serialize(catalog, CoreJson.Default.Catalog);
        var digest = Digest.Of(bytes);
        await Objects.PutAsync(digest, bytes, ct).ConfigureAwait(false);
        await Objects.FlushAsync(ct).ConfigureAwait(false);
        return digest;
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

    /// <summary>Lets go of the objects lock: gc may run again.</summary>
    public ValueTask DisposeAsync() => _objectsLock.DisposeAsync();
}
