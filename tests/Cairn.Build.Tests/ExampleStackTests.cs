using System.Text;
using Cairn.Build.Recipes;
using Cairn.Sandbox;

namespace Cairn.Build.Tests;

/// <summary>
/// Runs the example recipes' unpack, build and check phases by hand in the real sandbox (hello and zlib only:
/// the rest take minutes).
/// </summary>
public sealed class ExampleStackTests : IDisposable
{
    private static readonly DeploymentLayout Layout = new("/cvmfs/cairn.example", "generic", Platform.Detect());
    private readonly string _scratch = Directory.CreateTempSubdirectory("cairn-example-").FullName;
    private readonly BubblewrapSandbox _sandbox = new();

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    private Task<string> BuildAsync(RecipeGraph graph, string name, Dictionary<string, string> products, string? extraSources = null) =>
        BuildAsync(_sandbox, graph, name, products, [], extraSources);

    private async Task<string> BuildAsync(BubblewrapSandbox sandbox, RecipeGraph graph, string name, Dictionary<string, string> products, List<SandboxResult> results, string? extraSources = null)
    {
        var recipe = graph[name];
        var stack = Path.GetDirectoryName(recipe.Directory)!;
        var resolver = new SourceResolver(extraSources is null ? [SourceResolver.DefaultDirectory(stack)] : [SourceResolver.DefaultDirectory(stack), extraSources]);
        var paths = new BuildPaths(
            Directory.CreateDirectory(Path.Combine(_scratch, name, "workspace")).FullName,
            Directory.CreateDirectory(Path.Combine(_scratch, name, "prefix")).FullName,
            [.. recipe.Sources.Select(s => resolver.Resolve(recipe, s))],
            [.. graph.TransitiveDependencies(name).Reverse().Select(d => (d, products[d.Name]))]);
        var limits = new SandboxLimits { WallTime = TimeSpan.FromMinutes(10) };
        var log = new StringBuilder();
        foreach (var phase in new[] { BuildPhase.Unpack, BuildPhase.Build, BuildPhase.Check })
        {
            using var stream = new MemoryStream();
            var result = await sandbox.RunAsync(BuildSteps.Create(recipe, phase, Layout, paths, limits), stream, default);
            results.Add(result);
            log.Append(Encoding.UTF8.GetString(stream.ToArray()));
            Assert.True(result.Succeeded, $"{name} {phase}: {result.Describe()}\n{log}");
        }

        products[name] = paths.Prefix;
        return log.ToString();
    }

    [Fact]
    public async Task Hello_and_zlib_build_and_pass_their_checks()
    {
        var graph = RecipeGraph.Load(Path.Combine(RecipeDir.RepoRoot(), "examples", "stack"));
        var products = new Dictionary<string, string>();
        var hello = await BuildAsync(graph, "hello", products);
        Assert.Contains("Hello, world!", hello);
        Assert.True(File.Exists(Path.Combine(products["hello"], "bin", "hello")));

        var zlib = await BuildAsync(graph, "zlib", products);
        Assert.Contains("zlib 1.2.13 ok", zlib);
        Assert.True(File.Exists(Path.Combine(products["zlib"], "lib", "libz.so")));
    }

    [Fact]
    public async Task Hello_builds_the_same_without_cgroups_and_its_tree_keeps_its_owner()
    {
        // What a CI runner without cgroup delegation gets: run as root, each phase under a host uid of its own
        // (docs/recipes.md, "What each host gets"); the workspace and prefix are handed back afterwards.
        var sandbox = new BubblewrapSandbox(new BubblewrapOptions { UseCgroups = false });
        var graph = RecipeGraph.Load(Path.Combine(RecipeDir.RepoRoot(), "examples", "stack"));
        var products = new Dictionary<string, string>();
        var results = new List<SandboxResult>();
        Assert.Contains("Hello, world!", await BuildAsync(sandbox, graph, "hello", products, results));
        Assert.True(File.Exists(Path.Combine(products["hello"], "bin", "hello")));
        var expected = Environment.IsPrivilegedProcess ? ProcessLimitEnforcement.IsolatedUid : ProcessLimitEnforcement.InvokingUserRlimit;
        Assert.All(results, r => Assert.Equal(expected, r.ProcessLimitBy));

        // Every file the phases wrote into the workspace and prefix belongs to whoever runs the build again.
        var self = Assert.Single(await OwnersAsync(_scratch, "-maxdepth", "0"));
        Assert.Equal([self], await OwnersAsync(Path.Combine(_scratch, "hello")));
    }

    /// <summary>The distinct owners (uid) of <paramref name="root"/> and what is below it.</summary>
    private static async Task<List<string>> OwnersAsync(string root, params string[] findOptions)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("find") { RedirectStandardOutput = true };
        foreach (var a in (string[])[root, .. findOptions, "-printf", "%U\n"]) psi.ArgumentList.Add(a);
        using var find = System.Diagnostics.Process.Start(psi)!;
        var output = await find.StandardOutput.ReadToEndAsync();
        await find.WaitForExitAsync();
        Assert.Equal(0, find.ExitCode);
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Distinct()];
    }

    /// <summary>The freetype chain: about a minute, so only with CAIRN_SLOW_EXAMPLES=1 or =all (else reported skipped).</summary>
    [SlowExamplesFact("1", "all")]
    public async Task The_freetype_chain_builds_and_passes_its_check()
    {
        var graph = RecipeGraph.Load(Path.Combine(RecipeDir.RepoRoot(), "examples", "stack"));
        var products = new Dictionary<string, string>();
        await BuildAsync(graph, "zlib", products);
        await BuildAsync(graph, "libpng", products);
        Assert.Contains("freetype 2.12.1 ok", await BuildAsync(graph, "freetype", products));
    }

    /// <summary>gsl: minutes of compiling, so only with CAIRN_SLOW_EXAMPLES=all (else reported skipped).</summary>
    [SlowExamplesFact("all")]
    public async Task Gsl_builds_and_passes_its_check()
    {
        var graph = RecipeGraph.Load(Path.Combine(RecipeDir.RepoRoot(), "examples", "stack"));

        // gsl's tarball is not committed; it comes from the shared sources beside the checkout.
        Assert.Contains("J0(5)", await BuildAsync(graph, "gsl", [], RecipeDir.SharedSources()));
    }
}

/// <summary>
/// A test of the slow example builds: run when CAIRN_SLOW_EXAMPLES has one of the given values, otherwise
/// skipped with the reason in the results (never an early return that counts as passed).
/// </summary>
public sealed class SlowExamplesFactAttribute : FactAttribute
{
    public SlowExamplesFactAttribute(params string[] values)
    {
        var mode = Environment.GetEnvironmentVariable("CAIRN_SLOW_EXAMPLES");
        if (mode is null || !values.Contains(mode))
        {
            Skip = $"a slow example build (minutes): set CAIRN_SLOW_EXAMPLES={string.Join(" or ", values)} to run it";
        }
    }
}
