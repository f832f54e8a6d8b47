using Cairn.Build.Recipes;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Sandbox;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Build;

/// <summary>Inputs of <see cref="Challenge"/>: the recipes the product was built from and how it was built.</summary>
public sealed record ChallengeOptions
{
    public required string RecipesDirectory { get; init; }

    public IReadOnlyList<string> SourceDirectories { get; init; } = [];

    /// <summary>Repository platform of the product; null: the repository's default.</summary>
    public string? Platform { get; init; }

    /// <summary>As for <c>cairn build</c>: part of the build key, so it must be the one the product was built with.</summary>
    public string DeploymentSite { get; init; } = "generic";

    public string DeploymentRoot { get; init; } = "/cvmfs/cairn";

    public SandboxLimits Limits { get; init; } = new();

    public long SourceDateEpoch { get; init; } = SandboxContract.DefaultSourceDateEpoch;

    public TreeDiffOptions Diff { get; init; } = new();

    /// <summary>Where the scratch repository and build are made (removed afterwards); null: the system's temporary directory.</summary>
    public string? WorkDirectory { get; init; }
}

/// <param name="Product">NAME/VERSION.</param>
/// <param name="Reproducible">True when the rebuild's root digest equals the published one (bit for bit the same tree).</param>
/// <param name="Copied">The dependency (and build environment) products copied into the scratch repository.</param>
/// <param name="FailureLog">A failed rebuild's log, kept on the host; null otherwise.</param>
public sealed record ChallengeResult(
    string Product,
    string Platform,
    bool Reproducible,
    string BuildKey,
    Digest Published,
    Digest Rebuilt,
    string PublishedBy,
    DateTimeOffset PublishedAt,
    IReadOnlyList<FileDifference> Differences,
    bool Truncated,
    IReadOnlyList<string> Copied,
    TimeSpan Duration);

/// <summary>
/// Rebuilds a published product on this machine and compares the result with what is published, like
/// <c>guix challenge</c>. The published dependencies are copied (same roots and build keys) into a scratch
/// repository, <see cref="StackBuilder"/> builds only the product there, and <see cref="TreeDiff"/> compares the two
/// roots across the repositories. The published repository is only read, so it may be remote.
/// </summary>
public sealed class Challenge(ProductRepository published, ISandbox sandbox, TimeProvider time, ILogger? logger = null)
{
    private readonly ILogger _log = logger ?? NullLogger.Instance;

    public async Task<ChallengeResult> RunAsync(ProductRef product, ChallengeOptions options, IBuildMonitor? monitor, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        var started = time.GetTimestamp();
        var platform = options.Platform ?? published.DefaultPlatform;
        var record = await published.FindAsync(product, platform, null, ct).ConfigureAwait(false);
        if (record.BuildKey is null)
        {
            throw new CairnException(ErrorCode.ChallengeNoBuildKey,
                $"{product} ({platform}) was published without a build key (by hand or imported), so there is no recipe build to repeat",
                "only products published by 'cairn build' can be challenged");
        }

        var recipe = FindRecipe(product, options.RecipesDirectory);
        var toCopy = await InputsToCopyAsync(record, recipe, platform, ct).ConfigureAwait(false);
        var scratch = options.WorkDirectory is null
            ? Directory.CreateTempSubdirectory("cairn-challenge-").FullName
            : Directory.CreateDirectory(Path.Combine(options.WorkDirectory, $"cairn-challenge-{Guid.NewGuid():N}")).FullName;
        try
        {
            var repoPath = Path.Combine(scratch, "repo");
            await using var rebuilt = await DirectoryRepository.InitAsync(repoPath, "challenge", platform, time, logger, ct).ConfigureAwait(false);
            foreach (var dep in toCopy)
            {
                _log.LogInformation("copying {Product} ({Root}) into the scratch repository", dep.Ref, dep.Root.Abbreviated);
                await ProductCopier.CopyAsync(published, dep, rebuilt, ct).ConfigureAwait(false);
            }

            var root = await RebuildAsync(product, record, options, platform, rebuilt, repoPath, monitor, ct).ConfigureAwait(false);
            var diff = await TreeDiff.CompareAsync(published.Trees, record.Root, rebuilt.Trees, root, options.Diff, ct).ConfigureAwait(false);
            var reproducible = root == record.Root;
            _log.LogInformation("{Product}: published {Published}, rebuilt {Rebuilt}: {Verdict}", product, record.Root.Abbreviated, root.Abbreviated,
                reproducible ? "reproducible" : "NOT reproducible");
            return new ChallengeResult(product.ToString(), platform, reproducible, record.BuildKey, record.Root, root, record.PublishedBy, record.PublishedAt,
                diff.Files, diff.Truncated, [.. toCopy.Select(p => p.Ref.ToString())], time.GetElapsedTime(started));
        }
        finally
        {
            StackBuilder.DeleteTree(scratch);
        }
    }

    private static Recipe FindRecipe(ProductRef product, string recipesDirectory)
    {
        var graph = RecipeGraph.Load(recipesDirectory);
        if (!graph.Contains(product.Name) || graph[product.Name].Version != product.Version)
        {
            throw new CairnException(ErrorCode.ChallengeRecipeMissing,
                graph.Contains(product.Name)
                    ? $"{recipesDirectory} has {graph[product.Name].Id}, not {product}"
                    : $"{recipesDirectory} has no recipe for {product.Name}",
                "give the recipes directory the product was built from");
        }

        return graph[product.Name];
    }

