using System.CommandLine;
using Cairn.Build;
using Cairn.Repository;

namespace Cairn.Cli.Commands.Build;

/// <summary>Arguments shared by 'cairn plan' and 'cairn build'.</summary>
public sealed class StackArguments
{
    public Argument<string> Recipes { get; } = new("recipes") { Description = "Recipes directory: one folder per package holding recipe.yml" };

    public Option<string[]> Sources { get; } = new("--sources") { Description = "Another source directory (repeatable); RECIPES/sources is always searched first", AllowMultipleArgumentsPerToken = true };

    public Option<string[]> Only { get; } = new("--only") { Description = "Only these packages and what they need (repeatable)", AllowMultipleArgumentsPerToken = true };

    public Option<string> DeploymentSite { get; } = new("--deployment-site") { Description = "Site component of the deployment path (CODE-RADE's SITE)", DefaultValueFactory = _ => "generic" };

    public Option<string?> BuildSite { get; } = new("--site") { Description = "Name of this CI site (Jenkins, GitLab, …): recorded with each build; with --gateway, the registered site (default: the host name)" };

    public Option<string> DeploymentRoot { get; } = new("--deployment-root") { Description = "Deployment root (CODE-RADE's CVMFS_DIR); products are built for ROOT/SITE/OS/ARCH/NAME/VERSION", DefaultValueFactory = _ => "/cvmfs/cairn" };

    public Option<string?> Platform { get; } = ProductArguments.Platform();

    public Option<bool> NoReplace { get; } = new("--no-replace") { Description = "Refuse (instead of rebuilding and replacing) a NAME/VERSION published with another build key" };

    public Option<string?> DepsFrom { get; } = new("--deps-from")
    {
        Description = "Where dependencies come from: repo (default: the --repo repository), http(s)://SERVER[,SERVER…], tarballs:DIR (cairn export files) " +
                      "or mount:PATH_OR_URL (a cairn mount; a URL is mounted for the build). With --only, the packages it names are built and everything they need is taken from there",
    };

    /// <summary>The --deps-from source, opened; null for the repository being built into. The caller disposes it.</summary>
    public Task<IDependencySource?> OpenDependenciesAsync(CliContext ctx, StackOptions options, CancellationToken ct) =>
        DependencySourceFactory.OpenAsync(ctx, DependencySourceSpec.Parse(ctx.Parse.GetValue(DepsFrom)), options, ct);

    public void AddTo(Command command)
    {
        command.Options.Add(DepsFrom);
        command.Arguments.Add(Recipes);
        command.Options.Add(Sources);
        command.Options.Add(Only);
        command.Options.Add(DeploymentSite);
        command.Options.Add(BuildSite);
        command.Options.Add(DeploymentRoot);
        command.Options.Add(Platform);
        command.Options.Add(NoReplace);
    }

    public StackOptions Options(CliContext ctx)
    {
        var parse = ctx.Parse;
        var root = parse.GetValue(DeploymentRoot)!;
        if (!root.StartsWith('/'))
        {
            throw new Core.CairnException(Core.ErrorCode.Usage, $"--deployment-root '{root}' is not an absolute path", "e.g. --deployment-root /cvmfs/cairn.example.org");
        }

        // A repository read over http(s) is only planned from (a build refuses it, a gateway site has its own work directory).
        var work = ctx.Location is WritableLocation writable
            ? (Builds: writable.BuildsDirectory, Cache: CliContext.CacheDirectory(null, writable))
            : (Builds: Path.Combine(RepositoryLocation.UserCacheDirectory, "builds"), Cache: Path.Combine(RepositoryLocation.UserCacheDirectory, "objects"));
        return new StackOptions
        {
            RecipesDirectory = Path.GetFullPath(parse.GetValue(Recipes)!),
            SourceDirectories = [.. (parse.GetValue(Sources) ?? []).Select(Path.GetFullPath)],
            Only = parse.GetValue(Only) ?? [],
            DeploymentSite = parse.GetValue(DeploymentSite)!,
            BuildSite = parse.GetValue(BuildSite) ?? Environment.MachineName,
            DeploymentRoot = root,
            Platform = parse.GetValue(Platform),
            WhenKeyChanged = parse.GetValue(NoReplace) ? ChangedKeyPolicy.Refuse : ChangedKeyPolicy.Replace,
            BuildsDirectory = work.Builds,
            CacheDirectory = work.Cache,
        };
    }
}
