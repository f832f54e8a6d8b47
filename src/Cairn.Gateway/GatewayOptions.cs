namespace Cairn.Gateway;

public sealed record GatewayOptions
{
    /// <summary>Largest object a site may upload. Objects are files up to the chunking threshold (1 MiB), chunks (at most 2 MiB), trees and chunk lists.</summary>
    public int MaxObjectSize { get; init; } = 16 << 20;

    /// <summary>How long a commit's lease lives: a gateway killed mid-commit blocks that product's paths for at most this long.</summary>
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a commit waits for a lease another commit holds before failing with GatewayLeaseBusy.</summary>
    public TimeSpan LeaseWait { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Heartbeats extend a claim by its original TTL; this is used when the gateway no longer knows it (after a restart).</summary>
    public TimeSpan DefaultClaimTtl { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Uploaded objects are written into one pack and made durable this long after the first (or at the next commit).</summary>
    public TimeSpan UploadFlushDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Uploads are flushed early once this many bytes are pending.</summary>
    public long UploadFlushBytes { get; init; } = 32L << 20;

    /// <summary>Most differing files listed per site in a coherence report.</summary>
    public int MaxFileDifferences { get; init; } = 200;

    /// <summary>Refuse commits from sites without a registered key (CAIRN-E1208); without it such sites' statements are stored unchecked.</summary>
    public bool RequireSiteKeys { get; init; }

    /// <summary>Clock for back-off while waiting for a lease and for upload flushes (wall-clock waits, not expiry).</summary>
    public TimeProvider WaitTime { get; init; } = TimeProvider.System;
}
