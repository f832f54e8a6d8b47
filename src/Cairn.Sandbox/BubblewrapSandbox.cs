using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Cairn.Core;

namespace Cairn.Sandbox;

public sealed record BubblewrapOptions
{
    /// <summary>Path of bwrap; null: looked up on PATH.</summary>
    public string? BwrapPath { get; init; }

    /// <summary>Path of prlimit (util-linux); null: looked up on PATH.</summary>
    public string? PrlimitPath { get; init; }

    /// <summary>Use a per-run cgroup for the process and memory limits when the host allows it.</summary>
    public bool UseCgroups { get; init; } = true;

    public string CgroupRoot { get; init; } = "/sys/fs/cgroup";

    /// <summary>Where the per-run minimal /etc is staged on the host.</summary>
    public string? StagingDirectory { get; init; }

    /// <summary>
    /// As root without a pids cgroup, run each sandbox under an unused host uid of its own so that RLIMIT_NPROC
    /// holds (the kernel never applies it to uid 0). Off: such a host gets no process limit, which is refused
    /// unless <see cref="AllowNoProcessLimit"/>.
    /// </summary>
    public bool IsolateUidWithoutCgroup { get; init; } = true;

    /// <summary>
    /// Run even when nothing can limit the number of processes (CAIRN-E0503 otherwise). The operator's explicit
    /// choice: CAIRN_ALLOW_NO_PROCESS_LIMIT=1.
    /// </summary>
    public bool AllowNoProcessLimit { get; init; } = Environment.GetEnvironmentVariable("CAIRN_ALLOW_NO_PROCESS_LIMIT") == "1";
}

/// <summary>
/// Runs commands under bubblewrap: every namespace unshared (so no network), no capabilities, a new session,
/// a cleared environment, the host's /usr (or a chosen root) read-only, a read-only root with private /tmp and
/// HOME, and resource limits. See docs/sandbox.md.
/// </summary>
public sealed partial class BubblewrapSandbox : ISandbox
{
    private const string InstallHint = "install bubblewrap: apt-get install bubblewrap";

    /// <summary>The descriptor the launcher opens the seccomp filter on for bwrap --seccomp.</summary>
    internal const int SeccompFd = 3;

    // Top-level names that merged-/usr distributions make symlinks and older ones directories.
    private static readonly string[] RootLinks = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

    // Read-only from a chosen root file system, besides /usr, /etc and the top-level links.
    private static readonly string[] ChosenRootExtras = ["var", "opt"];

