using System.CommandLine;
using Cairn.Build;
using Cairn.Build.Recipes;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Sandbox;

namespace Cairn.Cli.Commands.Challenge;

/// <summary>cairn challenge: rebuild a published product here and say whether it is bit for bit the same (docs/recipes.md).</summary>
public static class ChallengeCommand
{
    public static Command Create()
    {
        var product = ProductArguments.One();
        var recipes = new Argument<string>("recipes") { Description = "The recipes directory the product was built from" };
        var sources = new Option<string[]>("--sources") { Description = "Another source directory (repeatable); RECIPES/sources is always searched first", AllowMultipleArgumentsPerToken = true };
        var platform = ProductArguments.Platform();
        var deploymentSite = new Option<string>("--deployment-site") { Description = "Site component of the deployment path, as the product was built with", DefaultValueFactory = _ => "generic" };
        var deploymentRoot = new Option<string>("--deployment-root") { Description = "Deployment root, as the product was built with", DefaultValueFactory = _ => "/cvmfs/cairn" };
        var timeout = new Option<int>("--timeout") { Description = "Wall-time limit of each build phase in minutes", DefaultValueFactory = _ => 120 };
        var maxFiles = new Option<int>("--max-files") { Description = "Report at most this many differing files", DefaultValueFactory = _ => 200 };
        var cache = ProductArguments.Cache();
        var command = new Command("challenge",
            "Rebuild a published product on this machine from its recipes and compare it with the published one: reproducible, or the files that differ")
        {
            product, recipes, sources, platform, deploymentSite, deploymentRoot, timeout, maxFiles, cache,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            var root = ctx.Parse.GetValue(deploymentRoot)!;
            if (!root.StartsWith('/'))
            {
                throw new CairnException(ErrorCode.Usage, $"--deployment-root '{root}' is not an absolute path", "e.g. --deployment-root /cvmfs/cairn.example.org");
            }

            var options = new ChallengeOptions
            {
                RecipesDirectory = Path.GetFullPath(ctx.Parse.GetValue(recipes)!),
                SourceDirectories = [.. (ctx.Parse.GetValue(sources) ?? []).Select(Path.GetFullPath)],
                Platform = ctx.Parse.GetValue(platform),
                DeploymentSite = ctx.Parse.GetValue(deploymentSite)!,
                DeploymentRoot = root,
                Limits = new SandboxLimits { WallTime = TimeSpan.FromMinutes(Math.Max(1, ctx.Parse.GetValue(timeout))) },
                Diff = new TreeDiffOptions { MaxFiles = Math.Max(1, ctx.Parse.GetValue(maxFiles)) },
            };
            var target = ProductArguments.Parse(ctx.Parse.GetValue(product)!);
            BubblewrapSandbox.LocateBwrap();
            await using var repo = await ctx.OpenRepositoryAsync(ct);
            var monitor = ctx.Json ? null : new Progress(ctx.Error);
            var result = await new Cairn.Build.Challenge(repo, new BubblewrapSandbox(), ctx.Time, ctx.Logger).RunAsync(target, options, monitor, ct);
            ctx.Write(result, CliJson.Default.ChallengeResult, o => Print(o, result));
            return result.Reproducible ? 0 : ErrorCodes.NotReproducibleExitCode;
        });
        return command;
    }

    private static void Print(TextWriter o, ChallengeResult r)
    {
        o.WriteLine($"{r.Product} ({r.Platform}), build key {r.BuildKey[..12]}");
        o.WriteLine($"  published: {r.Published} by {r.PublishedBy} at {r.PublishedAt:u}");
        o.WriteLine($"  rebuilt:   {r.Rebuilt} here in {r.Duration.TotalSeconds:0.0} s");
        if (r.Reproducible)
        {
            o.WriteLine($"{r.Product}: reproducible");
            return;
        }

        o.WriteLine($"{r.Product}: NOT reproducible: {r.Differences.Count}{(r.Truncated ? "+" : "")} file(s) differ");
        foreach (var d in r.Differences)
        {
            o.WriteLine($"  {d.Kind,-8} {d.Path}  {Side(d.ReferenceSize, d.ReferenceDigest)} -> {Side(d.OtherSize, d.OtherDigest)}");
        }

        foreach (var d in r.Differences.Where(d => d.TextDiff is not null))
        {
            o.WriteLine();
            o.Write(d.TextDiff);
        }

        if (r.Truncated) o.WriteLine($"(only the first {r.Differences.Count} differences are shown; --max-files shows more)");
    }

    private static string Side(long? size, Digest? digest) =>
        size is null ? "(none)" : digest is { } d ? $"{Units.Bytes(size.Value)} {d.Abbreviated}" : Units.Bytes(size.Value);

    /// <summary>The rebuild's phases on stderr, so a long build is not silent (stdout keeps the verdict).</summary>
    private sealed class Progress(TextWriter stderr) : IBuildMonitor
    {
        private readonly Lock _gate = new();

        public void Started(Recipe recipe, string what)
        {
            lock (_gate) stderr.WriteLine($"{recipe.Id}: rebuilding: {what}");
        }

        public void Finished(PackageResult result)
        {
            if (result.Status == PackageStatus.UpToDate) return;
            lock (_gate) stderr.WriteLine($"{result.Id}: rebuild {(result.Ok ? "finished" : "FAILED")} in {result.Duration.TotalSeconds:0.0} s");
        }

        public Stream? LiveLog(Recipe recipe) => null;
    }
}
