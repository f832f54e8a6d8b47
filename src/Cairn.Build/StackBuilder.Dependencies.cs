using Cairn.Build.Recipes;
using Cairn.Core;
using Cairn.Repository;
using Microsoft.Extensions.Logging;

namespace Cairn.Build;

/// <summary>Where dependencies come from (<see cref="StackOptions.Dependencies"/>, <c>--deps-from</c>).</summary>
public sealed partial class StackBuilder
{
    /// <summary>The external dependency source, or null when dependencies come from the repository being built into.</summary>
    private static IDependencySource? ExternalSource(StackOptions options) => options.Dependencies is { IsExternal: true } external ? external : null;

    /// <summary>
    /// The product an external source holds for a package that is only needed, not asked for: with --deps-from,
    /// --only names what to build and everything those packages need comes from the source as it is (CAIRN-E0631
    /// when the source lacks it). Packages named by --only (all of them without it) are always decided against,
    /// built into and taken from the repository. Null: not provided.
    /// </summary>
    private static async Task<ProductRecord?> ProvidedAsync(StackOptions options, string platform, Recipe recipe, CancellationToken ct)
    {
        if (ExternalSource(options) is not { } external || options.Only.Count == 0 || options.Only.Contains(recipe.Name, StringComparer.Ordinal)) return null;
        if (await external.FindAsync(platform, recipe.Name, recipe.Version, ct).ConfigureAwait(false) is { } held) return held;
        var inventory = external is TarballDependencySource tarballs
            ? $"; it holds {string.Join(", ", await tarballs.HeldAsync(ct).ConfigureAwait(false) is { Count: > 0 } l ? l : ["no product"])}"
            : "";
        throw new CairnException(ErrorCode.DepsProductMissing,
            $"{recipe.Id} ({platform}) is needed but {external.Description} does not hold it{inventory}",
            "add it to the dependency source (cairn export NAME/VERSION --with-deps -o DIR/NAME-VERSION.tar.zst), or name it with --only to build it");
    }

    private static string ProvidedReason(IDependencySource external, ProductRecord product) =>
        $"provided by {external.Description} (product {product.Root.Abbreviated}); not built";

    /// <summary>cairn plan: the entry of a package the dependency source provides (or lacks); null when it is decided as usual.</summary>
    private static async Task<PlanEntry?> ProvidedEntryAsync(StackOptions options, string platform, Recipe recipe, CancellationToken ct)
    {
        try
        {
            return await ProvidedAsync(options, platform, recipe, ct).ConfigureAwait(false) is { } product
                ? new PlanEntry(recipe.Name, recipe.Version, PlanAction.UpToDate, ProvidedReason(options.Dependencies!, product), product.BuildKey, product.BuildKey)
                : null;
        }
        catch (CairnException e)
        {
            return new PlanEntry(recipe.Name, recipe.Version, PlanAction.Error, Describe(e), Code: e.CodeName);
        }
    }

    /// <summary>cairn build: the result of a package the dependency source provides (or lacks); null when it is built as usual.</summary>
    private async Task<PackageResult?> ProvidedResultAsync(StackOptions options, string platform, Recipe recipe, long started, CancellationToken ct)
    {
        try
        {
            return await ProvidedAsync(options, platform, recipe, ct).ConfigureAwait(false) is { } product
                ? new PackageResult
                {
                    Name = recipe.Name, Version = recipe.Version, Status = PackageStatus.UpToDate, Reason = ProvidedReason(options.Dependencies!, product),
                    BuildKey = product.BuildKey, Product = product.Root, Tests = product.Tests, Duration = time.GetElapsedTime(started),
                }
                : null;
        }
        catch (CairnException e)
        {
            return Failed(recipe, e.Code, Describe(e), null, time.GetElapsedTime(started), null);
        }
    }

    /// <summary>Each transitive dependency's product: from the external source if it holds it, else from the repository.</summary>
    private static async Task<Dictionary<string, ProductRecord>> DependencyRecordsAsync(
        StackOptions options, string platform, Recipe recipe, IReadOnlyList<Recipe> deps, Catalog catalog, CancellationToken ct)
    {
        var products = new Dictionary<string, ProductRecord>(deps.Count, StringComparer.Ordinal);
        // Planning asks this for every transitive dependency of every recipe; without a source that provides
        // packages (ProvidedAsync's first test) the catalog answers alone, with no task per dependency.
        var maybeProvided = ExternalSource(options) is not null && options.Only.Count > 0;
        foreach (var dep in deps)
        {
            products[dep.Name] = (maybeProvided ? await ProvidedAsync(options, platform, dep, ct).ConfigureAwait(false) : null)
                ?? Find(catalog, platform, dep)
                ?? throw new CairnException(ErrorCode.DependencyProductMissing, $"{recipe.Id} needs {dep.Id}, which is not published for {platform}", "build it first");
        }

        return products;
    }

    /// <summary>Puts a dependency's product where the sandbox can bind it; returns that host directory.</summary>
    private async Task<string> ProvideDependencyAsync(StackOptions options, Recipe dep, ProductRecord product, string depsRoot, CancellationToken ct)
    {
        if (ExternalSource(options) is { } external && await ProvidedAsync(options, product.Platform, dep, ct).ConfigureAwait(false) is { } held && held.Root == product.Root)
        {
            _log.LogDebug("dependency {Product} from {Source}", product.Ref, external.Description);
            return await external.ProvideAsync(product, depsRoot, ct).ConfigureAwait(false);
        }

        await new Materializer(repository.Trees).MaterializeAsync(product, depsRoot, new MaterializeOptions { CacheDirectory = options.CacheDirectory }, null, ct).ConfigureAwait(false);
        return Path.Combine(depsRoot, product.Platform, product.Name, product.Version);
    }
}
