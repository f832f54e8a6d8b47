namespace Cairn.Coordination;

/// <summary>
/// The coordination state the gateway keeps for many sites publishing into one repository (docs/coordination.md):
/// sites and their tokens, job claims with expiry and fencing, publish leases on repository paths, every site's
/// build results with the coherence and promotion they imply, and an audit record of every commit.
/// Every implementation passes tests/Cairn.Coordination.Tests/CoordinationStoreConformance.cs. Expiry is measured
/// with the <see cref="TimeProvider"/> the store was given, never the wall clock directly.
/// </summary>
public interface ICoordinationStore : IAsyncDisposable
{
    /// <summary>Applies the numbered schema migrations not yet applied, in order. Idempotent and safe to run from several processes at once.</summary>
    Task MigrateAsync(CancellationToken ct);

    Task<IReadOnlyList<AppliedMigration>> GetAppliedMigrationsAsync(CancellationToken ct);

    // Sites and tokens

    /// <summary>Registers a site, or updates its capabilities if it exists.</summary>
    Task<Site> RegisterSiteAsync(string name, SiteCapabilities capabilities, CancellationToken ct);

    Task<Site?> GetSiteAsync(string name, CancellationToken ct);

    /// <summary>Registers (replaces) the Ed25519 public key (base64) a registered site signs its build statements with.</summary>
    Task<Site> SetSiteKeyAsync(string name, string publicKey, CancellationToken ct);

    Task<IReadOnlyList<Site>> ListSitesAsync(CancellationToken ct);

    /// <summary>Issues a token for a registered site; its secret is returned once and only its hash is stored.</summary>
    Task<IssuedToken> IssueTokenAsync(string site, TokenScope scope, CancellationToken ct);

    /// <summary>The identity a token proves; throws TokenInvalid (unknown or wrong secret) or TokenRevoked.</summary>
    Task<SiteIdentity> AuthenticateAsync(string token, CancellationToken ct);

    /// <summary>Revokes a token from now on; false if it does not exist or was already revoked.</summary>
    Task<bool> RevokeTokenAsync(string tokenId, CancellationToken ct);

    Task<IReadOnlyList<TokenInfo>> ListTokensAsync(string site, CancellationToken ct);

    // Job claims

    /// <summary>
    /// Claims a job for a site for <paramref name="ttl"/>. Granted when no live claim exists for the key (none, released,
    /// or expired); otherwise returns the live holder's claim. A granted claim carries a fencing token larger than
    /// any granted before. Throws SiteUnknown, or CapabilityMismatch when the site cannot meet <paramref name="requirements"/>.
    /// A site's second claim on a key it holds is refused like anyone else's: one claim is one builder.
    /// </summary>
    Task<ClaimResult> TryClaimAsync(string buildKey, string site, TimeSpan ttl, JobRequirements? requirements, CancellationToken ct);

    /// <summary>Extends a live claim to now + <paramref name="ttl"/>; throws ClaimLost if it expired, was released or was taken.</summary>
    Task<Claim> HeartbeatAsync(string buildKey, string site, long fencingToken, TimeSpan ttl, CancellationToken ct);

    /// <summary>Ends a claim early; false if the claim was no longer the live one (nothing changed then).</summary>
    Task<bool> ReleaseAsync(string buildKey, string site, long fencingToken, CancellationToken ct);

    /// <summary>The claim if it is live and this is its fencing token; otherwise throws ClaimLost. Checked before every commit.</summary>
    Task<Claim> ValidateFencingTokenAsync(string buildKey, string site, long fencingToken, CancellationToken ct);

    /// <summary>The live claim on a key, or null.</summary>
    Task<Claim?> GetClaimAsync(string buildKey, CancellationToken ct);

    /// <summary>Every live claim (not released, not expired), oldest first: what is being built now, and where.</summary>
    Task<IReadOnlyList<Claim>> ListLiveClaimsAsync(CancellationToken ct);

    // Publish leases

    /// <summary>
    /// Leases repository paths for a commit. Exclusive: refused (with the conflicting leases) while any live lease
    /// has an overlapping path (equal, or one below the other); leases on disjoint paths coexist.
    /// </summary>
    Task<LeaseResult> AcquireLeaseAsync(IReadOnlyCollection<string> paths, string site, TimeSpan ttl, CancellationToken ct);

    /// <summary>Extends a live lease; throws LeaseLost if it expired or was released.</summary>
    Task<Lease> RenewLeaseAsync(long leaseId, string site, TimeSpan ttl, CancellationToken ct);

    Task<bool> ReleaseLeaseAsync(long leaseId, string site, CancellationToken ct);

    /// <summary>The lease if it is live, held by the site and covers every path; otherwise throws LeaseLost.</summary>
    Task<Lease> ValidateLeaseAsync(long leaseId, string site, IReadOnlyCollection<string> paths, CancellationToken ct);

    // Commits

    /// <summary>Records a commit (the audit log: every commit with its site, token, lease and claim).</summary>
    Task<CommitRecord> RecordCommitAsync(CommitRequest commit, CancellationToken ct);

    /// <summary>Commits after <paramref name="afterId"/> in order, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<CommitRecord>> ListCommitsAsync(long afterId, int limit, CancellationToken ct);

    /// <summary>Records an operator's action (the audit log's second half: revoke, promote, re-run).</summary>
    Task<OperatorActionRecord> RecordOperatorActionAsync(OperatorAction action, CancellationToken ct);

    /// <summary>Operator actions after <paramref name="afterId"/> in order, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<OperatorActionRecord>> ListOperatorActionsAsync(long afterId, int limit, CancellationToken ct);

    // Results, coherence and promotion

    /// <summary>Records (or replaces) the site's result for the build key; returns it with its recording time.</summary>
    Task<BuildResult> RecordResultAsync(BuildResult result, CancellationToken ct);

    Task<IReadOnlyList<BuildResult>> GetResultsAsync(string buildKey, CancellationToken ct);

    /// <summary>
    /// Deletes the failing results of a build key (an operator's re-run): the key then counts as not built there and
    /// sites build it again. Passing results are kept. Returns the sites whose result was forgotten.
    /// </summary>
    Task<IReadOnlyList<string>> ForgetFailedResultsAsync(string buildKey, CancellationToken ct);

    /// <summary>The most recently recorded results of any key and site, newest first, at most <paramref name="limit"/> (1 to 100,000).</summary>
    Task<IReadOnlyList<BuildResult>> ListRecentResultsAsync(int limit, CancellationToken ct);

    Task<CoherenceReport> GetCoherenceAsync(string buildKey, CancellationToken ct);

    Task SetChannelPolicyAsync(ChannelPolicy policy, CancellationToken ct);

    /// <summary>The stored policy, else the default (testing 1, stable 2); throws Usage for an unknown channel without one.</summary>
    Task<ChannelPolicy> GetChannelPolicyAsync(string channel, CancellationToken ct);

    Task<PromotionDecision> EvaluatePromotionAsync(string buildKey, string channel, CancellationToken ct);

    /// <summary>Records the promotion if the policy allows it now (idempotent); throws PromotionRefused with the reason otherwise.</summary>
    Task<Promotion> PromoteAsync(string buildKey, string channel, CancellationToken ct);

    Task<IReadOnlyList<Promotion>> GetPromotionsAsync(string buildKey, CancellationToken ct);
}
