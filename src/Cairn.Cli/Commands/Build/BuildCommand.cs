using System.CommandLine;
using System.Xml.Linq;
using Cairn.Build;
using Cairn.Build.Coordinated;
using Cairn.Build.Recipes;
using Cairn.Core;
using Cairn.Sandbox;

namespace Cairn.Cli.Commands.Build;

public static class BuildCommand
{
    public static Command Create()
    {
        var stack = new StackArguments();
        var jobs = new Option<int>("--jobs", "-j") { Description = "Packages built at once (independent ones only)", DefaultValueFactory = _ => 1 };
        var keepGoing = new Option<bool>("--keep-going", "-k") { Description = "After a failure, go on with packages that do not depend on it" };
        var junit = new Option<string?>("--junit") { Description = "Write a JUnit XML report of the packages to this file (for Jenkins, GitLab)" };
        var timeout = new Option<int>("--timeout") { Description = "Wall-time limit of each phase (unpack, build, check) in minutes", DefaultValueFactory = _ => 120 };
        var keepWork = new Option<bool>("--keep-failed-work") { Description = "Keep the workspace and prefix of failed builds under REPO/builds" };
        var publisher = new Option<string?>("--publisher") { Description = "Recorded as the publisher of each product (default: the site)" };
        var command = new Command("build", "Build, check and publish the recipes' packages in dependency order; a product is published only when its check passes")
        {
            jobs, keepGoing, junit, timeout, keepWork, publisher,
        };
        stack.AddTo(command);
        var site = new GatewaySite();
        site.AddTo(command);
        command.SetHandler(async (ctx, ct) =>
        {
            // A site reads the repository the gateway serves; --repo is not used.
            if (site.Enabled(ctx)) ctx.RepositoryOverride = ctx.Parse.GetValue(site.Gateway);
            else _ = ctx.WritableLocation("build");
            var options = stack.Options(ctx) with
            {
                Jobs = ctx.Parse.GetValue(jobs),
                KeepGoing = ctx.Parse.GetValue(keepGoing),
                KeepFailedWork = ctx.Parse.GetValue(keepWork),
                Publisher = ctx.Parse.GetValue(publisher),
                Limits = new SandboxLimits { WallTime = TimeSpan.FromMinutes(Math.Max(1, ctx.Parse.GetValue(timeout))) },
            };
            BubblewrapSandbox.LocateBwrap();
            using var builderKey = ctx.BuilderKey();
            options = options with { BuilderKey = builderKey };
            if (site.Enabled(ctx))
            {
                if (ctx.Parse.GetValue(stack.DepsFrom) is { } depsFrom && DependencySourceSpec.Parse(depsFrom).Kind != DependencySourceKind.Repository)
                {
                    // Keys must name the products every site sees: a site takes its dependencies from the gateway.
                    throw new CairnException(ErrorCode.Usage, $"--deps-from {depsFrom} cannot be combined with --gateway: a site takes its dependencies from the repository the gateway serves",
                        "drop --deps-from; to read through a cache or mirror, put an HTTP proxy in front of the gateway (HTTP_PROXY)");
                }

                await using var session = await site.OpenAsync(ctx, options, ctx.Parse.GetValue(stack.BuildSite), options.Jobs, ct);
                var siteResult = await new StackBuilder(session.Reader, new BubblewrapSandbox(), ctx.Time, ctx.Logger)
                    .BuildAsync(session.Options, new ConsoleMonitor(ctx.Error, ctx.Parse.GetValue(GlobalOptions.Verbose), quiet: ctx.Json), ct);
                if (ctx.Parse.GetValue(junit) is { } siteJunit) WriteJunit(siteResult, siteJunit);
                ctx.Write(siteResult, CliJson.Default.StackBuildResult, o => Summary(o, siteResult));
                return siteResult.Succeeded ? 0 : ErrorCodes.BuildFailedExitCode;
            }

            await using var repo = await ctx.OpenWritableRepositoryAsync("build", ct);
            await using var deps = await stack.OpenDependenciesAsync(ctx, options, ct);
            options = options with { Dependencies = deps };
            // On a terminal (and not --json/--verbose) a live view of the running packages; plain lines otherwise.
            var verbose = ctx.Parse.GetValue(GlobalOptions.Verbose);
            using var view = Console.IsErrorRedirected || ctx.Json || verbose || Environment.GetEnvironmentVariable("TERM") == "dumb"
                ? null
                : new BuildProgressView(ctx.Error, ctx.Time, BuildProgressView.ConsoleWidth());
            IBuildMonitor monitor = view as IBuildMonitor ?? new ConsoleMonitor(ctx.Error, verbose, quiet: ctx.Json);
            var result = await new StackBuilder(repo, new BubblewrapSandbox(), ctx.Time, ctx.Logger).BuildAsync(options, monitor, ct);
            view?.Dispose();
            if (ctx.Parse.GetValue(junit) is { } junitFile) WriteJunit(result, junitFile);
            ctx.Write(result, CliJson.Default.StackBuildResult, o => Summary(o, result));
            return result.Succeeded ? 0 : ErrorCodes.BuildFailedExitCode;
        });
        return command;
    }

    private static string Status(PackageResult p) => p.Job switch
    {
        JobOutcome.Confirmed => "confirmed",
        JobOutcome.BuiltElsewhere => "built elsewhere",
        _ when p.Status == PackageStatus.Failed && p.Code == ErrorCodes.Name(ErrorCode.ClaimLost) => "CLAIM LOST",
        _ => Status(p.Status),
    };

