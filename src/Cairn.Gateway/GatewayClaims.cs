using System.Collections.Concurrent;
using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Gateway;

/// <summary>
/// Jobs and their claims: whether a site should build, confirm or leave a build key, the claim with its fencing
/// token, heartbeats and release (docs/coordination.md, "Claims").
/// </summary>
internal sealed class GatewayClaims(ICoordinationStore store, WritableRepository repository, GatewayOptions options)
{
    // A heartbeat extends a claim by the TTL it was granted with; the store keeps only the expiry.
    private readonly ConcurrentDictionary<long, TimeSpan> _claimTtls = new();

    public async Task<JobOffer> RequestJobAsync(SiteIdentity identity, JobRequest job, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(job);
        Names.ValidateBuildKey(job.BuildKey);
        Names.ValidateTtl(job.ClaimTtl);
        var (platform, product) = CommitRules.ParseProductPath(job.Product);
        identity.AuthorizePaths([job.Product]);

        var head = await repository.HeadAsync(ct).ConfigureAwait(false);
        var catalog = await repository.CatalogAsync(head, ct).ConfigureAwait(false);
        var published = catalog.Find(platform, product);
        if (published is not null && string.Equals(published.BuildKey, job.BuildKey, StringComparison.Ordinal))
        {
            var report = await store.GetCoherenceAsync(job.BuildKey, ct).ConfigureAwait(false);
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
                var again = await store.GetCoherenceAsync(job.BuildKey, ct).ConfigureAwait(false);
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
        var result = await store.TryClaimAsync(job.BuildKey, identity.Site, job.ClaimTtl, job.Requirements ?? new JobRequirements(platform), ct).ConfigureAwait(false);
        if (result.Granted) _claimTtls[result.Claim.FencingToken] = job.ClaimTtl;
        return result;
    }

    /// <summary>The most agreeing sites any default channel wants for a key not yet promoted there.</summary>
    private async Task<int> AgreeingSitesWantedAsync(string buildKey, CancellationToken ct)
    {
        var promoted = (await store.GetPromotionsAsync(buildKey, ct).ConfigureAwait(false)).Select(p => p.Channel).ToHashSet(StringComparer.Ordinal);
        var wanted = 1;
        foreach (var channel in new[] { ChannelPolicy.Testing, ChannelPolicy.Stable })
        {
            if (promoted.Contains(channel)) continue;
            wanted = Math.Max(wanted, (await store.GetChannelPolicyAsync(channel, ct).ConfigureAwait(false)).RequiredAgreeingSites);
        }

        return wanted;
    }

    public async Task<Claim> HeartbeatAsync(SiteIdentity identity, string buildKey, long fencingToken, CancellationToken ct)
    {
        if (!_claimTtls.TryGetValue(fencingToken, out var ttl))
        {
            ttl = options.DefaultClaimTtl;
        }

        return await store.HeartbeatAsync(buildKey, identity.Site, fencingToken, ttl, ct).ConfigureAwait(false);
    }

    public async Task<bool> ReleaseAsync(SiteIdentity identity, string buildKey, long fencingToken, CancellationToken ct)
    {
        var released = await store.ReleaseAsync(buildKey, identity.Site, fencingToken, ct).ConfigureAwait(false);
        _claimTtls.TryRemove(fencingToken, out _);
        return released;
    }
}
