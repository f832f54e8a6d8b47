using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Build;

/// <summary>
/// <c>--deps-from tarballs:DIR</c>: products exported with <c>cairn export</c> (deployment layout,
/// PLATFORM/NAME/VERSION/…) into DIR. A tarball is read only when a dependency is needed: it goes through the
/// Importer's checks (virtual tree: no traversal, link escapes, special files, bombs) into a private scratch
/// repository, which computes each product's root digest exactly as publishing does; the product is then unpacked
/// read-only from there. No repository is needed on the build host beyond the one products are published to.
/// </summary>
public sealed class TarballDependencySource : IDependencySource
{
    private static readonly string[] Extensions = [".tar.zst", ".tar.gz", ".tgz", ".tar"];

    private readonly string _directory;
    private readonly string _scratch;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, ProductRepository> _imported = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Platform, string Name, string Version), (ProductRecord Record, ProductRepository From, string File)> _products = [];

    /// <param name="directory">Where the tarballs are.</param>
    /// <param name="scratchDirectory">A new directory for the scratch repositories; deleted on dispose.</param>
    public TarballDependencySource(string directory, string scratchDirectory, TimeProvider time, ILogger? logger = null)
    {
        _directory = Path.GetFullPath(directory);
        if (!Directory.Exists(_directory))
        {
            throw new CairnException(ErrorCode.DepsSourceInvalid, $"--deps-from tarballs:{_directory}: the directory does not exist",
                "export the dependencies there first: cairn export NAME/VERSION --with-deps -o DIR/NAME-VERSION.tar.zst");
        }

        _scratch = Path.GetFullPath(scratchDirectory);
        _time = time;
        _log = logger ?? NullLogger.Instance;
    }

    public string Description => "tarballs:" + _directory;

    public bool IsExternal => true;

    /// <summary>Tarballs in DIR, most likely holders of NAME first (file name starting with NAME-VERSION, then NAME).</summary>
    private List<string> Candidates(string name, string version) =>
        [.. Directory.EnumerateFiles(_directory)
            .Where(f => Extensions.Any(e => f.EndsWith(e, StringComparison.Ordinal)))
            .OrderBy(f => Path.GetFileName(f).StartsWith($"{name}-{version}", StringComparison.Ordinal) ? 0
                : Path.GetFileName(f).StartsWith(name, StringComparison.Ordinal) ? 1 : 2)
            .ThenBy(f => f, StringComparer.Ordinal)];

    public async Task<ProductRecord?> FindAsync(string platform, string name, string version, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var key = (platform, name, version);
            if (_products.TryGetValue(key, out var known)) return known.Record;
            foreach (var file in Candidates(name, version))
            {
                if (_imported.ContainsKey(file)) continue;
                await ImportAsync(file, ct).ConfigureAwait(false);
                if (_products.TryGetValue(key, out known)) return known.Record;
            }

            return null;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>What DIR holds, as far as read: for the message naming a missing product.</summary>
    public async Task<IReadOnlyList<string>> HeldAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return [.. _products.Keys.Select(k => $"{k.Name}/{k.Version} ({k.Platform})").Order(StringComparer.Ordinal)];
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task ImportAsync(string file, CancellationToken ct)
    {
        var target = Path.Combine(_scratch, _imported.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var repository = await DirectoryRepository.InitAsync(target, "deps-from-tarball", null, _time, _log, ct).ConfigureAwait(false);
        _imported[file] = repository;
        // The Importer checks every entry against a virtual tree before anything is committed (docs/errors.md, 3xx).
        var results = await new Importer(repository).ImportAsync(file, new ImportOptions(), ct).ConfigureAwait(false);
        foreach (var result in results)
        {
            var record = result.Product;
            var key = (record.Platform, record.Name, record.Version);
            if (_products.TryGetValue(key, out var other))
            {
                if (other.Record.Root == record.Root) continue;
                throw new CairnException(ErrorCode.DepsTarballConflict,
                    $"{record.Name}/{record.Version} ({record.Platform}) is in both '{other.File}' (root {other.Record.Root.Abbreviated}) and '{file}' (root {record.Root.Abbreviated}) with different content",
                    "keep only one export of each product in the directory");
            }

            _products[key] = (record, repository, file);
            _log.LogInformation("dependency {Product} ({Platform}) from {File}: root {Root}", record.Ref, record.Platform, file, record.Root.Abbreviated);
        }
    }

    public async Task<string> ProvideAsync(ProductRecord product, string workDirectory, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(product);
        ProductRepository from;
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (!_products.TryGetValue((product.Platform, product.Name, product.Version), out var known) || known.Record.Root != product.Root)
            {
                throw new InvalidOperationException($"{product.Ref} was not named by this source");
            }

            from = known.From;
        }
        finally
        {
            _gate.Release();
        }

        // Read-only hardlinks from the scratch repository's unpacked-object cache.
        await new Materializer(from.Trees).MaterializeAsync(product, workDirectory, new MaterializeOptions { CacheDirectory = Path.Combine(_scratch, "cache") }, null, ct)
            .ConfigureAwait(false);
        return Path.Combine(workDirectory, product.Platform, product.Name, product.Version);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var repository in _imported.Values) await repository.DisposeAsync().ConfigureAwait(false);
        _imported.Clear();
        _gate.Dispose();
        StackBuilder.DeleteTree(_scratch);
    }
}
