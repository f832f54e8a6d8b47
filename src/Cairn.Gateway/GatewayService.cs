using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Repository;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Gateway;

/// <summary>
/// The gateway's logic, in-process: claims, uploads, commits under leases with fencing, results, coherence and
/// promotion (docs/coordination.md, "The gateway"), over a coordination store and the product repository it
/// alone writes (opened with the signing key, so every revision it commits is signed and the key never leaves
/// this process). The commit path (lease, fencing check, publish session, audit, promotion) is here; claims
/// (<see cref="GatewayClaims"/>), uploads (<see cref="UploadSink"/>), coherence reports (<see cref="CoherenceReports"/>)
/// and commit validation (<see cref="CommitRules"/>) are their own classes. <see cref="For"/> gives the <see cref="IGateway"/> of one authenticated site; the HTTP layer
/// and in-process tests share it.
/// </summary>
public sealed class GatewayService : IAsyncDisposable
{
    private readonly ICoordinationStore _store;
    private readonly WritableRepository _repository;
    private readonly GatewayOptions _options;
    private readonly ILogger _log;
    private readonly UploadSink _uploads;
    private readonly GatewayClaims _claims;
    private readonly CoherenceReports _coherence;

    public GatewayService(ICoordinationStore store, WritableRepository repository, GatewayOptions? options = null, ILogger? logger = null)
    {
        _store = store ?? throw new ArgumentNullException(nameof(store));
        _repository = repository ?? throw new ArgumentNullException(nameof(repository));
        _options = options ?? new GatewayOptions();
        _log = logger ?? NullLogger.Instance;
        _uploads = new UploadSink(repository, _options, _log);
        _claims = new GatewayClaims(store, repository, _options);
        _coherence = new CoherenceReports(store, repository, _options, _log);
    }

    public ICoordinationStore Store => _store;

    public WritableRepository Repository => _repository;

    public GatewayOptions Options => _options;

    /// <summary>The gateway as the site whose token proved <paramref name="identity"/>.</summary>
    public IGateway For(SiteIdentity identity) => new SiteGateway(this, identity ?? throw new ArgumentNullException(nameof(identity)));

    /// <summary>Authenticates a bearer token (TokenInvalid, TokenRevoked) and returns the gateway as its site.</summary>
    public async Task<IGateway> AuthenticateAsync(string token, CancellationToken ct) =>
        For(await _store.AuthenticateAsync(token, ct).ConfigureAwait(false));

    public async ValueTask DisposeAsync() => await _uploads.DisposeAsync().ConfigureAwait(false);

    // ---- requests that need no identity

    public Task<GatewayCoherence> GetCoherenceAsync(string buildKey, CancellationToken ct) => _coherence.GetAsync(buildKey, ct);

    /// <summary>
    /// Coherence of every build key the gateway knows for a product: the keys in the commit audit (publishes and
    /// confirmations) and the key the head catalog records.
    /// </summary>
    public Task<IReadOnlyList<GatewayCoherence>> FindCoherenceAsync(string? product, CancellationToken ct) => _coherence.FindAsync(product, ct);

    // ---- claims and uploads

    internal Task<JobOffer> RequestJobAsync(SiteIdentity identity, JobRequest job, CancellationToken ct) => _claims.RequestJobAsync(identity, job, ct);

    internal Task<Claim> HeartbeatAsync(SiteIdentity identity, string buildKey, long fencingToken, CancellationToken ct) =>
        _claims.HeartbeatAsync(identity, buildKey, fencingToken, ct);

    internal Task<bool> ReleaseAsync(SiteIdentity identity, string buildKey, long fencingToken, CancellationToken ct) =>
        _claims.ReleaseAsync(identity, buildKey, fencingToken, ct);

    internal Task<IReadOnlyList<Digest>> MissingObjectsAsync(IReadOnlyList<Digest> digests, CancellationToken ct) => _uploads.MissingAsync(digests, ct);

