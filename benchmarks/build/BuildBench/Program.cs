using System.Diagnostics;
using System.Text;
using Cairn.Build;
using Cairn.Build.Recipes;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Sandbox;

// benchmarks/build/run.sh drives this:
//   BuildBench sandbox N [--no-cgroups]  N runs of `sh -c true` in the real sandbox against N direct runs; prints seconds per run
//   BuildBench seed DIR N         DIR/recipes: N synthetic recipes; DIR/repo: a repository where all are published
//                                 with the build keys cairn plan computes (defaults: --deployment-root /cvmfs/cairn,
//                                 --deployment-site generic, the repository's platform), so every one is up to date
return args switch
{
    ["sandbox", var n] => await SandboxAsync(int.Parse(n), cgroups: true),
    ["sandbox", var n, "--no-cgroups"] => await SandboxAsync(int.Parse(n), cgroups: false),
    ["seed", var dir, var n] => await SeedAsync(dir, int.Parse(n)),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: BuildBench sandbox N | BuildBench seed DIR N");
    return 2;
}

static async Task<int> SandboxAsync(int n, bool cgroups)
{
    var sandbox = new BubblewrapSandbox(new BubblewrapOptions { UseCgroups = cgroups });
    var spec = new SandboxSpec { Command = ["/bin/sh", "-c", "true"], Limits = new SandboxLimits { WallTime = TimeSpan.FromSeconds(60) } };
    await sandbox.RunAsync(spec, Stream.Null, default); // warm-up: JIT, page cache
    var sandboxed = Stopwatch.StartNew();
    for (var i = 0; i < n; i++)
    {
        var r = await sandbox.RunAsync(spec, Stream.Null, default);
        if (!r.Succeeded) throw new InvalidOperationException(r.Describe());
    }

    sandboxed.Stop();
    var direct = Stopwatch.StartNew();
    for (var i = 0; i < n; i++)
    {
        using var p = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "true"]) { UseShellExecute = false })!;
        await p.WaitForExitAsync();
    }

    direct.Stop();
    Console.WriteLine($"sandbox_run_s\t{sandboxed.Elapsed.TotalSeconds / n:0.0000}");
    Console.WriteLine($"direct_run_s\t{direct.Elapsed.TotalSeconds / n:0.0000}");
    Console.WriteLine($"overhead_per_run_s\t{(sandboxed.Elapsed - direct.Elapsed).TotalSeconds / n:0.0000}");
    return 0;
}

static async Task<int> SeedAsync(string dir, int n)
{
    var recipes = Directory.CreateDirectory(Path.Combine(dir, "recipes")).FullName;
    var random = new Random(42);
    for (var i = 0; i < n; i++)
    {
        // Each package depends on up to three of the 50 before it: closures of a few dozen to a few hundred.
        var deps = Enumerable.Range(0, random.Next(0, 4)).Select(_ => i - 1 - random.Next(0, Math.Min(i, 50))).Where(j => j >= 0 && i > 0)
            .Distinct().Order().Select(j => $"p{j:0000}").ToList();
        var folder = Directory.CreateDirectory(Path.Combine(recipes, $"p{i:0000}")).FullName;
        var yaml = new StringBuilder($"name: p{i:0000}\nversion: \"1.{i % 7}\"\n");
        if (deps.Count > 0) yaml.Append($"dependencies: [{string.Join(", ", deps)}]\n");
        yaml.Append("build: build.sh\ncheck: {run: 'test -f \"$SOFT_DIR/share/done\"'}\n");
        await File.WriteAllTextAsync(Path.Combine(folder, "recipe.yml"), yaml.ToString());
        await File.WriteAllTextAsync(Path.Combine(folder, "build.sh"), $"#!/bin/sh\nmkdir -p \"$SOFT_DIR/share\"\necho {i} > \"$SOFT_DIR/share/done\"\n");
        File.SetUnixFileMode(Path.Combine(folder, "build.sh"), (UnixFileMode)0b111_101_101);
    }

    var graph = RecipeGraph.Load(recipes);
    var repoPath = Path.Combine(dir, "repo");
    await using var repo = await DirectoryRepository.InitAsync(repoPath, "bench", null, TimeProvider.System, null, default);
    var platform = Platform.Detect();
    var deployment = new DeploymentLayout("/cvmfs/cairn", "generic", platform).Deployment;
    var roots = new Dictionary<string, Digest>(StringComparer.Ordinal);
    var product = Directory.CreateTempSubdirectory("cairn-bench-product-").FullName;
    var clock = Stopwatch.StartNew();
    foreach (var recipe in graph.TopologicalOrder)
    {
        var key = BuildKey.Compute(graph, recipe, new BuildKeyInputs(platform, deployment,
            graph.TransitiveDependencies(recipe.Name).ToDictionary(d => d.Name, d => roots[d.Name], StringComparer.Ordinal)));
        Directory.CreateDirectory(Path.Combine(product, "share"));
        await File.WriteAllTextAsync(Path.Combine(product, "share", "done"), recipe.Name + "\n");
        var published = await repo.PublishDirectoryAsync(new ProductRef(recipe.Name, recipe.Version), product, new PublishOptions
        {
            BuildKey = key.ToString(),
            Dependencies = [.. graph.DirectDependencies(recipe.Name).Select(d => d.Id)],
        }, null, default);
        roots[recipe.Name] = published.Product.Root;
    }

    Directory.Delete(product, recursive: true);
    Console.WriteLine($"seeded\t{n}\t{clock.Elapsed.TotalSeconds:0.0}s");
    return 0;
}