    private static string Status(PackageStatus s) => s switch
    {
        PackageStatus.Built => "built",
        PackageStatus.UpToDate => "up to date",
        PackageStatus.Failed => "FAILED",
        PackageStatus.Blocked => "blocked",
        _ => "not started",
    };

    private static void Summary(TextWriter o, StackBuildResult result)
    {
        var width = Math.Max(7, result.Packages.Select(p => p.Id.Length).DefaultIfEmpty(0).Max());
        o.WriteLine($"{"package".PadRight(width)}  {"result",-15}  {"time",7}  detail");
        foreach (var p in result.Packages)
        {
            var detail = p.Status switch
            {
                PackageStatus.Built when p.Job == JobOutcome.Confirmed => $"confirmed at revision {p.Revision}; tests {p.Tests?.Passed} passed, {p.Tests?.Failed} failed, {p.Tests?.Skipped} skipped; {p.Coordination}",
                PackageStatus.Built => $"{(p.Replaced ? "replaced" : "published")} in revision {p.Revision}; tests {p.Tests?.Passed} passed, {p.Tests?.Failed} failed, {p.Tests?.Skipped} skipped" +
                                       (p.Coordination is null ? "" : $"; {p.Coordination}"),
                PackageStatus.UpToDate when p.Job == JobOutcome.BuiltElsewhere => $"{p.Reason}; key {p.BuildKey?[..12]}",
                PackageStatus.UpToDate => p.BuildKey is null || p.Reason.StartsWith("provided", StringComparison.Ordinal) ? p.Reason : $"key {p.BuildKey[..12]}",
                PackageStatus.Failed => $"{p.Code}: {p.Reason}" + (p.LogFile is null ? "" : $"; log: {p.LogFile}"),
                _ => p.Reason,
            };
            var time = p.Status is PackageStatus.Built or PackageStatus.Failed ? $"{p.Duration.TotalSeconds:0.0}s" : "";
            o.WriteLine($"{p.Id.PadRight(width)}  {Status(p),-15}  {time,7}  {detail}");
        }

        int Count(PackageStatus s) => result.Packages.Count(p => p.Status == s);
        if (result.Packages.Any(p => p.Job is not null))
        {
            int Jobs(string status) => result.Packages.Count(p => Status(p) == status);
            o.WriteLine($"this site: {Jobs("built")} built, {Jobs("confirmed")} confirmed, {Jobs("up to date")} up to date, {Jobs("built elsewhere")} built elsewhere, " +
                        $"{Jobs("FAILED")} failed, {Jobs("CLAIM LOST")} claim lost");
        }

        o.WriteLine($"{result.Packages.Count} packages for {result.Platform}: {Count(PackageStatus.Built)} built, {Count(PackageStatus.UpToDate)} up to date, " +
                    $"{Count(PackageStatus.Failed)} failed, {Count(PackageStatus.Blocked)} blocked, {Count(PackageStatus.NotStarted)} not started ({result.Duration.TotalSeconds:0.0} s)");
    }

    /// <summary>One test case per package: failures fail, blocked and not started are skipped (the failure is counted once, at its cause).</summary>
    private static void WriteJunit(StackBuildResult result, string path)
    {
        var cases = result.Packages.Select(p =>
        {
            var testcase = new XElement("testcase", new XAttribute("classname", "cairn.build"), new XAttribute("name", p.Id),
                new XAttribute("time", p.Duration.TotalSeconds.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)));
            if (p.Status == PackageStatus.Failed)
            {
                testcase.Add(new XElement("failure", new XAttribute("message", $"{p.Code}: {p.Reason}"), p.LogFile is null ? "" : $"log: {p.LogFile}"));
            }
            else if (!p.Ok)
            {
                testcase.Add(new XElement("skipped", new XAttribute("message", p.Reason)));
            }

            return testcase;
        });
        var suite = new XElement("testsuite", new XAttribute("name", "cairn build"),
            new XAttribute("tests", result.Packages.Count),
            new XAttribute("failures", result.Packages.Count(p => p.Status == PackageStatus.Failed)),
            new XAttribute("skipped", result.Packages.Count(p => p.Status is PackageStatus.Blocked or PackageStatus.NotStarted)),
            new XAttribute("time", result.Duration.TotalSeconds.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)), cases);
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        new XDocument(new XElement("testsuites", suite)).Save(full);
    }

    /// <summary>Progress on stderr: one line per package event; with --verbose the build logs too, prefixed by package.</summary>
    private sealed class ConsoleMonitor(TextWriter stderr, bool verbose, bool quiet) : IBuildMonitor
    {
        private readonly Lock _gate = new();

        public void Started(Recipe recipe, string what)
        {
            if (quiet) return;
            lock (_gate) stderr.WriteLine($"{recipe.Id}: {what}");
        }

        public void Finished(PackageResult result)
        {
            if (quiet || result.Status == PackageStatus.UpToDate) return;
            var line = result.Status switch
            {
                PackageStatus.Built => $"{result.Id}: built and published in {result.Duration.TotalSeconds:0.0} s",
                PackageStatus.Failed => $"{result.Id}: FAILED ({result.Reason}){(result.LogFile is null ? "" : $"; log: {result.LogFile}")}",
                _ => $"{result.Id}: {result.Reason}",
            };
            lock (_gate) stderr.WriteLine(line);
        }

        public Stream? LiveLog(Recipe recipe) => verbose && !quiet ? new LinePrefixStream(stderr, recipe.Name, _gate) : null;
    }
}
