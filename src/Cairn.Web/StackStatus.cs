using Cairn.Coordination;
using Cairn.Core;

namespace Cairn.Web;

/// <summary>
/// The status of every package of the stack, from what the server knows (docs/dashboard.md, "Statuses"):
/// <c>up to date</c> (published), <c>building</c> (a site holds a live claim on its build key), <c>failed</c> (the newest
/// build key reported for it passes on no site and is not published), <c>not built</c> (a dependency nothing has
/// published or reported), <c>blocked</c> (not failed itself, but something it depends on is failed or not built).
/// cairn serve knows only the catalog; the gateway adds claims and results.
/// </summary>
internal sealed record StackStatus(
    IReadOnlyList<string> Nodes,
    IReadOnlyDictionary<string, IReadOnlyList<string>> Dependencies,
    IReadOnlyDictionary<string, string> Status,
    IReadOnlyDictionary<string, string> Reason,
    IReadOnlyDictionary<string, string> BlockedBy,
    IReadOnlyList<Claim> Claims,
    IReadOnlyList<BuildResult> Results)
{
    public const string UpToDate = "up to date";
    public const string Building = "building";
    public const string Failed = "failed";
    public const string Blocked = "blocked";
    public const string NotBuilt = "not built";

    public static readonly string[] All = [UpToDate, Building, Failed, Blocked, NotBuilt];

    public const int ResultsConsidered = 20_000;

    public static async Task<StackStatus> ComputeAsync(PageContext page, Catalog catalog, CancellationToken ct)
    {
        IReadOnlyList<Claim> claims = [];
        IReadOnlyList<BuildResult> results = [];
        if (page.Options.Coordination is { } store)
        {
            claims = await store.ListLiveClaimsAsync(ct);
            results = await page.Site.RecentResultsAsync(store).WaitAsync(ct);
        }

        return Compute(catalog, claims, results);
    }

    public static StackStatus Compute(Catalog catalog, IReadOnlyList<Claim> claims, IReadOnlyList<BuildResult> results)
    {
        var deps = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        var status = new Dictionary<string, string>(StringComparer.Ordinal);
        var reason = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in catalog.Products)
        {
            deps[p.PathInRepository] = [.. p.Dependencies.Select(d => $"{p.Platform}/{d}")];
            status[p.PathInRepository] = UpToDate;
        }

        // The newest build key reported for each product, and whether any site passed it.
        var byPath = catalog.Products.ToDictionary(p => p.PathInRepository, StringComparer.Ordinal);
        var keyProduct = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var group in results.GroupBy(r => r.Product, StringComparer.Ordinal))
        {
            var newest = group.MaxBy(r => r.RecordedAt)!;
            foreach (var r in group) keyProduct.TryAdd(r.BuildKey, r.Product);
            var ofKey = group.Where(r => r.BuildKey == newest.BuildKey).ToList();
            var published = byPath.GetValueOrDefault(group.Key);
            if (published?.BuildKey == newest.BuildKey || ofKey.Any(r => r.Passing)) continue;
            status[group.Key] = Failed;
            reason[group.Key] = string.Join("; ", ofKey.Select(r => $"{r.Site}: {FailureReason(r)}"));
            if (!deps.ContainsKey(group.Key)) deps[group.Key] = [];
        }

        foreach (var p in catalog.Products)
        {
            if (p.BuildKey is not null) keyProduct.TryAdd(p.BuildKey, p.PathInRepository);
        }

        foreach (var c in claims)
        {
            if (!keyProduct.TryGetValue(c.BuildKey, out var product)) continue;
            status[product] = Building;
            reason[product] = $"site {c.Site} claimed it {c.AcquiredAt:O}";
            if (!deps.ContainsKey(product)) deps[product] = [];
        }

        foreach (var d in deps.Values.SelectMany(d => d).ToList())
        {
            if (!status.ContainsKey(d))
            {
                status[d] = NotBuilt;
                reason[d] = "neither published nor reported by any site";
                deps[d] = [];
            }
        }

        // Blocked: whatever depends, directly or not, on a failed or missing package (and is not failing itself).
        var dependants = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var (node, ds) in deps)
        {
            foreach (var d in ds)
            {
                if (!dependants.TryGetValue(d, out var list)) dependants[d] = list = [];
                list.Add(node);
            }
        }

        var blockedBy = new Dictionary<string, string>(StringComparer.Ordinal);
        var queue = new Queue<(string Node, string Root)>(status.Where(s => s.Value is Failed or NotBuilt).Select(s => (s.Key, s.Key)).OrderBy(x => x.Item1, StringComparer.Ordinal));
        while (queue.Count > 0)
        {
            var (node, root) = queue.Dequeue();
            foreach (var dependant in dependants.GetValueOrDefault(node) ?? [])
            {
                if (status[dependant] is Failed or NotBuilt or Building || blockedBy.ContainsKey(dependant)) continue;
                status[dependant] = Blocked;
                blockedBy[dependant] = root;
                reason[dependant] = $"depends on {root} ({status[root]})";
                queue.Enqueue((dependant, root));
            }
        }

        var nodes = deps.Keys.Order(StringComparer.Ordinal).ToList();
        return new StackStatus(nodes, deps, status, reason, blockedBy, claims, results);
    }

    public static string FailureReason(BuildResult r)
    {
        var reasons = new List<string>();
        if (r.OutputRoot is null) reasons.Add("the build produced no output");
        if (r.Checks.Failed > 0)
        {
            var failedTests = (r.Checks.Tests ?? []).Where(t => t.Outcome == TestOutcome.Failed).Select(t => t.Message is null ? t.Name : $"{t.Name} ({t.Message})").ToList();
            reasons.Add(failedTests.Count > 0 ? $"{r.Checks.Failed} check(s) failed: {string.Join(", ", failedTests)}" : $"{r.Checks.Failed} check(s) failed");
        }

        return reasons.Count == 0 ? "passed" : string.Join("; ", reasons);
    }
}
