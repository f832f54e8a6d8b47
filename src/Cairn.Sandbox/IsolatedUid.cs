using System.Diagnostics;
using System.Globalization;
using Cairn.Core;

namespace Cairn.Sandbox;

/// <summary>What enforced the process limit of a run (docs/recipes.md, "What each host gets").</summary>
public enum ProcessLimitEnforcement
{
    /// <summary>A pids cgroup: exact, for the sandbox alone.</summary>
    PidsCgroup,

    /// <summary>
    /// Cairn runs as root without a pids cgroup: the run's processes belong to an unused host uid of their own,
    /// so RLIMIT_NPROC (which the kernel never applies to uid 0) counts exactly this run's processes.
    /// </summary>
    IsolatedUid,

    /// <summary>Cairn runs as an ordinary user: RLIMIT_NPROC, which also counts that user's other processes.</summary>
    InvokingUserRlimit,

    /// <summary>None: root without a pids cgroup or an isolated uid, accepted with CAIRN_ALLOW_NO_PROCESS_LIMIT=1.</summary>
    None,
}

/// <summary>
/// Runs one sandbox under an unprivileged host uid of its own when Cairn is root and has no pids cgroup. The
/// kernel exempts uid 0 from RLIMIT_NPROC, so without this a fork bomb in a recipe meets no limit at all.
/// bwrap then runs unprivileged (it needs unprivileged user namespaces) and maps that uid to 0 inside, so the
/// sandbox looks the same. Two things follow from the host uid: the writable mounts are handed to it for the run
/// and given back to their owner afterwards, and every mount source is bound, by root in a private mount
/// namespace, under the run's staging directory, so the unprivileged bwrap can reach sources below directories
/// only root may enter (a 0700 temporary directory, say).
/// </summary>
internal sealed class IsolatedUid : IDisposable
{
    /// <summary>The uids handed out: 65536 from 0x7E000000, far above login users, subordinate ranges and systemd's dynamic users.</summary>
    public const uint FirstUid = 0x7E000000;

    public const int UidCount = 65536;

    /// <summary>Sets the mounts up in the private namespace, then becomes the rest of the command line.</summary>
    private const string BindScript = "while [ \"$1\" != -- ]; do mount --rbind \"$1\" \"$2\" || exit 125; shift 2; done; shift; exec \"$@\"";

    private static readonly Lock s_lock = new();
    private static readonly HashSet<uint> s_inUse = [];

    private readonly List<(string Host, string Staged)> _binds = [];
    private readonly List<(string Path, string Owner)> _handedOver = [];
    private readonly Tools _tools;
    private bool _disposed;

    private IsolatedUid(uint uid, Tools tools)
    {
        Uid = uid;
        _tools = tools;
    }

    public uint Uid { get; }

    internal sealed record Tools(string Setpriv, string Unshare, string Mount, string Chown, string Stat);

    /// <summary>The tools, or why this host cannot isolate a run under its own uid.</summary>
    public static (Tools? Tools, string? Reason) Probe(Func<string, string?> locate)
    {
        var setpriv = locate("setpriv");
        var unshare = locate("unshare");
        var mount = locate("mount");
        var chown = locate("chown");
        var stat = locate("stat");
        if (setpriv is null || unshare is null || mount is null || chown is null || stat is null)
        {
            return (null, "setpriv, unshare, mount, chown or stat is missing (util-linux, mount, coreutils)");
        }

        if (ReadSysctl("/proc/sys/kernel/unprivileged_userns_clone") == 0)
        {
            return (null, "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0)");
        }

        if (ReadSysctl("/proc/sys/user/max_user_namespaces") == 0)
        {
            return (null, "user namespaces are disabled (user.max_user_namespaces=0)");
        }

        return (new Tools(setpriv, unshare, mount, chown, stat), null);
    }

    private static long? ReadSysctl(string path)
    {
        try
        {
            return long.TryParse(File.ReadAllText(path).Trim(), CultureInfo.InvariantCulture, out var v) ? v : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Takes an unused uid, hands the writable mounts to it and stages every mount source.</summary>
    public static async Task<IsolatedUid> PrepareAsync(Tools tools, SandboxSpec spec, string staging, CancellationToken cancellationToken)
    {
        var isolated = new IsolatedUid(AllocateUid(), tools);
        try
        {
            // The unprivileged bwrap must reach the staged sources and the generated /etc.
            File.SetUnixFileMode(staging, (UnixFileMode)0b111_101_101);
            var stage = Directory.CreateDirectory(Path.Combine(staging, "mounts")).FullName;
            var sources = spec.Mounts.Where(m => m.HostPath is not null).Select(m => m.HostPath!).ToList();
            if (spec.RootFileSystem is not null) sources.Add(Path.GetFullPath(spec.RootFileSystem));
            foreach (var source in sources.Distinct(StringComparer.Ordinal))
            {
                var staged = Path.Combine(stage, isolated._binds.Count.ToString(CultureInfo.InvariantCulture));
                if (Directory.Exists(source)) Directory.CreateDirectory(staged);
                else File.WriteAllBytes(staged, []);
                isolated._binds.Add((Path.TrimEndingDirectorySeparator(source), staged));
            }

            foreach (var mount in spec.Mounts.Where(m => m.Kind == SandboxMountKind.WritableBind))
            {
                var owner = (await RunAsync(tools.Stat, ["-c", "%u:%g", "--", mount.HostPath!], cancellationToken).ConfigureAwait(false)).Trim();
                isolated._handedOver.Add((mount.HostPath!, owner));
                await RunAsync(tools.Chown, ["-hR", $"{isolated.Uid}:{isolated.Uid}", "--", mount.HostPath!], cancellationToken).ConfigureAwait(false);
            }

            return isolated;
        }
        catch
        {
            await isolated.RestoreAsync().ConfigureAwait(false);
            isolated.Dispose();
            throw;
        }
    }

    private static uint AllocateUid()
    {
        var live = LiveUids();
        lock (s_lock)
        {
            for (var attempt = 0; attempt < 1000; attempt++)
            {
                var uid = FirstUid + (uint)Random.Shared.Next(UidCount);
                if (!live.Contains(uid) && s_inUse.Add(uid)) return uid;
            }
        }

        throw new CairnException(ErrorCode.SandboxStartFailed,
            $"no free uid for the sandbox among {UidCount} from {FirstUid}: processes of earlier runs are still alive there",
            "find and end them: ps -eo uid,pid,cmd | awk '$1 >= 2113929216'");
    }

    /// <summary>The processes alive now: pid, real uid and how many tasks (threads count for RLIMIT_NPROC) each has.</summary>
    private static List<(int Pid, uint Uid, int Tasks)> LiveProcesses()
    {
        var result = new List<(int, uint, int)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                uint? uid = null;
                var tasks = 1;
                foreach (var line in File.ReadLines(Path.Combine(dir, "status")))
                {
                    if (line.StartsWith("Uid:", StringComparison.Ordinal))
                    {
                        uid = uint.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
                    }
                    else if (line.StartsWith("Threads:", StringComparison.Ordinal))
                    {
                        tasks = int.Parse(line.AsSpan(8).Trim(), CultureInfo.InvariantCulture);
                        break;
                    }
                }

                if (uid is { } u) result.Add((pid, u, tasks));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                // Gone while we looked.
            }
        }

        return result;
    }

