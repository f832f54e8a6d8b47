namespace Cairn.Sandbox;

/// <summary>What a sandboxed command sees and may do. Everything not listed here is invisible inside.</summary>
public sealed record SandboxSpec
{
    /// <summary>argv of the command; argv[0] is resolved against PATH inside the sandbox.</summary>
    public required IReadOnlyList<string> Command { get; init; }

    /// <summary>
    /// Root file system for /usr, /etc and the /bin, /lib… links. Null: the host's, read-only, with a
    /// minimal /etc. Otherwise a directory holding an unpacked root file system (e.g. from debootstrap).
    /// </summary>
    public string? RootFileSystem { get; init; }

    /// <summary>Bind mounts and size-limited tmpfs mounts, applied in order after the root file system.</summary>
    public IReadOnlyList<SandboxMount> Mounts { get; init; } = [];

    /// <summary>
    /// Variables on top of <see cref="SandboxContract.FixedEnvironment"/>. The environment is cleared first, so
    /// these and the fixed ones are all the command sees. The fixed ones cannot be overridden; PATH may be.
    /// </summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>Working directory inside the sandbox; must be absolute and exist there.</summary>
    public string WorkingDirectory { get; init; } = "/";

    public string HostName { get; init; } = SandboxContract.HostName;

    /// <summary>SOURCE_DATE_EPOCH for reproducible timestamps; 1980-01-01 because zip and others reject earlier dates.</summary>
    public long SourceDateEpoch { get; init; } = SandboxContract.DefaultSourceDateEpoch;

    public SandboxLimits Limits { get; init; } = new();
}

public enum SandboxMountKind
{
    /// <summary>A host directory or file, read-only.</summary>
    ReadOnlyBind,

    /// <summary>A host directory, writable; counts towards <see cref="SandboxLimits.DiskBytes"/>.</summary>
    WritableBind,

    /// <summary>An empty, private tmpfs of at most <see cref="SandboxMount.SizeBytes"/> bytes.</summary>
    Tmpfs,
}

public sealed record SandboxMount(SandboxMountKind Kind, string SandboxPath, string? HostPath = null, long SizeBytes = 0)
{
    public static SandboxMount ReadOnly(string hostPath, string sandboxPath) => new(SandboxMountKind.ReadOnlyBind, sandboxPath, hostPath);

    public static SandboxMount Writable(string hostPath, string sandboxPath) => new(SandboxMountKind.WritableBind, sandboxPath, hostPath);

    public static SandboxMount Tmpfs(string sandboxPath, long sizeBytes) => new(SandboxMountKind.Tmpfs, sandboxPath, null, sizeBytes);
}

/// <summary>Resource limits; reaching one ends this run only, with <see cref="SandboxResult.LimitExceeded"/> saying which.</summary>
public sealed record SandboxLimits
{
    public TimeSpan WallTime { get; init; } = TimeSpan.FromHours(2);

    /// <summary>
    /// Processes and threads alive at once inside the sandbox; what enforces it depends on the host
    /// (<see cref="SandboxResult.ProcessLimitBy"/>, docs/recipes.md "What each host gets").
    /// </summary>
    public int MaxProcesses { get; init; } = 512;

    /// <summary>
    /// Memory of the whole sandbox when a memory cgroup can be used; otherwise the address space of each process
    /// (RLIMIT_AS), which is cruder: see docs/sandbox.md.
    /// </summary>
    public long MemoryBytes { get; init; } = 8L << 30;

    /// <summary>Bytes in all writable bind mounts together; also the largest single file (RLIMIT_FSIZE).</summary>
    public long DiskBytes { get; init; } = 16L << 30;

    /// <summary>Size of the private /tmp and of HOME (each a tmpfs).</summary>
    public long TmpBytes { get; init; } = 1L << 30;

    /// <summary>Merged stdout+stderr; beyond it the log is cut and the run is ended.</summary>
    public long LogBytes { get; init; } = 64L << 20;

    /// <summary>How often the disk usage of writable mounts and the cgroup counters are looked at.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(500);
}
