using System.Text.Json.Serialization;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Build;

/// <summary>
/// Where a build's dependencies come from (<c>cairn build --deps-from</c>): it names the product of NAME/VERSION on a
/// platform (whose root digest goes into the build key) and provides a host directory holding it, which the sandbox
/// binds read-only at the dependency's deployment prefix. Products are still published to the build's repository.
/// </summary>
public interface IDependencySource : IAsyncDisposable
{
    /// <summary>For messages and logs: "repo", "tarballs:DIR", "mount:/cvmfs/…", "http://…".</summary>
    string Description { get; }

    /// <summary>
    /// True for a source other than the repository being built into: a package it already holds is taken from it
    /// as it is (reported up to date, "provided by …") instead of being built.
    /// </summary>
    bool IsExternal { get; }

    /// <summary>The product of NAME/VERSION on the platform, or null when this source does not hold it.</summary>
    Task<ProductRecord?> FindAsync(string platform, string name, string version, CancellationToken ct);

    /// <summary>
    /// A host directory with the product's tree, to bind read-only; may lie below <paramref name="workDirectory"/>
    /// (the build's transient deps folder, deleted after the build) or elsewhere (a mount).
    /// </summary>
    Task<string> ProvideAsync(ProductRecord product, string workDirectory, CancellationToken ct);
}

/// <summary>
/// A repository as the dependency source: the one being built into (<c>--deps-from repo</c>, the default) or a
/// remote one read over HTTP. Products are materialized through the unpacked-object cache, every object verified.
/// </summary>
public sealed class RepositoryDependencySource(ProductRepository repository, string? cacheDirectory, string description, bool external, IAsyncDisposable? owned = null)
    : IDependencySource
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private Catalog? _catalog;
    private long _revision = -1;

    public string Description => description;

    public bool IsExternal => external;

    public async Task<ProductRecord?> FindAsync(string platform, string name, string version, CancellationToken ct)
    {
        var catalog = await CatalogAsync(ct).ConfigureAwait(false);
        return catalog.Find(platform, new ProductRef(name, version));
    }

    /// <summary>The head's catalog; re-read when the head moved (the repository being built into grows during a build).</summary>
    private async Task<Catalog> CatalogAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_catalog is not null && external) return _catalog;
            var head = await repository.HeadAsync(ct).ConfigureAwait(false);
            if (_catalog is null || head.Revision != _revision)
            {
                _catalog = await repository.CatalogAsync(head, ct).ConfigureAwait(false);
                _revision = head.Revision;
            }

            return _catalog;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<string> ProvideAsync(ProductRecord product, string workDirectory, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(product);
        await new Materializer(repository.Trees).MaterializeAsync(product, workDirectory, new MaterializeOptions { CacheDirectory = cacheDirectory }, null, ct)
            .ConfigureAwait(false);
        return Path.Combine(workDirectory, product.Platform, product.Name, product.Version);
    }

    public async ValueTask DisposeAsync()
    {
        _gate.Dispose();
        if (owned is not null) await owned.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>A parsed <c>--deps-from</c> value: repo, http(s)://URL[,URL…], tarballs:DIR or mount:PATH_OR_URL.</summary>
public sealed record DependencySourceSpec(DependencySourceKind Kind, string Location)
{
    public static DependencySourceSpec Repository { get; } = new(DependencySourceKind.Repository, "");

    public static DependencySourceSpec Parse(string? value)
    {
        if (string.IsNullOrWhiteSpace(value) || value == "repo") return Repository;
        if (RepositoryLocation.Parse(value) is HttpLocation)
        {
            return new(DependencySourceKind.Http, value);
        }

        if (value.StartsWith("tarballs:", StringComparison.Ordinal) && value.Length > "tarballs:".Length)
        {
            return new(DependencySourceKind.Tarballs, Path.GetFullPath(value["tarballs:".Length..]));
        }

        if (value.StartsWith("mount:", StringComparison.Ordinal) && value.Length > "mount:".Length)
        {
            var location = value["mount:".Length..];
            return new(DependencySourceKind.Mount, location.Contains("://", StringComparison.Ordinal) ? location : Path.GetFullPath(location));
        }

        throw new CairnException(ErrorCode.DepsSourceInvalid, $"--deps-from '{value}' is not a dependency source",
            "use repo (the default), http(s)://SERVER[,SERVER…], tarballs:DIR or mount:PATH_OR_URL");
    }

    public override string ToString() => Kind switch
    {
        DependencySourceKind.Repository => "repo",
        DependencySourceKind.Http => Location,
        DependencySourceKind.Tarballs => "tarballs:" + Location,
        _ => "mount:" + Location,
    };
}

[JsonConverter(typeof(CamelCaseEnumConverter<DependencySourceKind>))]
public enum DependencySourceKind
{
    Repository,
    Http,
    Tarballs,
    Mount,
}