    private static HashSet<uint> LiveUids() => [.. LiveProcesses().Select(p => p.Uid)];

    /// <summary>Tasks alive under this run's uid: the whole sandbox, bwrap included.</summary>
    public int TaskCount() => LiveProcesses().Where(p => p.Uid == Uid).Sum(p => p.Tasks);

    /// <summary>
    /// Put between the cgroup join and prlimit: a private mount namespace where root binds the sources to their
    /// staged places, then setpriv drops to the run's uid for good (no capabilities, no supplementary groups).
    /// </summary>
    public List<string> LauncherPrefix()
    {
        var args = new List<string> { _tools.Unshare, "--mount", "--propagation", "private", "--", "/bin/sh", "-c", BindScript, "cairn-bind" };
        foreach (var (host, staged) in _binds)
        {
            args.Add(host);
            args.Add(staged);
        }

        args.Add("--");
        args.AddRange([_tools.Setpriv, $"--reuid={Uid}", $"--regid={Uid}", "--clear-groups", "--inh-caps=-all", "--"]);
        return args;
    }

    /// <summary>bwrap's arguments with every mount source replaced by its staged place, and uid 0 inside as before.</summary>
    public List<string> RewriteBwrapArguments(List<string> bwrapArguments)
    {
        var result = new List<string> { "--uid", "0", "--gid", "0" };
        var i = 0;
        while (i < bwrapArguments.Count && bwrapArguments[i] != "--")
        {
            var option = bwrapArguments[i++];
            result.Add(option);
            var operands = option switch
            {
                "--setenv" or "--symlink" or "--ro-bind" or "--bind" => 2,
                "--seccomp" or "--hostname" or "--size" or "--tmpfs" or "--proc" or "--dev" or "--cap-drop" or "--chdir" or "--remount-ro" => 1,
                _ => 0,
            };
            for (var k = 0; k < operands && i < bwrapArguments.Count; k++, i++)
            {
                // Values (an environment variable's, say) are copied as they are; only bind sources move.
                result.Add(k == 0 && option is "--ro-bind" or "--bind" ? Staged(bwrapArguments[i]) : bwrapArguments[i]);
            }
        }

        result.AddRange(bwrapArguments.Skip(i));
        return result;
    }

    private string Staged(string source)
    {
        foreach (var (host, staged) in _binds)
        {
            if (source == host) return staged;
            if (source.StartsWith(host + "/", StringComparison.Ordinal)) return staged + source[host.Length..];
        }

        return source;
    }

    /// <summary>Ends every process of the run's uid, including any that left the sandbox's process tree.</summary>
    public void KillAll()
    {
        for (var round = 0; round < 50; round++)
        {
            var any = false;
            foreach (var (pid, _, _) in LiveProcesses().Where(p => p.Uid == Uid))
            {
                any = true;
                try
                {
                    using var p = Process.GetProcessById(pid);
                    p.Kill();
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                {
                    // Already gone.
                }
            }

            if (!any) return;
            Thread.Sleep(20);
        }
    }

    /// <summary>Kills what is left of the run and gives the writable mounts back to their owners.</summary>
    public async Task RestoreAsync()
    {
        KillAll();
        foreach (var (path, owner) in _handedOver)
        {
            await RunAsync(_tools.Chown, ["-hR", owner, "--", path], CancellationToken.None).ConfigureAwait(false);
        }

        _handedOver.Clear();
    }

    private static async Task<string> RunAsync(string tool, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(tool) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi) ?? throw new CairnException(ErrorCode.SandboxStartFailed, $"{tool} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new CairnException(ErrorCode.SandboxStartFailed,
                $"preparing the sandbox's own uid failed: {Path.GetFileName(tool)} {string.Join(' ', arguments)}: {(await stderr.ConfigureAwait(false)).Trim()}",
                "the writable mounts must be on a file system that allows chown (not a FUSE or NFS mount with root squash)");
        }

        return await stdout.ConfigureAwait(false);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (s_lock) s_inUse.Remove(Uid);
    }
}
