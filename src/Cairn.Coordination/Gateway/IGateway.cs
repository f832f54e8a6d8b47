using System.Text.Json.Serialization;
using Cairn.Core;

namespace Cairn.Coordination.Gateway;

/// <summary>
/// What one authenticated site asks of the gateway (docs/coordination.md, "The gateway"). Implemented in-process by
/// the gateway service (src/Cairn.Gateway) and over HTTP by the gateway client, so the build loop and its tests
/// run against either. Every call acts as the site whose token was presented; scope violations throw
/// <see cref="ErrorCode.TokenOutOfScope"/> (HTTP 403).
/// </summary>
public interface IGateway
{
    /// <summary>The site and scope the token proves.</summary>
    Task<SiteIdentity> WhoAmIAsync(CancellationToken ct);

    /// <summary>Declares (or updates) what the calling site can build.</summary>
    Task<Site> DeclareCapabilitiesAsync(SiteCapabilities capabilities, CancellationToken ct);

    /// <summary>
    /// Asks for a job. The gateway looks at the published catalog and the channel policies first: a key already
    /// published (and needing no more agreeing sites) is <see cref="JobOfferKind.Done"/>; a key published but short
    /// of agreeing sites is offered to a site that has not reported on it yet as <see cref="JobOfferKind.Confirm"/>;
    /// otherwise a claim is tried (<see cref="JobOfferKind.Build"/> or <see cref="JobOfferKind.HeldByOther"/>).
    /// </summary>
    Task<JobOffer> RequestJobAsync(JobRequest job, CancellationToken ct);

    /// <summary>Extends the caller's live claim; throws ClaimLost if it expired, was released or was taken.</summary>
    Task<Claim> HeartbeatAsync(string buildKey, long fencingToken, CancellationToken ct);

    /// <summary>Gives a claim back (build failed or cancelled); false if it was no longer live.</summary>
    Task<bool> ReleaseAsync(string buildKey, long fencingToken, CancellationToken ct);

    /// <summary>Which of these objects the gateway's store lacks (so only those are uploaded).</summary>
    Task<IReadOnlyList<Digest>> MissingObjectsAsync(IReadOnlyList<Digest> digests, CancellationToken ct);

    /// <summary>Stores one object; the gateway hashes the content and refuses it unless it matches (idempotent).</summary>
    Task PutObjectAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct);

    /// <summary>
    /// Commits a built and checked product under the claim's fencing token: checks scope, takes a lease on the
    /// paths, validates the claim, checks every object reachable from the trees is stored, writes and signs the
    /// new revision (or, for <see cref="CommitMode.Confirm"/>, writes nothing to the repository), records the
    /// commit and the site's result, and promotes per channel policy.
    /// </summary>
    Task<CommitOutcome> CommitAsync(ProductCommit commit, CancellationToken ct);

    /// <summary>Records a result that publishes nothing (a failed build or check) and releases the claim.</summary>
    Task<BuildResult> ReportFailureAsync(BuildResult result, long fencingToken, CancellationToken ct);

    /// <summary>Coherence across sites for one build key, with file-level differences.</summary>
    Task<GatewayCoherence> GetCoherenceAsync(string buildKey, CancellationToken ct);

    /// <summary>Coherence of every build key recorded for a product (PLATFORM/NAME[/VERSION] or NAME[/VERSION]); all when null.</summary>
    Task<IReadOnlyList<GatewayCoherence>> FindCoherenceAsync(string? product, CancellationToken ct);
}

/// <param name="Product">PLATFORM/NAME/VERSION: the product's path in the repository tree.</param>
/// <param name="Requirements">What the building site must have; null: only the platform must match.</param>
public sealed record JobRequest(string BuildKey, string Product, JobRequirements? Requirements, TimeSpan ClaimTtl);

[JsonConverter(typeof(CamelCaseEnumConverter<JobOfferKind>))]
public enum JobOfferKind
{
    /// <summary>Claimed: build it, heartbeat, then commit with <see cref="JobOffer.Claim"/>'s fencing token.</summary>
    Build,

    /// <summary>Published, but the channel policy wants more agreeing sites: build it and commit with <see cref="CommitMode.Confirm"/>.</summary>
    Confirm,

    /// <summary>Another site holds the claim (see <see cref="JobOffer.Claim"/>): wait and ask again.</summary>
    HeldByOther,

    /// <summary>Published with this build key and needs nothing more from this site.</summary>
    Done,
}

/// <param name="Claim">The caller's claim (Build, Confirm) or the holder's (HeldByOther); null for Done.</param>
/// <param name="PublishedRoot">Done and Confirm: the published product's root.</param>
public sealed record JobOffer(JobOfferKind Kind, Claim? Claim, Digest? PublishedRoot, string Reason);

[JsonConverter(typeof(CamelCaseEnumConverter<CommitMode>))]
public enum CommitMode
{
    /// <summary>Publish the product in a new signed revision.</summary>
    Publish,

    /// <summary>Record this site's result for an already published key (agreement); the repository is not written.</summary>
    Confirm,
}

/// <summary>A file placed outside the product in the same revision (its modulefile, build log, JUnit reports).</summary>
/// <param name="Path">'/'-separated path in the repository tree, not under a platform directory.</param>
/// <param name="Entry">The stored file (its objects uploaded first).</param>
public sealed record CommittedExtra(string Path, TreeEntry Entry);

/// <summary>
/// One product to commit. <see cref="Root"/> is the product's directory entry; its objects (and the extras')
/// must be uploaded before the commit. <see cref="Result"/> is the site's result for the build key, recorded
/// whether or not the repository is written.
/// </summary>
public sealed record ProductCommit(
    CommitMode Mode,
    string BuildKey,
    long FencingToken,
    string Platform,
    ProductRef Product,
    TreeEntry Root,
    IReadOnlyList<CommittedExtra> Extras,
    IReadOnlyList<string> Dependencies,
    TestSummary? Tests,
    string? Log,
    string Channel,
    BuildResult Result)
{
    /// <summary>Path (one of <see cref="Extras"/>) of the site's signed attestation bundle (docs/format/provenance.md); null: none.</summary>
    public string? Attestations { get; init; }
}

/// <param name="Revision">The new revision (Publish) or the head at the time (Confirm).</param>
/// <param name="Promotions">Channels the build key is promoted to after this commit.</param>
public sealed record CommitOutcome(long Revision, bool RepositoryWritten, CoherenceStatus Coherence, IReadOnlyList<string> Promotions, string Message);

/// <summary>A site's file differences from the reference root (possibly truncated: see <see cref="Truncated"/>).</summary>
public sealed record SiteFileDifferences(string Site, Digest? Root, IReadOnlyList<FileDifference> Files, bool Truncated);

/// <summary>The coherence report the gateway serves: the store's report plus the differing files of each disagreeing site.</summary>
public sealed record GatewayCoherence(CoherenceReport Report, IReadOnlyList<SiteFileDifferences> Files, IReadOnlyList<Promotion> Promotions);
