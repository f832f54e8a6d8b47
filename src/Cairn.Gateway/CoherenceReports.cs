using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Repository;
using Microsoft.Extensions.Logging;

namespace Cairn.Gateway;

/// <summary>Coherence reports: the sites' results for a build key, the files where their trees differ, and promotions.</summary>
internal sealed class CoherenceReports(ICoordinationStore store, WritableRepository repository, GatewayOptions options, ILogger log)
{
    public async Task<GatewayCoherence> GetAsync(string buildKey, CancellationToken ct)
    {
        Names.ValidateBuildKey(buildKey);
        var report = await store.GetCoherenceAsync(buildKey, ct).ConfigureAwait(false);
        var files = new List<SiteFileDifferences>();
        if (report.ReferenceRoot is { } reference)
        {
            foreach (var d in report.Disagreements)
            {
                if (d.OutputRoot is not { } other || other == reference) continue;
                files.Add(await DiffAsync(d.Site, reference, other, ct).ConfigureAwait(false));
            }
        }

        var promotions = await store.GetPromotionsAsync(buildKey, ct).ConfigureAwait(false);
        return new GatewayCoherence(report, files, promotions);
    }

    /// <summary>
    /// Coherence of every build key the gateway knows for a product: the keys in the commit audit (publishes and
    /// confirmations) and the key the head catalog records.
    /// </summary>
    public async Task<IReadOnlyList<GatewayCoherence>> FindAsync(string? product, CancellationToken ct)
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
            var page = await store.ListCommitsAsync(after, 1000, ct).ConfigureAwait(false);
            if (page.Count == 0) break;
            foreach (var c in page)
            {
                if (c.Commit is { BuildKey: { } key, Paths: [var first, ..] } && Matches(first)) Add(key);
            }

            after = page[^1].Id;
        }

        var head = await repository.HeadAsync(ct).ConfigureAwait(false);
        var catalog = await repository.CatalogAsync(head, ct).ConfigureAwait(false);
        foreach (var p in catalog.Products)
        {
            if (Matches($"{p.Platform}/{p.Name}/{p.Version}")) Add(p.BuildKey);
        }

        var result = new List<GatewayCoherence>();
        foreach (var key in keys)
        {
            var c = await GetAsync(key, ct).ConfigureAwait(false);
            if (c.Report.Status != CoherenceStatus.NoResults) result.Add(c);
        }

        return result;
    }

    private async Task<SiteFileDifferences> DiffAsync(string site, Digest reference, Digest other, CancellationToken ct)
    {
        try
        {
            var diff = await TreeDiff.CompareAsync(repository.Trees, reference, repository.Trees, other,
                new TreeDiffOptions { MaxFiles = options.MaxFileDifferences }, ct).ConfigureAwait(false);
            return new SiteFileDifferences(site, other, diff.Files, diff.Truncated);
        }
        catch (CairnException e) when (e.Code is ErrorCode.ObjectMissing)
        {
            // A tree collected by gc (a confirmation whose objects were never committed): say so, hide nothing else.
            log.LogWarning("coherence: cannot compare {Site}'s tree {Root}: {Message}", site, other, e.Message);
            return new SiteFileDifferences(site, other, [], true);
        }
    }
}
