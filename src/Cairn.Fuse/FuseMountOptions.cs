namespace Cairn.Fuse;

/// <summary>How a repository is mounted. Defaults suit a site mount of immutable content.</summary>
public sealed record FuseMountOptions
{
    /// <summary>A read that needs an object not yet fetched fails with EIO after this long, whatever the store does.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Poll the head manifest this often and switch new lookups to a new revision; null keeps the mounted revision.</summary>
    public TimeSpan? FollowInterval { get; init; }

    /// <summary>How long the kernel may cache names and attributes. Content is immutable, so long.</summary>
    public TimeSpan CacheTimeout { get; init; } = TimeSpan.FromHours(24);

    /// <summary>Threads reading requests from /dev/fuse.</summary>
    public int Threads { get; init; } = Math.Clamp(Environment.ProcessorCount, 4, 16);

    /// <summary>Verified file contents and chunks kept in memory, so the kernel's readahead pieces of one object decode it once.</summary>
    public long MemoryCacheBytes { get; init; } = 256L << 20;

    /// <summary>Largest readahead the kernel may do, in bytes.</summary>
    public uint MaxReadahead { get; init; } = 1 << 20;

    /// <summary>Source shown in /proc/mounts and df.</summary>
    public string FsName { get; init; } = "cairn";

    /// <summary>Let users other than the one mounting read the tree (the kernel still checks the 0444/0555 modes).</summary>
    public bool AllowOther { get; init; } = true;

    /// <summary>How long mounting waits for the kernel's INIT request.</summary>
    public TimeSpan InitTimeout { get; init; } = TimeSpan.FromSeconds(15);
}
