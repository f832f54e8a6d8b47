namespace Cairn.Sandbox;

/// <summary>
/// A per-run cgroup for the pids and memory controllers. Used when the host lets us create one (root with
/// cgroup v1, or a delegated v2 subtree); otherwise the runner falls back to rlimits. rlimits alone cannot stop a
/// fork bomb run by host root: the kernel exempts uid 0 from RLIMIT_NPROC whatever its capabilities.
/// </summary>
internal sealed class Cgroup : IDisposable
{
    private static int s_counter;

    private readonly List<string> _directories = [];
    private string? _pidsDir;
    private string? _memoryDir;
    private bool _v2;

    private Cgroup() { }

    /// <summary>The cgroup.procs files the launcher writes its own pid into before exec'ing bwrap.</summary>
    public IReadOnlyList<string> ProcsFiles => [.. _directories.Select(d => Path.Combine(d, "cgroup.procs"))];

    public bool LimitsProcesses => _pidsDir is not null;

    public bool LimitsMemory => _memoryDir is not null;

    public static Cgroup? TryCreate(string root, SandboxLimits limits)
    {
        var cg = new Cgroup();
        try
        {
            var name = $"cairn-{Environment.ProcessId}-{Interlocked.Increment(ref s_counter)}";
            var own = ReadOwnCgroups();
            if (File.Exists(Path.Combine(root, "cgroup.controllers")))
            {
                cg.CreateV2(root, own, name, limits);
            }
            else
            {
                cg.CreateV1(root, own, name, limits);
            }

            if (cg._directories.Count == 0)
            {
                cg.Dispose();
                return null;
            }

            return cg;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            cg.Dispose();
            return null;
        }
    }

    private static Dictionary<string, string> ReadOwnCgroups()
    {
        // Lines are "id:controllers:path"; v2 has the single line "0::path".
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadAllLines("/proc/self/cgroup"))
        {
            var parts = line.Split(':', 3);
            if (parts.Length != 3) continue;
            foreach (var controller in parts[1].Split(','))
            {
                result[controller] = parts[2];
            }
        }

        return result;
    }

    private void CreateV1(string root, Dictionary<string, string> own, string name, SandboxLimits limits)
    {
        var pids = TryMakeV1(root, own, "pids", name);
        if (pids is not null && TryWrite(pids, "pids.max", limits.MaxProcesses.ToString()))
        {
            _pidsDir = pids;
        }

        var memory = TryMakeV1(root, own, "memory", name);
        if (memory is not null && TryWrite(memory, "memory.limit_in_bytes", limits.MemoryBytes.ToString()))
        {
            // Without swap accounting this file is absent; with it, swap must not extend the limit.
            TryWrite(memory, "memory.memsw.limit_in_bytes", limits.MemoryBytes.ToString());
            _memoryDir = memory;
        }
    }

    private string? TryMakeV1(string root, Dictionary<string, string> own, string controller, string name)
    {
        var mount = Path.Combine(root, controller);
        if (!own.TryGetValue(controller, out var path) || !File.Exists(Path.Combine(mount, "cgroup.procs")))
        {
            return null;
        }

        try
        {
            var dir = Path.Combine(mount + path, name);
            Directory.CreateDirectory(dir);
            _directories.Add(dir);
            return dir;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private void CreateV2(string root, Dictionary<string, string> own, string name, SandboxLimits limits)
    {
        if (!own.TryGetValue("", out var path)) return;
        var parent = root + path;
        var available = File.ReadAllText(Path.Combine(parent, "cgroup.controllers")).Split(' ', StringSplitOptions.TrimEntries);
        if (!available.Contains("pids") && !available.Contains("memory")) return;

        // Fails when our own cgroup holds processes and is not a delegated subtree; then rlimits it is.
        File.WriteAllText(Path.Combine(parent, "cgroup.subtree_control"), "+pids +memory");
        var dir = Path.Combine(parent, name);
        Directory.CreateDirectory(dir);
        _directories.Add(dir);
        _v2 = true;
        if (TryWrite(dir, "pids.max", limits.MaxProcesses.ToString())) _pidsDir = dir;
        if (TryWrite(dir, "memory.max", limits.MemoryBytes.ToString()))
        {
            TryWrite(dir, "memory.swap.max", "0");
            _memoryDir = dir;
        }
    }

    /// <summary>True once a fork was refused because the process limit was reached.</summary>
    public bool ProcessLimitHit() => _pidsDir is not null && ReadCounter(_pidsDir, "pids.events", "max") > 0;

    public bool OutOfMemoryKilled() =>
        _memoryDir is not null && ReadCounter(_memoryDir, _v2 ? "memory.events" : "memory.oom_control", "oom_kill") > 0;

    /// <summary>
    /// v2 only: kills everything in the cgroup atomically. v1 has no such file, and killing pids read from
    /// cgroup.procs races with pid reuse; there the pid namespace dying with its init does the job.
    /// </summary>
    public void KillAll()
    {
        foreach (var dir in _directories)
        {
            if (_v2) TryWrite(dir, "cgroup.kill", "1");
        }
    }

    public void Dispose()
    {
        foreach (var dir in Enumerable.Reverse(_directories))
        {
            // The last processes may take a moment to be reaped after SIGKILL.
            for (var attempt = 0; attempt < 250; attempt++)
            {
                try
                {
                    Directory.Delete(dir);
                    break;
                }
                catch (IOException)
                {
                    KillAll();
                    Thread.Sleep(20);
                }
                catch (UnauthorizedAccessException)
                {
                    break;
                }
            }
        }
    }

    private static long ReadCounter(string dir, string file, string key)
    {
        try
        {
            foreach (var line in File.ReadAllLines(Path.Combine(dir, file)))
            {
                var parts = line.Split(' ', 2);
                if (parts.Length == 2 && parts[0] == key && long.TryParse(parts[1], out var v)) return v;
            }
        }
        catch (IOException)
        {
        }

        return 0;
    }

    private static bool TryWrite(string dir, string file, string value)
    {
        try
        {
            var path = Path.Combine(dir, file);
            if (!File.Exists(path)) return false;
            File.WriteAllText(path, value);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

}
