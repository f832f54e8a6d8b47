namespace Cairn.Sandbox.Tests;

/// <summary>
/// A test of what a cgroup enforces: skipped, with the reason in the results, on a host where Cairn cannot create
/// a cgroup with <c>controller</c> (then the "without cgroups" twin of the test is the one that applies).
/// </summary>
public sealed class HostHasCgroupFactAttribute : FactAttribute
{
    public HostHasCgroupFactAttribute(string controller)
    {
        using var cgroup = Cgroup.TryCreate("/sys/fs/cgroup", new SandboxLimits());
        var has = controller switch
        {
            "pids" => cgroup is { LimitsProcesses: true },
            "memory" => cgroup is { LimitsMemory: true },
            _ => throw new ArgumentException($"unknown controller '{controller}'", nameof(controller)),
        };
        if (!has) Skip = $"this host does not let Cairn create a {controller} cgroup under /sys/fs/cgroup";
    }
}

/// <summary>A test of what happens when Cairn runs as root (the kernel exempts uid 0 from RLIMIT_NPROC); skipped otherwise.</summary>
public sealed class PrivilegedFactAttribute : FactAttribute
{
    public PrivilegedFactAttribute()
    {
        if (!Environment.IsPrivilegedProcess) Skip = "needs root: the case under test is Cairn running as uid 0";
    }
}
