using System.Collections.Concurrent;
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
/// this process). <see cref="For"/> gives the <see cref="IGateway"/> of one authenticated site; the HTTP layer
/// and in-process tests share it.
/// </summary>
public sealed class GatewayService : IAsyncDisposable
{
    private readonly ICoordinationStore _store;
    private readonly WritableRepository _repository;
    private readonly GatewayOptions _options;
    private readonly ILogger _log;
    private readonly UploadSink _uploads;

    // A heartbeat extends a claim by the TTL it was granted with; the store keeps only the expiry.
    private readonly ConcurrentDictionary<long, TimeSpan> _claimTtls = new();

    public GatewayService(ICoordinationStore store, WritableRepository repository, GatewayOptions? options = null, ILogger? logger = null)
    {
        _store = store ?? throw new ArgumentNullException(nameof(store));
        _repository = repository ?? throw new ArgumentNullException(nameof(repository));
        _options = options ?? new GatewayOptions();
        _log = logger ?? NullLogger.Instance;
        _uploads = new UploadSink(repository, _options, _log);
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

    public async Task<GatewayCoherence> GetCoherenceAsync(string buildKey, CancellationToken ct)
    {
        Names.ValidateBuildKey(buildKey);
        var report = await _store.GetCoherenceAsync(buildKey, ct).ConfigureAwait(false);
        var files = new List<SiteFileDifferences>();
        if (report.ReferenceRoot is { } reference)
        {
            foreach (var d in report.Disagreements)
            {
                if (d.OutputRoot is not { } other || other == reference) continue;
                files.Add(await DiffAsync(d.Site, reference, other, ct).ConfigureAwait(false));
            }
        }

        var promotions = await _store.GetPromotionsAsync(buildKey, ct).ConfigureAwait(false);
        return new GatewayCoherence(report, files, promotions);
    }

    /// <summary>
    /// Coherence of every build key the gateway knows for a product: the keys in the commit audit (publishes and
    /// confirmations) and the key the head catalog records.
    /// </summary>
    public async Task<IReadOnlyList<GatewayCoherence>> FindCoherenceAsync(string? product, CancellationToken ct)
    {
        var keys = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Add(string? key)
        {
            if (key is not null && seen.Add(key)) keys.Add(key);
        }

        var filter = product is null ? null : RepositoryPaths.Normalize(product);
        bool Matches(string path) => filter is null || RepositoryPaths.IsWithin(path, filter) || RepositoryPaths.IsWithin(path.Substring(path.IndexOf('/', StringComparison.Ordinal) + 1), filter);

        var after = 0L;
        while (true)
        {
            var page = await _store.ListCommitsAsync(after, 1000, ct).ConfigureAwait(false);
            if (page.Count == 0) break;
            foreach (var c in page)
            {
                if (c.Commit is { BuildKey: { } key, Paths: [var first, ..] } && Matches(first)) Add(key);
            }

            after = page[^1].Id;
        }

        var head = await _repository.HeadAsync(ct).ConfigureAwait(false);
        var catalog = await _repository.CatalogAsync(head, ct).ConfigureAwait(false);
        foreach (var p in catalog.Products)
        {
            if (Matches($"{p.Platform}/{p.Name}/{p.Version}")) Add(p.BuildKey);
        }

        var result = new List<GatewayCoherence>();
        foreach (var key in keys)
        {
            var c = await GetCoherenceAsync(key, ct).ConfigureAwait(false);
            if (c.Report.Status != CoherenceStatus.NoResults) result.Add(c);
        }

        return result;
    }

    private async Task<SiteFileDifferences> DiffAsync(string site, Digest reference, Digest other, CancellationToken ct)
    {
        try
        {
            var diff = await TreeDiff.CompareAsync(_repository.Trees, reference, _repository.Trees, other,
                new TreeDiffOptions { MaxFiles = _options.MaxFileDifferences }, ct).ConfigureAwait(false);
            return new SiteFileDifferences(site, other, diff.Files, diff.Truncated);
        }
        catch (CairnException e) when (e.Code is ErrorCode.ObjectMissing)
        {
            // A tree collected by gc (a confirmation whose objects were never committed): say so, hide nothing else.
            _log.LogWarning("coherence: cannot compare {Site}'s tree {Root}: {Message}", site, other, e.Message);
            return new SiteFileDifferences(site, other, [], true);
        }
    }

    // ---- the commit and its parts

    internal static string ProductPath(string platform, ProductRef product) => $"{platform}/{product.Name}/{product.Version}";

    internal async Task<JobOffer> RequestJobAsync(SiteIdentity identity, JobRequest job, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(job);
        Names.ValidateBuildKey(job.BuildKey);
        Names.ValidateTtl(job.ClaimTtl);
        var (platform, product) = ParseProductPath(job.Product);
        identity.AuthorizePaths([job.Product]);

        var head = await _repository.HeadAsync(ct).ConfigureAwait(false);
        var catalog = await _repository.CatalogAsync(head, ct).ConfigureAwait(false);
        var published = catalog.Find(platform, product);
        if (published is not null && string.Equals(published.BuildKey, job.BuildKey, StringComparison.Ordinal))
        {
            var report = await _store.GetCoherenceAsync(job.BuildKey, ct).ConfigureAwait(false);
            if (report.Results.Any(r => r.Site == identity.Site))
            {
                return new JobOffer(JobOfferKind.Done, null, published.Root, $"published in revision {head.Revision}; site {identity.Site} has reported on it");
            }

            if (report.Status == CoherenceStatus.Disagreement)
            {
                return new JobOffer(JobOfferKind.Done, null, published.Root, "published, and the sites disagree: see the coherence report");
            }

            var needed = await AgreeingSitesWantedAsync(job.BuildKey, ct).ConfigureAwait(false);
            if (report.AgreeingSites.Count >= needed)
            {
                return new JobOffer(JobOfferKind.Done, null, published.Root, $"published in revision {head.Revision}; {report.AgreeingSites.Count} site(s) agree");
            }

            var confirm = await ClaimAsync(identity, job, platform, ct).ConfigureAwait(false);
            if (confirm.Granted)
            {
                // The report was read before the claim: the publisher may have recorded its result and released its
                // claim in between, and then this key needs no more sites (else K=1 keys were built twice).
                var again = await _store.GetCoherenceAsync(job.BuildKey, ct).ConfigureAwait(false);
                if (again.AgreeingSites.Count >= needed || again.Status == CoherenceStatus.Disagreement)
                {
                    await ReleaseAsync(identity, job.BuildKey, confirm.Claim.FencingToken, ct).ConfigureAwait(false);
                    return new JobOffer(JobOfferKind.Done, null, published.Root, $"published in revision {head.Revision}; {again.AgreeingSites.Count} site(s) agree");
                }
            }

            return confirm.Granted
                ? new JobOffer(JobOfferKind.Confirm, confirm.Claim, published.Root,
                    $"published; {report.AgreeingSites.Count} of {needed} agreeing sites: build it and commit with mode Confirm")
                : new JobOffer(JobOfferKind.HeldByOther, confirm.Claim, published.Root, $"site {confirm.Claim.Site} is confirming it");
        }

        var claim = await ClaimAsync(identity, job, platform, ct).ConfigureAwait(false);
        return claim.Granted
            ? new JobOffer(JobOfferKind.Build, claim.Claim, null, published is null ? "not published: build it" : $"published with build key {published.BuildKey}: rebuild it")
            : new JobOffer(JobOfferKind.HeldByOther, claim.Claim, null, $"site {claim.Claim.Site} holds the claim until {claim.Claim.ExpiresAt:O}");
    }

    private async Task<ClaimResult> ClaimAsync(SiteIdentity identity, JobRequest job, string platform, CancellationToken ct)
    {
        var result = await _store.TryClaimAsync(job.BuildKey, identity.Site, job.ClaimTtl, job.Requirements ?? new JobRequirements(platform), ct).ConfigureAwait(false);
        if (result.Granted) _claimTtls[result.Claim.FencingToken] = job.ClaimTtl;
        return result;
    }

    /// <summary>The most agreeing sites any default channel wants for a key not yet promoted there.</summary>
    private async Task<int> AgreeingSitesWantedAsync(string buildKey, CancellationToken ct)
    {
        var promoted = (await _store.GetPromotionsAsync(buildKey, ct).ConfigureAwait(false)).Select(p => p.Channel).ToHashSet(StringComparer.Ordinal);
        var wanted = 1;
        foreach (var channel in new[] { ChannelPolicy.Testing, ChannelPolicy.Stable })
        {
            if (promoted.Contains(channel)) continue;
            wanted = Math.Max(wanted, (await _store.GetChannelPolicyAsync(channel, ct).ConfigureAwait(false)).RequiredAgreeingSites);
        }

        return wanted;
    }

    internal async Task<Claim> HeartbeatAsync(SiteIdentity identity, string buildKey, long fencingToken, CancellationToken ct)
    {
        if (!_claimTtls.TryGetValue(fencingToken, out var ttl))
        {
            ttl = _options.DefaultClaimTtl;
        }

        return await _store.HeartbeatAsync(buildKey, identity.Site, fencingToken, ttl, ct).ConfigureAwait(false);
    }

    internal async Task<bool> ReleaseAsync(SiteIdentity identity, string buildKey, long fencingToken, CancellationToken ct)
    {
        var released = await _store.ReleaseAsync(buildKey, identity.Site, fencingToken, ct).ConfigureAwait(false);
        _claimTtls.TryRemove(fencingToken, out _);
        return released;
    }

    internal async Task<IReadOnlyList<Digest>> MissingObjectsAsync(IReadOnlyList<Digest> digests, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(digests);
        if (digests.Count > GatewayProtocol.MaxMissingBatch)
        {
            throw new CairnException(ErrorCode.Usage, $"{digests.Count} digests in one missing-objects request; at most {GatewayProtocol.MaxMissingBatch}",
                "ask in batches");
        }

        var missing = new List<Digest>();
        foreach (var d in digests)
        {
            if (!await _repository.Objects.ContainsAsync(d, ct).ConfigureAwait(false)) missing.Add(d);
        }

        return missing;
    }

    internal async Task PutObjectAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct)
    {
        if (content.Length > _options.MaxObjectSize)
        {
            throw TooLarge(digest, content.Length);
        }

        var actual = Digest.Of(content.Span);
        if (actual != digest)
        {
            throw new CairnException(ErrorCode.GatewayObjectMismatch,
                $"uploaded object {digest} holds {content.Length} bytes whose SHA-256 is {actual}; nothing was stored",
                "upload the object's exact uncompressed content; if the site's own store is damaged, run 'cairn verify --full' there");
        }

        await _uploads.PutAsync(digest, content, ct).ConfigureAwait(false);
    }