    /// <summary>The published products the rebuild needs: the dependency closure, and the build environment if there is one.</summary>
    private async Task<List<ProductRecord>> InputsToCopyAsync(ProductRecord record, Recipe recipe, string platform, CancellationToken ct)
    {
        var catalog = await published.CatalogAsync(await published.HeadAsync(ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        var toCopy = DependencyClosure.Resolve(catalog, platform, record.Dependencies.Select(ProductRef.Parse)).ToList();
        if (recipe.BuildEnvironment is { } envName)
        {
            var envs = catalog.Products.Where(p => p.Platform == platform &&
                (envName.Contains('/', StringComparison.Ordinal) ? $"{p.Name}/{p.Version}" == envName : p.Name == envName)).ToList();
            // Anything but one match is left for the build to report, with its own error.
            if (envs.Count == 1 && !toCopy.Contains(envs[0])) toCopy.Add(envs[0]);
        }

        return toCopy;
    }

    /// <summary>Builds only the product in the scratch repository; returns its root, or throws if it did not build under the published key.</summary>
    private async Task<Digest> RebuildAsync(ProductRef product, ProductRecord record, ChallengeOptions options, string platform, WritableRepository rebuilt,
        string repoPath, IBuildMonitor? monitor, CancellationToken ct)
    {
        var stackOptions = new StackOptions
        {
            RecipesDirectory = options.RecipesDirectory,
            SourceDirectories = options.SourceDirectories,
            Only = [product.Name],
            Platform = platform,
            DeploymentSite = options.DeploymentSite,
            DeploymentRoot = options.DeploymentRoot,
            BuildsDirectory = Path.Combine(repoPath, "builds"),
            CacheDirectory = DirectoryRepository.DefaultCacheDirectory(repoPath),
            Limits = options.Limits,
            SourceDateEpoch = options.SourceDateEpoch,
            WhenKeyChanged = ChangedKeyPolicy.Refuse,
            Publisher = "cairn challenge",
        };
        var builder = new StackBuilder(rebuilt, sandbox, time, logger);
        CheckPlan(product, record, await builder.PlanAsync(stackOptions, ct).ConfigureAwait(false));

        var build = await builder.BuildAsync(stackOptions, monitor, ct).ConfigureAwait(false);
        var result = build.Packages.Single(p => p.Name == product.Name);
        if (result.Status != PackageStatus.Built || result.Product is not { } root)
        {
            throw new CairnException(ErrorCode.ChallengeRebuildFailed,
                $"the rebuild of {product} did not succeed: {result.Code} {result.Reason}{KeepLog(result, product)}",
                "a product whose build fails here cannot be compared; fix the build environment (sources, bubblewrap) and try again");
        }

        if (result.BuildKey != record.BuildKey)
        {
            // PlanAsync already compared the keys; a difference here means the recipes changed during the build.
            throw RecipesChanged(product, record.BuildKey, result.BuildKey);
        }

        return root;
    }

    /// <summary>The dependencies must be up to date (copied with their keys) and the product's key must be the published one.</summary>
    private static void CheckPlan(ProductRef product, ProductRecord record, BuildPlan plan)
    {
        foreach (var entry in plan.Packages)
        {
            if (entry.Action == PlanAction.Error)
            {
                throw new CairnException(ErrorCode.ChallengeRebuildFailed, $"{entry.Name}/{entry.Version} cannot be built here: {entry.Code} {entry.Reason}",
                    "give the sources with --sources and the recipes the product was built from");
            }

            if (entry.Name == product.Name) continue;
            if (entry.Action != PlanAction.UpToDate)
            {
                throw new CairnException(ErrorCode.ChallengeRecipesChanged,
                    $"the recipes changed since {product} was published: its dependency {entry.Name}/{entry.Version} " +
                    (entry.PublishedBuildKey is null
                        ? "is not among the products it was built with"
                        : $"was published with build key {Short(entry.PublishedBuildKey)}, the recipes now give {Short(entry.BuildKey)}"),
                    "challenge with the recipes (and --deployment-root/--deployment-site) the product was built with, e.g. the recipes repository at the commit that published it");
            }
        }

        var self = plan.Packages.Single(p => p.Name == product.Name);
        if (self.BuildKey != record.BuildKey) throw RecipesChanged(product, record.BuildKey, self.BuildKey);
    }

    private static CairnException RecipesChanged(ProductRef product, string? publishedKey, string? key) => new(ErrorCode.ChallengeRecipesChanged,
        $"the recipes changed since {product} was published: it was built with build key {Short(publishedKey)}, the recipes (with these sources, " +
        $"deployment path and dependencies) now give {Short(key)}, so a rebuild would not be comparable",
        "challenge with the recipes (and --deployment-root/--deployment-site) the product was built with, e.g. the recipes repository at the commit that published it");

    private static string Short(string? key) => key is null ? "(none)" : key[..Math.Min(12, key.Length)];

    /// <summary>Copies a failed rebuild's log out of the scratch directory, which is removed.</summary>
    private static string KeepLog(PackageResult result, ProductRef product)
    {
        if (result.LogFile is null || !File.Exists(result.LogFile)) return "";
        var kept = Path.Combine(Path.GetTempPath(), $"cairn-challenge-{product.Name}-{product.Version}-{Guid.NewGuid().ToString("N")[..8]}.log");
        File.Copy(result.LogFile, kept);
        return $"; log: {kept}";
    }
}