    // Just enough of the host's /etc for compilers and the dynamic loader, plus the distribution's identity files
    // that build systems read (CMake's GNUInstallDirs picks lib/ rather than lib64/ on Debian from debian_version;
    // configure scripts and CODE-RADE's scripts read lsb-release or redhat-release); passwd, group and hosts are generated.
    private static readonly string[] HostEtc =
        ["alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "os-release", "debian_version", "lsb-release", "redhat-release", "system-release"];

    private readonly BubblewrapOptions _options;
    private readonly TimeProvider _time;

    public BubblewrapSandbox(BubblewrapOptions? options = null, TimeProvider? timeProvider = null)
    {
        _options = options ?? new BubblewrapOptions();
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Finds bwrap or throws <see cref="ErrorCode.SandboxUnavailable"/> saying how to install it.</summary>
    public static string LocateBwrap(string? explicitPath = null) =>
        Locate(explicitPath, "bwrap") ?? throw new CairnException(
            ErrorCode.SandboxUnavailable,
            explicitPath is null ? "bubblewrap (bwrap) was not found on PATH; builds run in a bwrap sandbox"
                                 : $"bubblewrap was not found at '{explicitPath}'",
            InstallHint);

    private static string? Locate(string? explicitPath, string name)
    {
        if (explicitPath is not null)
        {
            return File.Exists(explicitPath) ? explicitPath : null;
        }

        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }

        return null;
    }

    public async Task<SandboxResult> RunAsync(SandboxSpec spec, Stream log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(log);
        Validate(spec);
        cancellationToken.ThrowIfCancellationRequested();

        var bwrap = LocateBwrap(_options.BwrapPath);
        var filter = SeccompFilter.Build(SeccompFilter.CurrentArchitecture());
        var prlimit = Locate(_options.PrlimitPath, "prlimit") ?? throw new CairnException(
            ErrorCode.SandboxUnavailable, "prlimit was not found on PATH; the sandbox sets resource limits with it",
            "install util-linux: apt-get install util-linux");

        var started = _time.GetTimestamp();
        var staging = Path.Combine(_options.StagingDirectory ?? Path.GetTempPath(), $"cairn-sandbox-{Guid.NewGuid():N}");
        using var cgroup = _options.UseCgroups ? Cgroup.TryCreate(_options.CgroupRoot, spec.Limits) : null;
        IsolatedUid? isolated = null;
        try
        {
            var etc = WriteMinimalEtc(staging, spec);
            var processLimit = await ChooseProcessLimitAsync(cgroup, spec, staging, cancellationToken).ConfigureAwait(false);
            isolated = processLimit.Isolated;
            var seccomp = Path.Combine(staging, "seccomp.bpf");
            await File.WriteAllBytesAsync(seccomp, filter, cancellationToken).ConfigureAwait(false);
            var psi = new ProcessStartInfo("/bin/sh")
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            psi.Environment.Clear();
            psi.Environment["PATH"] = "/usr/bin:/bin";
            foreach (var arg in LauncherArguments(prlimit, cgroup, isolated, spec.Limits, seccomp))
            {
                psi.ArgumentList.Add(arg);
            }

            psi.ArgumentList.Add(bwrap);
            var bwrapArguments = BwrapArguments(spec, etc);
            foreach (var arg in isolated?.RewriteBwrapArguments(bwrapArguments) ?? bwrapArguments)
            {
                psi.ArgumentList.Add(arg);
            }

            var result = await RunProcessAsync(psi, spec, cgroup, isolated, log, started, cancellationToken).ConfigureAwait(false);
            return result with
            {
                ProcessLimitBy = processLimit.By,
                MemoryLimitBy = cgroup is { LimitsMemory: true } ? MemoryLimitEnforcement.MemoryCgroup : MemoryLimitEnforcement.AddressSpaceRlimit,
            };
        }
        finally
        {
            cgroup?.KillAll();
            if (isolated is not null)
            {
                await isolated.RestoreAsync().ConfigureAwait(false);
                isolated.Dispose();
            }

            TryDelete(staging);
        }
    }

    /// <summary>
    /// A pids cgroup; else, as root, an isolated uid (RLIMIT_NPROC does not hold for root); else RLIMIT_NPROC of
    /// the invoking user. Root with neither is refused unless the operator accepted it (CAIRN-E0503).
    /// </summary>
    private async Task<(ProcessLimitEnforcement By, IsolatedUid? Isolated)> ChooseProcessLimitAsync(
        Cgroup? cgroup, SandboxSpec spec, string staging, CancellationToken cancellationToken)
    {
        if (cgroup is { LimitsProcesses: true }) return (ProcessLimitEnforcement.PidsCgroup, null);
        if (!Environment.IsPrivilegedProcess) return (ProcessLimitEnforcement.InvokingUserRlimit, null);

        var reason = "isolating runs under a uid of their own is switched off";
        if (_options.IsolateUidWithoutCgroup)
        {
            var (tools, unavailable) = IsolatedUid.Probe(name => Locate(null, name));
            if (tools is not null)
            {
                return (ProcessLimitEnforcement.IsolatedUid, await IsolatedUid.PrepareAsync(tools, spec, staging, cancellationToken).ConfigureAwait(false));
            }

            reason = unavailable!;
        }

        if (_options.AllowNoProcessLimit) return (ProcessLimitEnforcement.None, null);
        throw new CairnException(
            ErrorCode.SandboxProcessLimitUnavailable,
            $"the sandbox would have no process limit: Cairn runs as root, no pids cgroup could be created under {_options.CgroupRoot}, and {reason}",
            "delegate a cgroup to Cairn or enable unprivileged user namespaces; to run without a process limit anyway, set CAIRN_ALLOW_NO_PROCESS_LIMIT=1 (docs/recipes.md, \"What each host gets\")");
    }

    /// <summary>
    /// /bin/sh on the host opens the seccomp filter on fd <see cref="SeccompFd"/> (bwrap --seccomp reads and
    /// closes it), joins the cgroup, sets umask 022 and merges stderr into stdout, then becomes prlimit, which
    /// becomes bwrap: the pid we hold is bwrap's, and killing it takes the sandbox down (--die-with-parent). With an
    /// isolated uid, unshare, a binding shell and setpriv come before prlimit, each exec'ing the next, so the pid
    /// is still bwrap's.
    /// </summary>
    internal static List<string> LauncherArguments(string prlimit, Cgroup? cgroup, IsolatedUid? isolated, SandboxLimits limits, string seccompFile)
    {
        const string Script = "umask 022; exec 3<\"$1\" || exit 125; shift; n=$1; shift; while [ \"$n\" -gt 0 ]; do echo $$ > \"$1\" || exit 125; shift; n=$((n-1)); done; exec \"$@\" 2>&1";
        var args = new List<string> { "-c", Script, "cairn-launch", seccompFile };
        var procs = cgroup?.ProcsFiles ?? [];
        args.Add(procs.Count.ToString());
        args.AddRange(procs);
        if (isolated is not null) args.AddRange(isolated.LauncherPrefix());
        args.Add(prlimit);
        args.Add($"--fsize={limits.DiskBytes}");
        args.Add("--core=0");
        if (cgroup is not { LimitsMemory: true })
        {
            args.Add($"--as={limits.MemoryBytes}");
        }

        // The kernel ignores RLIMIT_NPROC for uid 0 (hence the isolated uid), and as a non-root user it counts the
        // user's processes outside the sandbox too; still the only fallback there is.
        if (cgroup is not { LimitsProcesses: true } && (isolated is not null || !Environment.IsPrivilegedProcess))
        {
            args.Add($"--nproc={limits.MaxProcesses}");
        }

        args.Add("--");
        return args;
    }

    internal static List<string> BwrapArguments(SandboxSpec spec, string etcDir)
    {
        var a = new List<string>
        {
            "--unshare-all", "--unshare-user", "--disable-userns",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--seccomp", SeccompFd.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--hostname", spec.HostName,
            "--clearenv",
        };
        AddEnvironment(a, spec);
        AddRootFileSystem(a, spec, etcDir);
        a.AddRange(["--proc", "/proc", "--dev", "/dev"]);
        a.AddRange(["--size", spec.Limits.TmpBytes.ToString(), "--tmpfs", "/tmp"]);
        a.AddRange(["--size", spec.Limits.TmpBytes.ToString(), "--tmpfs", SandboxContract.Home]);
        AddMounts(a, spec.Mounts);

        // Nothing outside the declared mounts is writable, not even the empty root bwrap builds on.
        a.AddRange(["--remount-ro", "/", "--chdir", spec.WorkingDirectory, "--"]);
        a.AddRange(spec.Command);
        return a;
    }

    /// <summary>A clean environment: PATH, then the spec's variables, then the contract's fixed ones, which win.</summary>
    private static void AddEnvironment(List<string> a, SandboxSpec spec)
    {
        var env = new SortedDictionary<string, string>(StringComparer.Ordinal) { ["PATH"] = SandboxContract.DefaultPath };
        foreach (var (k, v) in spec.Environment) env[k] = v;
        foreach (var (k, v) in SandboxContract.FixedEnvironment) env[k] = v;
        env["SOURCE_DATE_EPOCH"] = spec.SourceDateEpoch.ToString();
        foreach (var (k, v) in env)
        {
            a.AddRange(["--setenv", k, v]);
        }
    }

    /// <summary>/usr and its links, and /etc: the host's few files and ours, or a chosen root's own.</summary>
    private static void AddRootFileSystem(List<string> a, SandboxSpec spec, string etcDir)
    {
        var root = spec.RootFileSystem ?? "/";
        a.AddRange(["--ro-bind", Path.Combine(root, "usr"), "/usr"]);
        foreach (var name in RootLinks)
        {
            var info = new DirectoryInfo(Path.Combine(root, name));
            if (info.LinkTarget is { } target)
            {
                a.AddRange(["--symlink", target, "/" + name]);
            }
            else if (info.Exists)
            {
                a.AddRange(["--ro-bind", info.FullName, "/" + name]);
            }
        }

        if (spec.RootFileSystem is null)
        {
            foreach (var name in HostEtc)
            {
                if (Path.Exists(Path.Combine("/etc", name))) a.AddRange(["--ro-bind", Path.Combine("/etc", name), "/etc/" + name]);
            }

            foreach (var file in Directory.GetFiles(etcDir).Order(StringComparer.Ordinal))
            {
                a.AddRange(["--ro-bind", file, "/etc/" + Path.GetFileName(file)]);
            }
        }
        else
        {
            // A chosen root brings its own /etc; only identity files are replaced, where there is a file to cover.
            a.AddRange(["--ro-bind", Path.Combine(root, "etc"), "/etc"]);

            // Its /var (the package database: dpkg -s, dpkg-architecture) and /opt are part of that environment too;
            // the host's never are.
            foreach (var name in ChosenRootExtras)
            {
                if (Directory.Exists(Path.Combine(root, name))) a.AddRange(["--ro-bind", Path.Combine(root, name), "/" + name]);
            }

            foreach (var file in Directory.GetFiles(etcDir).Order(StringComparer.Ordinal))
            {
                var name = Path.GetFileName(file);
                if (File.Exists(Path.Combine(root, "etc", name))) a.AddRange(["--ro-bind", file, "/etc/" + name]);
            }
        }
    }

    private static void AddMounts(List<string> a, IEnumerable<SandboxMount> mounts)
    {
        foreach (var m in mounts)
        {
            switch (m.Kind)
            {
                case SandboxMountKind.ReadOnlyBind:
                    a.AddRange(["--ro-bind", m.HostPath!, m.SandboxPath]);
                    break;
                case SandboxMountKind.WritableBind:
                    a.AddRange(["--bind", m.HostPath!, m.SandboxPath]);
                    break;
                case SandboxMountKind.Tmpfs:
                    a.AddRange(["--size", m.SizeBytes.ToString(), "--tmpfs", m.SandboxPath]);
                    break;
            }
        }
    }

    private static string WriteMinimalEtc(string staging, SandboxSpec spec)
    {
        var etc = Path.Combine(staging, "etc");
        Directory.CreateDirectory(etc);
        File.WriteAllText(Path.Combine(etc, "passwd"), $"root:x:0:0:root:{SandboxContract.Home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
        File.WriteAllText(Path.Combine(etc, "group"), "root:x:0:\nnogroup:x:65534:\n");
        File.WriteAllText(Path.Combine(etc, "hostname"), spec.HostName + "\n");
        File.WriteAllText(Path.Combine(etc, "hosts"), $"127.0.0.1 localhost {spec.HostName}\n::1 localhost\n");
        return etc;
    }

    private async Task<SandboxResult> RunProcessAsync(
        ProcessStartInfo psi, SandboxSpec spec, Cgroup? cgroup, IsolatedUid? isolated, Stream log, long started, CancellationToken cancellationToken)
    {
        var limits = spec.Limits;
        Process process;
        try
        {
            process = await StartOnOwnThreadAsync(psi).ConfigureAwait(false);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new CairnException(ErrorCode.SandboxStartFailed, $"cannot start the sandbox: {e.Message}", null, e);
        }

        using (process)
        {
            process.StandardInput.Close();
            var state = new RunState(process, cgroup, isolated);
            state.WritableRoots.AddRange(spec.Mounts.Where(m => m.Kind == SandboxMountKind.WritableBind && Directory.Exists(m.HostPath)).Select(m => m.HostPath!));
            var pump = new LogPump(log, limits.LogBytes, () => state.Stop(SandboxLimit.Log));
            var stdout = pump.DrainAsync(process.StandardOutput.BaseStream);
            var stderr = pump.DrainAsync(process.StandardError.BaseStream);

            using var watchdogStop = new CancellationTokenSource();
            using var wallTime = new CancellationTokenSource(limits.WallTime, _time);
            using var onTimeout = wallTime.Token.Register(() => state.Stop(SandboxLimit.WallTime));
            using var onCancel = cancellationToken.Register(() => state.Stop(null));
            var watchdog = WatchAsync(state, limits, watchdogStop.Token);

            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            await watchdogStop.CancelAsync().ConfigureAwait(false);
            await watchdog.ConfigureAwait(false);

            // The sandbox is gone, so the pipes close; the timeout only guards against a leaked writer.
            var drained = Task.WhenAll(stdout, stderr);
            if (await Task.WhenAny(drained, Task.Delay(TimeSpan.FromSeconds(10), _time, CancellationToken.None)).ConfigureAwait(false) == drained)
            {
                await drained.ConfigureAwait(false);
            }

            await pump.FlushAsync().ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();

            var exitCode = process.ExitCode;
            var limit = state.Limit;
            if (limit is null && cgroup is not null && cgroup.OutOfMemoryKilled()) limit = SandboxLimit.Memory;
            if (limit is null && exitCode == 128 + 25) limit = SandboxLimit.Disk; // SIGXFSZ: RLIMIT_FSIZE reached

            return new SandboxResult
            {
                ExitCode = exitCode,
                LimitExceeded = limit,
                LogTruncated = pump.Truncated,
                LogBytes = pump.Written,
                Duration = _time.GetElapsedTime(started),
                UsedCgroup = cgroup is not null,
            };
        }
    }

    /// <summary>
    /// --die-with-parent is PR_SET_PDEATHSIG, which fires when the parent *thread* exits. A thread-pool thread
    /// that forked bwrap may retire mid-build and SIGKILL it, so bwrap is forked from a thread that lives
    /// exactly as long as bwrap does (and dies with Cairn, which is the point of the flag).
    /// </summary>
    private static Task<Process> StartOnOwnThreadAsync(ProcessStartInfo psi)
    {
        var started = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            Process p;
            try
            {
                p = Process.Start(psi) ?? throw new CairnException(ErrorCode.SandboxStartFailed, "the sandbox process did not start");
            }
            catch (Exception e)
            {
                started.SetException(e);
                return;
            }

            started.SetResult(p);
            try
            {
                p.WaitForExit();
            }
            catch (InvalidOperationException)
            {
                // Disposed by the runner after exit.
            }
        })
        {
            IsBackground = true,
            Name = "cairn-sandbox-parent",
        };
        thread.Start();
        return started.Task;
    }