    internal CairnException TooLarge(Digest digest, long length) => new(ErrorCode.GatewayObjectTooLarge,
        $"uploaded object {digest} is {length} bytes; this gateway accepts at most {_options.MaxObjectSize}",
        "store large files chunked (cairn does this for files over 1 MiB), or start the gateway with a larger --max-object-size");

    internal async Task<BuildResult> ReportFailureAsync(SiteIdentity identity, BuildResult result, long fencingToken, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(result);
        Names.ValidateBuildKey(result.BuildKey);
        ParseProductPath(result.Product);
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
        var productPath = ProductPath(commit.Platform, commit.Product);
        var extras = ValidateCommit(commit, productPath);

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
        var productPath = ProductPath(commit.Platform, commit.Product);
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

    private static List<(string Path, TreeEntry Entry)> ValidateCommit(ProductCommit commit, string productPath)
    {
        if (commit.Root.Kind != EntryKind.Directory)
        {
            throw Invalid($"the root of {productPath} is a {commit.Root.Kind}, not a directory", "commit the product's directory entry as Root");
        }

        if (!string.Equals(commit.Result.BuildKey, commit.BuildKey, StringComparison.Ordinal))
        {
            throw Invalid($"the commit is for build key {commit.BuildKey} but its result for {commit.Result.BuildKey}", "report the result of the job being committed");
        }

        if (!string.Equals(RepositoryPaths.Normalize(commit.Result.Product), productPath, StringComparison.Ordinal))
        {
            throw Invalid($"the commit is for {productPath} but its result for {commit.Result.Product}", "report the result of the product being committed");
        }

        if (commit.Result.OutputRoot is { } reported && reported != commit.Root.Digest)
        {
            throw Invalid($"the result's output root {reported} is not the committed root {commit.Root.Digest}", "report the root that is committed");
        }

        var extras = new List<(string, TreeEntry)>();
        foreach (var extra in commit.Extras)
        {
            var path = RepositoryPaths.Normalize(extra.Path);
            var first = path.Split('/')[0];
            if (!path.Contains('/', StringComparison.Ordinal) || string.Equals(first, commit.Platform, StringComparison.Ordinal))
            {
                throw Invalid($"extra file '{extra.Path}' is not a path outside the platform directories", "place extra files under modules/ or logs/");
            }

            if (extra.Entry.Kind == EntryKind.Directory)
            {
                throw Invalid($"extra '{extra.Path}' is a directory", "commit extra files one by one");
            }

            extras.Add((path, extra.Entry));
        }

        return extras;
    }

    private static CairnException Invalid(string message, string hint) => new(ErrorCode.GatewayCommitInvalid, message, hint);

    internal static (string Platform, ProductRef Product) ParseProductPath(string productPath)
    {
        var parts = RepositoryPaths.Normalize(productPath ?? "").Split('/');
        if (parts.Length != 3 || !ProductRef.IsValidComponent(parts[1]) || !ProductRef.IsValidComponent(parts[2]))
        {
            throw new CairnException(ErrorCode.Usage, $"'{productPath}' is not a product path", "write PLATFORM/NAME/VERSION, e.g. linux-x86_64/zlib/1.3.1");
        }

        Platforms.Validate(parts[0]);
        return (parts[0], new ProductRef(parts[1], parts[2]));
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
                $"the commit of {ProductPath(commit.Platform, commit.Product)} names objects the gateway does not hold: {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", …" : "")}",
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