    internal Task PutObjectAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct) => _uploads.AcceptAsync(digest, content, ct);

    internal CairnException TooLarge(Digest digest, long length) => _uploads.TooLarge(digest, length);

    // ---- the commit and its parts

    internal async Task<BuildResult> ReportFailureAsync(SiteIdentity identity, BuildResult result, long fencingToken, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(result);
        Names.ValidateBuildKey(result.BuildKey);
        CommitRules.ParseProductPath(result.Product);
        identity.AuthorizePaths([result.Product]);
        await _store.ValidateFencingTokenAsync(result.BuildKey, identity.Site, fencingToken, ct).ConfigureAwait(false);
        var recorded = await _store.RecordResultAsync(result with { Site = identity.Site }, ct).ConfigureAwait(false);
        await ReleaseAsync(identity, result.BuildKey, fencingToken, ct).ConfigureAwait(false);
        _log.LogInformation("site {Site} reported a failure for {Product} ({BuildKey})", identity.Site, result.Product, result.BuildKey);
        return recorded;
    }

    internal async Task<CommitOutcome> CommitAsync(SiteIdentity identity, ProductCommit commit, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(commit);
        Names.ValidateBuildKey(commit.BuildKey);
        Platforms.Validate(commit.Platform);
        Names.ValidateChannel(commit.Channel);
        var productPath = CommitRules.ProductPath(commit.Platform, commit.Product);
        var extras = CommitRules.Validate(commit, productPath);

        // 1. scope, and a channel the gateway knows (an unknown one fails here, before anything is locked)
        identity.AuthorizePaths([productPath]);
        identity.AuthorizeChannel(commit.Channel);
        await _store.GetChannelPolicyAsync(commit.Channel, ct).ConfigureAwait(false);
        await _uploads.FlushAsync(ct).ConfigureAwait(false);
        await SiteAttestations.CheckAsync(_store, _repository, identity, commit, extras, _options.RequireSiteKeys, ct).ConfigureAwait(false);
        var result = commit.Result with { Site = identity.Site, OutputRoot = commit.Root.Digest };

        if (commit.Mode == CommitMode.Confirm)
        {
            return await ConfirmAsync(identity, commit, result, extras, ct).ConfigureAwait(false);
        }

        // 2. the lease on every path the revision changes
        var paths = new List<string> { productPath, $"logs/{productPath}" };
        foreach (var (path, _) in extras)
        {
            if (!paths.Any(p => RepositoryPaths.IsWithin(path, p))) paths.Add(path);
        }

        var lease = await AcquireLeaseAsync(identity, paths, ct).ConfigureAwait(false);
        var keeper = LeaseKeeper.Start(_store, lease, _options.LeaseTtl, _options.WaitTime, _log);
        try
        {
            // 3. under the lease: the claim is still this site's, and so is the lease
            await _store.ValidateFencingTokenAsync(commit.BuildKey, identity.Site, commit.FencingToken, ct).ConfigureAwait(false);

            // 4. every object is stored, then the signed revision
            await _uploads.FlushAsync(ct).ConfigureAwait(false);
            var (published, written) = await PublishUnderLeaseAsync(identity, commit, extras, lease.Id, paths, ct).ConfigureAwait(false);

            // 5. the audit record, the result and promotion
            await _store.RecordCommitAsync(new CommitRequest(identity.Site, identity.TokenId, lease.Id, commit.BuildKey, commit.FencingToken, paths,
                commit.Channel, published.Revision, commit.Root.Digest, written ? $"publish {productPath}" : $"unchanged {productPath}"), ct).ConfigureAwait(false);
            var outcome = await RecordAndPromoteAsync(result, commit.Channel, published.Revision, written,
                written ? $"{productPath} published in revision {published.Revision}" : $"{productPath} was already published with build key {commit.BuildKey}; result recorded",
                ct).ConfigureAwait(false);

            // 6. the claim is done
            await ReleaseAsync(identity, commit.BuildKey, commit.FencingToken, ct).ConfigureAwait(false);
            _log.LogInformation("site {Site} committed {Product} ({BuildKey}): revision {Revision}, written {Written}", identity.Site, productPath, commit.BuildKey, published.Revision, written);
            return outcome;
        }
        finally
        {
            await keeper.DisposeAsync().ConfigureAwait(false);
            await _store.ReleaseLeaseAsync(lease.Id, identity.Site, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Step 4 of a commit, in a publish session: every object the commit names is stored, the lease still holds,
    /// then the revision is written — or not, when the head already has this build key (the first publication stands).
    /// </summary>
    private async Task<(PublishResult Published, bool Written)> PublishUnderLeaseAsync(SiteIdentity identity, ProductCommit commit,
        List<(string Path, TreeEntry Entry)> extras, long leaseId, List<string> paths, CancellationToken ct)
    {
        await using var session = await _repository.BeginPublishAsync(ct).ConfigureAwait(false);
        await RequireObjectsAsync(commit, extras, ct).ConfigureAwait(false);
        await _store.ValidateLeaseAsync(leaseId, identity.Site, paths, ct).ConfigureAwait(false);

        var head = await _repository.HeadAsync(ct).ConfigureAwait(false);
        var existing = (await _repository.CatalogAsync(head, ct).ConfigureAwait(false)).Find(commit.Platform, commit.Product);
        if (existing is not null && string.Equals(existing.BuildKey, commit.BuildKey, StringComparison.Ordinal))
        {
            // Already published under this key (a site that committed in Publish mode what was a confirmation):
            // the first publication stands, this one is recorded as a result.
            return (new PublishResult(PublishOutcome.Unchanged, existing, head.Revision, 0, 0), false);
        }

        var published = await session.CommitProductAsync(commit.Product, commit.Root, extras, new PublishOptions
        {
            Platform = commit.Platform,
            BuildKey = commit.BuildKey,
            Dependencies = commit.Dependencies,
            Tests = commit.Tests,
            PublishedBy = $"site {identity.Site}",
            Log = commit.Log,
            Attestations = commit.Attestations,
            Replace = existing is not null,
            ReplaceReason = existing is null ? null : $"rebuilt by site {identity.Site} for build key {commit.BuildKey}",
            SkipIfBuildKeyPublished = true,
        }, ct).ConfigureAwait(false);
        return (published, published.Outcome != PublishOutcome.Unchanged);
    }

    private async Task<CommitOutcome> ConfirmAsync(SiteIdentity identity, ProductCommit commit, BuildResult result, List<(string Path, TreeEntry Entry)> extras, CancellationToken ct)
    {
        var productPath = CommitRules.ProductPath(commit.Platform, commit.Product);
        await _store.ValidateFencingTokenAsync(commit.BuildKey, identity.Site, commit.FencingToken, ct).ConfigureAwait(false);
        var head = await _repository.HeadAsync(ct).ConfigureAwait(false);
        var published = (await _repository.CatalogAsync(head, ct).ConfigureAwait(false)).Find(commit.Platform, commit.Product);
        if (published is null || !string.Equals(published.BuildKey, commit.BuildKey, StringComparison.Ordinal))
        {
            throw new CairnException(ErrorCode.GatewayCommitInvalid,
                $"a confirmation of {productPath} with build key {commit.BuildKey}, but revision {head.Revision} has {(published is null ? "no such product" : $"build key {published.BuildKey}")}",
                "ask for the job again: confirm only what the job offer says is published");
        }

        // The site's tree stays in the store (unreferenced until gc) so the coherence report can compare files.
        await _uploads.FlushAsync(ct).ConfigureAwait(false);
        await using (await _repository.BeginPublishAsync(ct).ConfigureAwait(false))
        {
            await RequireObjectsAsync(commit, extras, ct).ConfigureAwait(false);
        }

        await SiteAttestations.AppendConfirmationAsync(_store, _repository, identity, commit, extras, published, ct).ConfigureAwait(false);
        await _store.RecordCommitAsync(new CommitRequest(identity.Site, identity.TokenId, 0, commit.BuildKey, commit.FencingToken, [productPath],
            commit.Channel, head.Revision, commit.Root.Digest, $"confirm {productPath}"), ct).ConfigureAwait(false);
        var outcome = await RecordAndPromoteAsync(result, commit.Channel, head.Revision, false,
            published.Root == commit.Root.Digest ? $"{productPath}: same output root as published" : $"{productPath}: output root differs from the published {published.Root}",
            ct).ConfigureAwait(false);
        await ReleaseAsync(identity, commit.BuildKey, commit.FencingToken, ct).ConfigureAwait(false);
        _log.LogInformation("site {Site} confirmed {Product} ({BuildKey}): {Coherence}", identity.Site, productPath, commit.BuildKey, outcome.Coherence);
        return outcome;
    }

    private async Task<CommitOutcome> RecordAndPromoteAsync(BuildResult result, string channel, long revision, bool written, string message, CancellationToken ct)
    {
        await _store.RecordResultAsync(result, ct).ConfigureAwait(false);
        var channels = new List<string> { ChannelPolicy.Testing, ChannelPolicy.Stable };
        if (!channels.Contains(channel)) channels.Insert(0, channel);
        foreach (var c in channels)
        {
            var decision = await _store.EvaluatePromotionAsync(result.BuildKey, c, ct).ConfigureAwait(false);
            if (!decision.Allowed) continue;
            if (c == ChannelPolicy.Stable
                && !await SiteAttestations.EnoughForStableAsync(_store, _repository, result.Product, decision.RequiredAgreeingSites, _options.RequireSiteKeys, ct).ConfigureAwait(false))
            {
                _log.LogInformation("{Product} not promoted to stable: fewer than {Required} registered sites' signed PASSED statements", result.Product, decision.RequiredAgreeingSites);
                continue;
            }

            try
            {
                await _store.PromoteAsync(result.BuildKey, c, ct).ConfigureAwait(false);
            }
            catch (CairnException e) when (e.Code == ErrorCode.PromotionRefused)
            {
                // Another site's result arrived in between and changed the decision: the refusal stands.
                _log.LogInformation("promotion of {BuildKey} to {Channel} refused: {Message}", result.BuildKey, c, e.Message);
            }
        }

        var report = await _store.GetCoherenceAsync(result.BuildKey, ct).ConfigureAwait(false);
        var promotions = await _store.GetPromotionsAsync(result.BuildKey, ct).ConfigureAwait(false);
        return new CommitOutcome(revision, written, report.Status, [.. promotions.Select(p => p.Channel)], message);
    }

    private async Task<Lease> AcquireLeaseAsync(SiteIdentity identity, IReadOnlyCollection<string> paths, CancellationToken ct)
    {
        var time = _options.WaitTime;
        var deadline = time.GetTimestamp() + (long)(_options.LeaseWait.TotalSeconds * time.TimestampFrequency);
        var delay = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            var result = await _store.AcquireLeaseAsync(paths, identity.Site, _options.LeaseTtl, ct).ConfigureAwait(false);
            if (result.Granted) return result.Lease!;
            if (time.GetTimestamp() >= deadline)
            {
                var holders = string.Join(", ", result.Conflicts.Select(l => $"lease {l.Id} of site {l.Site} on {string.Join(" ", l.Paths)} until {l.ExpiresAt:O}"));
                throw new CairnException(ErrorCode.GatewayLeaseBusy,
                    $"could not lease {string.Join(", ", paths)} within {_options.LeaseWait.TotalSeconds:0} s: {holders}",
                    "retry the commit; another commit of the same product is in progress (a gateway killed mid-commit holds its lease until it expires)");
            }

            // Jitter keeps several waiting commits from retrying in lockstep.
            await Task.Delay(delay + TimeSpan.FromMilliseconds(Random.Shared.Next(0, (int)delay.TotalMilliseconds)), time, ct).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
        }
    }

    /// <summary>Every object the root and the extras reach must be in the store (gc may have removed an uncommitted upload).</summary>
    private async Task RequireObjectsAsync(ProductCommit commit, List<(string Path, TreeEntry Entry)> extras, CancellationToken ct)
    {
        var objects = _repository.Objects;
        var missing = new List<Digest>();
        var seen = new HashSet<Digest>();
        await Reachability.WalkAsync(objects, [commit.Root, .. extras.Select(e => e.Entry)], async o =>
        {
            if (!seen.Add(o.Digest)) return WalkStep.Skip;
            if (!await objects.ContainsAsync(o.Digest, ct).ConfigureAwait(false))
            {
                missing.Add(o.Digest);
                return missing.Count < 20 ? WalkStep.Skip : WalkStep.Stop;
            }

            return WalkStep.Continue;
        }, new ReachabilityOptions { OnUnreadable = (o, e) => e.Code == ErrorCode.ObjectMissing && Missing(o.Digest) }, ct).ConfigureAwait(false);

        if (missing.Count > 0)
        {
            throw new CairnException(ErrorCode.GatewayObjectsMissing,
                $"the commit of {CommitRules.ProductPath(commit.Platform, commit.Product)} names objects the gateway does not hold: {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", …" : "")}",
                "upload them (ask /v1/objects/missing for the whole tree) and commit again; an upload not committed in time may have been removed by gc");
        }

        // A tree or chunk list listed but gone by the time it is read (a concurrent gc) is as missing as one never uploaded.
        bool Missing(Digest digest)
        {
            missing.Add(digest);
            return true;
        }
    }
}

/// <summary>The gateway as one authenticated site sees it.</summary>
internal sealed class SiteGateway(GatewayService service, SiteIdentity identity) : IGateway
{
    public Task<SiteIdentity> WhoAmIAsync(CancellationToken ct) => Task.FromResult(identity);

    public Task<Site> DeclareCapabilitiesAsync(SiteCapabilities capabilities, CancellationToken ct) =>
        service.Store.RegisterSiteAsync(identity.Site, capabilities ?? throw new ArgumentNullException(nameof(capabilities)), ct);

    public Task<JobOffer> RequestJobAsync(JobRequest job, CancellationToken ct) => service.RequestJobAsync(identity, job, ct);

    public Task<Claim> HeartbeatAsync(string buildKey, long fencingToken, CancellationToken ct) => service.HeartbeatAsync(identity, buildKey, fencingToken, ct);

    public Task<bool> ReleaseAsync(string buildKey, long fencingToken, CancellationToken ct) => service.ReleaseAsync(identity, buildKey, fencingToken, ct);

    public Task<IReadOnlyList<Digest>> MissingObjectsAsync(IReadOnlyList<Digest> digests, CancellationToken ct) => service.MissingObjectsAsync(digests, ct);

    public Task PutObjectAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct) => service.PutObjectAsync(digest, content, ct);

    public Task<CommitOutcome> CommitAsync(ProductCommit commit, CancellationToken ct) => service.CommitAsync(identity, commit, ct);

    public Task<BuildResult> ReportFailureAsync(BuildResult result, long fencingToken, CancellationToken ct) => service.ReportFailureAsync(identity, result, fencingToken, ct);

    public Task<GatewayCoherence> GetCoherenceAsync(string buildKey, CancellationToken ct) => service.GetCoherenceAsync(buildKey, ct);

    public Task<IReadOnlyList<GatewayCoherence>> FindCoherenceAsync(string? product, CancellationToken ct) => service.FindCoherenceAsync(product, ct);
}
