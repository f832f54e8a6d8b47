namespace Cairn.Sandbox;

/// <summary>Why a run was ended by the sandbox rather than by the command itself.</summary>
public enum SandboxLimit
{
    WallTime,
    Processes,
    Memory,
    Disk,
    Log,
}

/// <summary>What enforced the memory limit of a run.</summary>
public enum MemoryLimitEnforcement
{
    /// <summary>A memory cgroup: the whole sandbox together, ended by an out-of-memory kill.</summary>
    MemoryCgroup,

    /// <summary>RLIMIT_AS: each process's address space; allocations beyond it fail (malloc returns NULL).</summary>
    AddressSpaceRlimit,
}

public sealed record SandboxResult
{
    /// <summary>Exit status of the command; 128+N when it died from signal N.</summary>
    public required int ExitCode { get; init; }

    /// <summary>The signal that ended the command, if it was one (from an exit status above 128).</summary>
    public int? Signal => ExitCode > 128 && ExitCode < 128 + 65 ? ExitCode - 128 : null;

    /// <summary>Set when a limit was reached; the run was then ended by the sandbox (memory: by the kernel).</summary>
    public SandboxLimit? LimitExceeded { get; init; }

    public bool TimedOut => LimitExceeded == SandboxLimit.WallTime;

    public bool LogTruncated { get; init; }

    /// <summary>Log bytes written to the sink (at most the limit plus a one-line notice).</summary>
    public long LogBytes { get; init; }

    public TimeSpan Duration { get; init; }

    /// <summary>Whether the process and memory limits were enforced by a cgroup (else by rlimits only).</summary>
    public bool UsedCgroup { get; init; }

    /// <summary>What enforced <see cref="SandboxLimits.MaxProcesses"/> in this run.</summary>
    public ProcessLimitEnforcement ProcessLimitBy { get; init; }

    /// <summary>What enforced <see cref="SandboxLimits.MemoryBytes"/> in this run.</summary>
    public MemoryLimitEnforcement MemoryLimitBy { get; init; }

    public bool Succeeded => ExitCode == 0 && LimitExceeded is null;

    /// <summary>One line for people: "exit 0", "killed: wall time 00:10:00 exceeded"…</summary>
    public string Describe() => LimitExceeded switch
    {
        SandboxLimit.WallTime => "killed: wall-time limit reached",
        SandboxLimit.Processes => "killed: process limit reached (fork bomb?)",
        SandboxLimit.Memory => $"memory limit reached (out-of-memory kill), exit {ExitCode}",
        SandboxLimit.Disk => "killed: disk limit of the writable mounts reached",
        SandboxLimit.Log => "killed: log size limit reached",
        _ => Signal is { } s ? $"killed by signal {s}" : $"exit {ExitCode}",
    };
}