    private async Task WatchAsync(RunState state, SandboxLimits limits, CancellationToken stop)
    {
        var tick = 0;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(limits.PollInterval, _time, stop).ConfigureAwait(false);
                // With an isolated uid the kernel refuses forks at the limit; reaching it ends the run like a cgroup's refusal.
                if (state.Cgroup?.ProcessLimitHit() == true || state.Isolated?.TaskCount() >= limits.MaxProcesses)
                {
                    state.Stop(SandboxLimit.Processes);
                }

                // Walking a build tree costs more than reading a counter, so do it less often.
                if (++tick % 4 == 0 && state.WritableRoots.Count > 0 && DiskUsage(state.WritableRoots) > limits.DiskBytes)
                {
                    state.Stop(SandboxLimit.Disk);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    internal static long DiskUsage(IEnumerable<string> roots)
    {
        long total = 0;
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };
        foreach (var root in roots)
        {
            try
            {
                foreach (var file in new DirectoryInfo(root).EnumerateFiles("*", options))
                {
                    total += file.Length;
                }
            }
            catch (IOException)
            {
                // Files come and go during a build; a miss is corrected at the next look.
            }
        }

        return total;
    }

    private static void Validate(SandboxSpec spec)
    {
        if (spec.Command.Count == 0 || string.IsNullOrEmpty(spec.Command[0]))
        {
            throw Invalid("the command is empty");
        }

        if (spec.RootFileSystem is { } root && !Directory.Exists(Path.Combine(root, "usr")))
        {
            throw Invalid($"root file system '{root}' has no usr/ directory");
        }

        RequireSandboxPath(spec.WorkingDirectory, "working directory");
        foreach (var m in spec.Mounts)
        {
            RequireSandboxPath(m.SandboxPath, "mount point");
            if (m.SandboxPath == "/") throw Invalid("a mount cannot replace the sandbox root '/'");
            if (m.Kind == SandboxMountKind.Tmpfs)
            {
                if (m.SizeBytes <= 0) throw Invalid($"tmpfs at '{m.SandboxPath}' needs a size above 0");
            }
            else if (m.HostPath is null || !Path.IsPathFullyQualified(m.HostPath) || !Path.Exists(m.HostPath))
            {
                throw Invalid($"host path '{m.HostPath}' for '{m.SandboxPath}' must be an absolute path that exists");
            }
        }

        foreach (var (name, value) in spec.Environment)
        {
            if (!EnvironmentName().IsMatch(name)) throw Invalid($"'{name}' is not a valid environment variable name");
            if (value.Contains('\0')) throw Invalid($"the value of {name} contains a NUL byte");
            if (SandboxContract.IsReserved(name)) throw Invalid($"{name} is fixed by the sandbox contract and cannot be set");
        }

        var l = spec.Limits;
        if (l.WallTime <= TimeSpan.Zero || l.MaxProcesses <= 0 || l.MemoryBytes <= 0 || l.DiskBytes <= 0 || l.TmpBytes <= 0 || l.LogBytes <= 0 || l.PollInterval <= TimeSpan.Zero)
        {
            throw Invalid("every sandbox limit must be above zero");
        }
    }

    private static void RequireSandboxPath(string path, string what)
    {
        if (!path.StartsWith('/') || path.Split('/').Any(s => s is "." or ".."))
        {
            throw Invalid($"{what} '{path}' must be an absolute path without . or .. segments");
        }
    }

    private static CairnException Invalid(string message) => new(ErrorCode.SandboxSpecInvalid, message);

    private static void TryDelete(string dir)
    {
        try
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex EnvironmentName();

    /// <summary>Who ended the run first wins; later stops only make sure it is dead.</summary>
    private sealed class RunState(Process process, Cgroup? cgroup, IsolatedUid? isolated)
    {
        private readonly Lock _lock = new();
        private bool _stopped;

        public Cgroup? Cgroup => cgroup;

        public IsolatedUid? Isolated => isolated;

        public SandboxLimit? Limit { get; private set; }

        public List<string> WritableRoots { get; } = [];

        public void Stop(SandboxLimit? reason)
        {
            lock (_lock)
            {
                if (!_stopped)
                {
                    _stopped = true;
                    Limit = reason;
                }
            }

            try
            {
                process.Kill(entireProcessTree: false);
            }
            catch (InvalidOperationException)
            {
                // Already exited.
            }

            cgroup?.KillAll();
            isolated?.KillAll();
        }
    }

    /// <summary>Copies both pipes into the sink in arrival order, up to the byte limit.</summary>
    private sealed class LogPump(Stream sink, long limit, Action onLimit)
    {
        private readonly SemaphoreSlim _gate = new(1, 1);

        public long Written { get; private set; }

        public bool Truncated { get; private set; }

        public async Task DrainAsync(Stream source)
        {
            var buffer = new byte[16384];
            int n;
            while ((n = await source.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            {
                await _gate.WaitAsync().ConfigureAwait(false);
                try
                {
                    if (Truncated) continue;
                    var room = limit - Written;
                    var take = (int)Math.Min(room, n);
                    await sink.WriteAsync(buffer.AsMemory(0, take)).ConfigureAwait(false);
                    Written += take;
                    if (take < n)
                    {
                        Truncated = true;
                        var notice = Encoding.UTF8.GetBytes($"\n[cairn] log cut at {limit} bytes; the run was ended\n");
                        await sink.WriteAsync(notice).ConfigureAwait(false);
                        Written += notice.Length;
                        onLimit();
                    }
                }
                finally
                {
                    _gate.Release();
                }
            }
        }

        public async Task FlushAsync()
        {
            await _gate.WaitAsync().ConfigureAwait(false);
            try
            {
                await sink.FlushAsync().ConfigureAwait(false);
            }
            finally
            {
                _gate.Release();
            }
        }
    }
}
