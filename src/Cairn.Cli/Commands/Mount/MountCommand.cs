using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Cairn.Core;
using Cairn.Fuse;

namespace Cairn.Cli.Commands.Mount;

public static class MountCommand
{
    public static Command Create()
    {
        var repo = new Argument<string>("REPO") { Description = "Repository directory, or http(s):// URLs of servers holding it (comma-separated)" };
        var mountPoint = new Argument<string>("MOUNTPOINT") { Description = "Empty directory to mount the tree <platform>/<name>/<version>/… on" };
        var follow = new Option<bool>("--follow") { Description = "Poll the head manifest and show new revisions to new lookups (open files keep theirs)" };
        var followInterval = new Option<int>("--follow-interval")
        {
            Description = "Seconds between manifest polls with --follow",
            DefaultValueFactory = _ => 60,
        };
        var foreground = new Option<bool>("--foreground", "-f") { Description = "Stay in the foreground until unmounted or interrupted (default: detach once mounted)" };
        var timeout = new Option<int>("--timeout")
        {
            Description = "Seconds a read waits for an object before failing with EIO",
            DefaultValueFactory = _ => 60,
        };
        var threads = new Option<int>("--threads") { Description = "Threads reading FUSE requests (default: CPUs, 4-16)" };
        var memory = new Option<int>("--memory-cache")
        {
            Description = "MiB of verified file contents kept in memory",
            DefaultValueFactory = _ => 256,
        };
        var cache = new Option<string?>("--cache") { Description = "Client cache directory for http(s) repositories (default: $CAIRN_CACHE or ~/.cache/cairn)" };
        var log = new Option<string?>("--log") { Description = "Where a detached mount writes its log (default: a file in /tmp, printed)" };
        var command = new Command("mount", "Mount the repository's head revision read-only with FUSE; files are fetched and verified on first read")
        {
            repo, mountPoint, follow, followInterval, foreground, timeout, threads, memory, cache, log,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            if (ctx.Parse.GetValue(timeout) < 1 || ctx.Parse.GetValue(followInterval) < 1 || ctx.Parse.GetValue(memory) < 0 || ctx.Parse.GetValue(threads) < 0)
            {
                throw new CairnException(ErrorCode.Usage, "--timeout and --follow-interval must be at least 1, --threads and --memory-cache not negative", "e.g. --timeout 30");
            }

            ctx.RepositoryOverride = ctx.Parse.GetValue(repo);
            var target = Path.GetFullPath(ctx.Parse.GetValue(mountPoint)!);
            if (!ctx.Parse.GetValue(foreground))
            {
                return await DetachAsync(ctx, target, ctx.Parse.GetValue(log), ct);
            }

            var options = new FuseMountOptions
            {
                ReadTimeout = TimeSpan.FromSeconds(ctx.Parse.GetValue(timeout)),
                FollowInterval = ctx.Parse.GetValue(follow) ? TimeSpan.FromSeconds(ctx.Parse.GetValue(followInterval)) : null,
                MemoryCacheBytes = (long)ctx.Parse.GetValue(memory) << 20,
                FsName = "cairn:" + ctx.RepositoryPath,
            };
            if (ctx.Parse.GetValue(threads) > 0) options = options with { Threads = ctx.Parse.GetValue(threads) };
            return await RunInForegroundAsync(ctx, target, options, ct);
        });
        return command;
    }

    /// <summary>Mounts and serves until `cairn unmount` or a signal, then unmounts.</summary>
    private static async Task<int> RunInForegroundAsync(CliContext ctx, string target, FuseMountOptions options, CancellationToken ct)
    {
        // SIGTERM (systemd, kill) and SIGHUP end the mount like Ctrl-C does: unmount, then exit 0.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using var onHup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, Stop);
        using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        void Stop(PosixSignalContext signal)
        {
            signal.Cancel = true;
            stop.Cancel();
        }

        await using var repository = await ctx.OpenRepositoryAsync(ct);
        var mount = await FuseMount.MountAsync(repository, target, options, ctx.Logger, ct);
        await using (mount)
        {
            ctx.Write(new MountOutput(target, mount.Revision.Revision, mount.Revision.Root.ToString(), Environment.ProcessId), CliJson.Default.MountOutput,
                o => o.WriteLine($"mounted {ctx.RepositoryPath} revision {mount.Revision.Revision} at {target} (pid {Environment.ProcessId})"));
            ctx.Out.Flush();
            try
            {
                // Until `cairn unmount` (the kernel ends the connection) or a signal.
                await mount.Completion.WaitAsync(stop.Token);
            }
            catch (OperationCanceledException)
            {
                // Detach at once; open files have until the process exits.
                await mount.UnmountAsync(TimeSpan.FromSeconds(1));
            }
        }

        return 0;
    }

    /// <summary>Starts the same command with --foreground in a new session and returns once the mount is there.</summary>
    private static async Task<int> DetachAsync(CliContext ctx, string target, string? log, CancellationToken ct)
    {
        log = Path.GetFullPath(log ?? Path.Combine(Path.GetTempPath(), $"cairn-mount-{Environment.ProcessId}.log"));
        var self = Environment.ProcessPath ?? "dotnet";
        var args = Environment.GetCommandLineArgs();
        var psi = new ProcessStartInfo("sh") { UseShellExecute = false };
        foreach (var a in (string[])["-c", "exec setsid \"$@\" </dev/null >>\"$0\" 2>&1", log, self]) psi.ArgumentList.Add(a);
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(args[0]);
        foreach (var a in args.Skip(1)) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("--foreground");
        using var child = Process.Start(psi) ?? throw new CairnException(ErrorCode.MountFailed, "cannot start the mount process");
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromMinutes(2))
        {
            if (MountTable.Find(target) is { FsType: FuseMount.FsType })
            {
                ctx.Write(new DetachedMountOutput(target, child.Id, log), CliJson.Default.DetachedMountOutput, o => o.WriteLine($"mounted {ctx.RepositoryPath} at {target} (pid {child.Id}, log {log})"));
                return 0;
            }

            if (child.HasExited)
            {
                var text = File.Exists(log) ? await File.ReadAllTextAsync(log, ct) : "";
                ctx.Error.Write(text);
                return child.ExitCode == 0 ? ErrorCodes.ExitCode(ErrorCode.MountFailed) : child.ExitCode;
            }

            await Task.Delay(100, ct);
        }

        child.Kill();
        throw new CairnException(ErrorCode.MountFailed, $"the mount at {target} did not appear within 2 minutes", $"see {log}");
    }
}

/// <summary>cairn mount --foreground --json, once mounted.</summary>
public sealed record MountOutput(string MountPoint, long Revision, string Root, int Pid);

/// <summary>cairn mount --json, once the detached mount process has mounted.</summary>
public sealed record DetachedMountOutput(string MountPoint, int Pid, string Log);
