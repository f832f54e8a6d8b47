using System.CommandLine;
using Cairn.Build;
using Cairn.Cli.Commands.Build;
using Cairn.Sandbox;
using Microsoft.Extensions.Logging;

namespace Cairn.Cli.Commands.Plan;

public static class PlanCommand
{
    public static Command Create()
    {
        var stack = new StackArguments();
        var gateway = new Option<string?>("--gateway") { Description = "Plan against the repository this gateway serves (http(s)://HOST:PORT), as its sites would build; replaces --repo" };
        var command = new Command("plan", "Show what 'cairn build' would build, in order, and why") { gateway };
        stack.AddTo(command);
        command.SetHandler(async (ctx, ct) =>
        {
            // The gateway serves its repository read-only on the same listener: no token is needed to read it.
            if (ctx.Parse.GetValue(gateway) is { } url) ctx.RepositoryOverride = url;
            var options = stack.Options(ctx);
            var opening = ctx.Time.GetTimestamp();
            await using var repo = await ctx.OpenRepositoryAsync(ct);
            ctx.Logger.LogInformation("plan: repository opened in {OpenMs:0} ms, {SinceStartMs:0} ms since the process started",
                ctx.Time.GetElapsedTime(opening).TotalMilliseconds, (ctx.Time.GetUtcNow().UtcDateTime - System.Diagnostics.Process.GetCurrentProcess().StartTime.ToUniversalTime()).TotalMilliseconds);
            await using var deps = await stack.OpenDependenciesAsync(ctx, options, ct);
            options = options with { Dependencies = deps };
            var plan = await new StackBuilder(repo, new BubblewrapSandbox(), ctx.Time, ctx.Logger).PlanAsync(options, ct);
            ctx.Write(plan, CliJson.Default.BuildPlan, o =>
            {
                var width = plan.Packages.Select(p => p.Name.Length + p.Version.Length + 1).DefaultIfEmpty(8).Max();
                foreach (var p in plan.Packages)
                {
                    var action = p.Action switch
                    {
                        PlanAction.UpToDate => "up to date",
                        PlanAction.Build => "build",
                        PlanAction.After => "build?",
                        PlanAction.Blocked => "blocked",
                        _ => "error",
                    };
                    var detail = p.Action == PlanAction.UpToDate ? (p.BuildKey is null || p.Reason.StartsWith("provided", StringComparison.Ordinal) ? p.Reason : $"key {p.BuildKey[..12]}") : p.Code is null ? p.Reason : $"{p.Code}: {p.Reason}";
                    o.WriteLine($"{$"{p.Name}/{p.Version}".PadRight(width)}  {action,-10}  {detail}");
                }

                o.WriteLine($"{plan.Packages.Count} packages for {plan.Platform} at {plan.DeploymentRoot}/{plan.DeploymentSite}: {plan.ToBuild} to build, " +
                            $"{plan.Packages.Count(p => p.Action == PlanAction.UpToDate)} up to date, " +
                            $"{plan.Packages.Count(p => p.Action is PlanAction.Blocked or PlanAction.Error)} cannot build");
            });
            return plan.Packages.Any(p => p.Action is PlanAction.Error or PlanAction.Blocked) ? Core.ErrorCodes.BuildFailedExitCode : 0;
        });
        return command;
    }
}
