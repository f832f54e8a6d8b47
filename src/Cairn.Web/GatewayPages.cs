using System.Globalization;
using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;

namespace Cairn.Web;

/// <summary>The gateway's pages: builds (claims, results, blocked), sites, the coherence matrix and one key's report.</summary>
internal static class GatewayPages
{
    public const int RecentResults = 100;
    public const int MatrixRowsPerPage = 200;

    /// <summary>Cells on one page of the matrix: with many sites a page has fewer rows, so it stays near 150 KB (50 sites: 30 rows).</summary>
    public const int MatrixCellsPerPage = 1500;

    public static int MatrixRowsFor(int sites) => Math.Clamp(MatrixCellsPerPage / Math.Max(1, sites), 20, MatrixRowsPerPage);

    private static ICoordinationStore Store(PageContext page) => page.Options.Coordination
        ?? throw new CairnException(ErrorCode.Usage, "this page needs the gateway's coordination state", "open the dashboard of cairn gateway; cairn serve shows the repository only");

    public static ResultView ViewOf(BuildResult r) => new(r.BuildKey, r.Site, r.Product, r.Passing ? "passed" : "failed", r.Passing ? null : StackStatus.FailureReason(r),
        r.OutputRoot, r.Checks.Passed, r.Checks.Failed, r.Checks.Skipped, r.Duration.TotalSeconds, r.RecordedAt, r.LogLink, r.Environment);

    public static async Task<object> BuildsAsync(PageContext page, CancellationToken ct)
    {
        Store(page);
        var head = await page.HeadAsync(ct);
        var catalog = await page.CatalogAsync(head, ct);
        var stack = await StackStatus.ComputeAsync(page, catalog, ct);
        var now = page.Now;
        var keyProduct = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var r in stack.Results) keyProduct.TryAdd(r.BuildKey, r.Product);
        foreach (var p in catalog.Products)
        {
            if (p.BuildKey is not null) keyProduct.TryAdd(p.BuildKey, p.PathInRepository);
        }

        var claims = stack.Claims.Select(c => new ClaimView(c.BuildKey, keyProduct.GetValueOrDefault(c.BuildKey), c.Site, c.FencingToken, c.AcquiredAt, c.ExpiresAt,
            (now - c.AcquiredAt).TotalSeconds, (c.ExpiresAt - now).TotalSeconds)).ToList();
        var results = stack.Results.Take(RecentResults).Select(ViewOf).ToList();
        var blocked = stack.BlockedBy.OrderBy(b => b.Key, StringComparer.Ordinal)
            .Select(b => new BlockedView(b.Key, b.Value, stack.Reason.GetValueOrDefault(b.Value) ?? stack.Status[b.Value])).ToList();
        var model = new BuildsView(now, claims, results, blocked);
        var published = catalog.Products.Select(p => p.PathInRepository).ToHashSet(StringComparer.Ordinal);
        return new Page<BuildsView>("Builds", "builds", model, DashboardJson.Default.BuildsView, (html, pg, m) => WriteBuilds(html, pg, m, published), live: true);
    }

    private static void WriteBuilds(HtmlWriter html, PageContext page, BuildsView m, HashSet<string> published)
    {
        html.Element("h1", "Builds");
        html.Open("section", ("id", "live-builds"), ("data-live", "builds"), ("aria-live", "polite"));
        html.Element("h2", $"Building now ({m.Claims.Count})");
        if (m.Claims.Count == 0) html.Element("p", "No site holds a claim.", ("class", "muted"));
        else
        {
            html.Open("table", ("id", "claims")).Open("thead").Open("tr");
            foreach (var h in new[] { "Product", "Site", "Build key", "Elapsed", "Claim expires" }) html.Element("th", h, ("scope", "col"));
            html.Close("tr").Close("thead").Open("tbody");
            foreach (var c in m.Claims)
            {
                html.Open("tr", ("data-key", c.BuildKey)).Element("td", c.Product ?? "(unknown product)").Element("td", c.Site)
                    .Element("td", Short(c.BuildKey), ("class", "mono"))
                    .Element("td", Layout.Span(TimeSpan.FromSeconds(c.ElapsedSeconds)))
                    .Element("td", "in " + Layout.Span(TimeSpan.FromSeconds(Math.Max(0, c.ExpiresInSeconds))) + " (renewed by heartbeats)").Close("tr");
            }

            html.Close("tbody").Close("table");
        }

        html.Element("h2", $"Recent results ({m.Results.Count})");
        WriteResults(html, page, m.Results, published);
        html.Close("section");

        html.Element("h2", $"Blocked ({m.Blocked.Count})");
        if (m.Blocked.Count == 0) html.Element("p", "Nothing is blocked by a failed or missing dependency.", ("class", "muted"));
        else
        {
            html.Open("table", ("id", "blocked")).Open("thead").Open("tr");
            foreach (var h in new[] { "Package", "Blocked by", "Because" }) html.Element("th", h, ("scope", "col"));
            html.Close("tr").Close("thead").Open("tbody");
            foreach (var b in m.Blocked)
            {
                html.Open("tr", ("id", GraphPage.Anchor(b.Product))).Element("td", b.Product).Element("td", b.BlockedBy).Element("td", b.Reason).Close("tr");
            }

            html.Close("tbody").Close("table");
        }

        html.Element("p", "The gateway knows the jobs sites ask for, not the recipes: the queue of runnable jobs is what each site's " +
            "cairn build computes from its recipes (cairn plan shows it).", ("class", "muted"));
    }

    /// <param name="published">Products in the head catalog: only their repository logs can be shown (null: all of them).</param>
    public static void WriteResults(HtmlWriter html, PageContext page, IReadOnlyList<ResultView> results, HashSet<string>? published = null)
    {
        html.Open("table", ("class", "results")).Open("thead").Open("tr");
        foreach (var h in new[] { "When", "Product", "Site", "Verdict", "Why", "Tests", "Duration", "Log" }) html.Element("th", h, ("scope", "col"));
        html.Close("tr").Close("thead").Open("tbody");
        foreach (var r in results)
        {
            html.Open("tr", ("id", r.Verdict == "failed" ? GraphPage.Anchor(r.Product) : null), ("data-verdict", r.Verdict));
            html.Element("td", Layout.Time(r.RecordedAt)).Element("td", r.Product).Element("td", r.Site).Open("td");
            Layout.Badge(html, r.Verdict);
            html.Close("td").Element("td", r.Reason).Element("td", $"{r.Passed}/{r.Failed}/{r.Skipped}")
                .Element("td", Layout.Span(TimeSpan.FromSeconds(r.DurationSeconds))).Open("td");
            LogLink(html, page, r, published);
            html.Close("td").Close("tr");
        }

        html.Close("tbody").Close("table");
    }

    /// <summary>A log in the repository links to the log viewer; an http(s) CI link is linked as is; anything else is shown as text.</summary>
    private static void LogLink(HtmlWriter html, PageContext page, ResultView r, HashSet<string>? published)
    {
        if (r.LogLink is null) return;
        var parts = r.Product.Split('/');
        if (r.LogLink.StartsWith("logs/", StringComparison.Ordinal) && parts.Length == 3 && (published is null || published.Contains(r.Product)))
        {
            html.Link(page.ProductUrl(parts[0], parts[1], parts[2]) + "/log", "log");
        }
        else if (Uri.TryCreate(r.LogLink, UriKind.Absolute, out var u) && u.Scheme is "http" or "https")
        {
            html.Element("a", "log", ("href", u.AbsoluteUri), ("rel", "noopener noreferrer nofollow"));
        }
        else
        {
            html.Element("span", r.LogLink, ("class", "mono"));
        }
    }

    private static string Short(string key) => key.Length > 16 ? key[..16] + "…" : key;

    public static async Task<object> SitesAsync(PageContext page, CancellationToken ct)
    {
        var store = Store(page);
        var sites = await store.ListSitesAsync(ct);
        var results = await page.Site.RecentResultsAsync(store).WaitAsync(ct);
        var claims = await store.ListLiveClaimsAsync(ct);
        var views = new List<SiteView>();
        var bySite = results.ToLookup(r => r.Site, StringComparer.Ordinal);
        foreach (var s in sites)
        {
            var mine = bySite[s.Name].ToList();
            var tokens = (await store.ListTokensAsync(s.Name, ct)).Select(t => new TokenView(t.TokenId, t.Scope, t.CreatedAt, t.RevokedAt)).ToList();
            var failures = mine.Count(r => !r.Passing);
            views.Add(new SiteView(s.Name, s.Capabilities, s.RegisteredAt, s.UpdatedAt, mine.Count > 0 ? mine.Max(r => r.RecordedAt) : null, mine.Count, failures,
                mine.Count == 0 ? 0 : (double)failures / mine.Count, mine.MaxBy(r => r.RecordedAt)?.Environment, claims.Count(c => c.Site == s.Name), tokens));
        }

        return new Page<SitesView>("Sites", "sites", new SitesView(views), DashboardJson.Default.SitesView, (html, pg, m) =>
        {
            html.Element("h1", $"Sites ({m.Sites.Count})");
            foreach (var s in m.Sites)
            {
                html.Open("section", ("aria-labelledby", "site-" + s.Name));
                html.Element("h2", s.Name, ("id", "site-" + s.Name));
                Layout.Facts(html,
                    ("Platform", s.Capabilities.Platform),
                    ("Build environment", s.Capabilities.Environment ?? "none"),
                    ("Labels", s.Capabilities.Labels.Count == 0 ? "none" : string.Join(", ", s.Capabilities.Labels)),
                    ("Registered", Layout.Time(s.RegisteredAt)),
                    ("Last seen", Layout.Ago(pg.Now, s.LastResultAt is { } last && last > s.UpdatedAt ? last : s.UpdatedAt)),
                    ("Building now", s.LiveClaims.ToString(CultureInfo.InvariantCulture)),
                    ("Results", $"{s.Results}, {s.Failures} failed ({s.FailureRate.ToString("P0", CultureInfo.InvariantCulture)})"),
                    ("Environment", s.Environment ?? "no result yet"));
                html.Open("table", ("class", "tokens")).Element("caption", "Tokens (never their secrets)").Open("thead").Open("tr");
                foreach (var h in new[] { "Token id", "Paths", "Channels", "Issued", "Revoked" }) html.Element("th", h, ("scope", "col"));
                if (pg.AntiForgery is not null) html.Element("th", "Action", ("scope", "col"));
                html.Close("tr").Close("thead").Open("tbody");
                foreach (var t in s.Tokens)
                {
                    html.Open("tr").Element("td", t.TokenId, ("class", "mono")).Element("td", string.Join(", ", t.Scope.PathPrefixes))
                        .Element("td", string.Join(", ", t.Scope.Channels)).Element("td", Layout.Time(t.CreatedAt))
                        .Element("td", t.RevokedAt is { } r ? Layout.Time(r) : "");
                    if (pg.AntiForgery is not null)
                    {
                        html.Open("td");
                        if (t.RevokedAt is null) OperatorActions.Form(html, pg, OperatorActions.Revoke, $"Revoke {t.TokenId}", ("token", t.TokenId));
                        html.Close("td");
                    }

                    html.Close("tr");
                }

                html.Close("tbody").Close("table");
                html.Close("section");
            }
        });
    }

    public static async Task<object> MatrixAsync(PageContext page, CancellationToken ct)
    {
        var store = Store(page);
        var sites = (await store.ListSitesAsync(ct)).Select(s => s.Name).Order(StringComparer.Ordinal).ToList();
        var results = await page.Site.RecentResultsAsync(store).WaitAsync(ct);
        var stable = await store.GetChannelPolicyAsync(ChannelPolicy.Stable, ct);
        var rows = new List<MatrixRow>();
        var q = page.Query("q");
        var products = results.GroupBy(r => r.Product, StringComparer.Ordinal)
            .Where(g => q is null || g.Key.Contains(q, StringComparison.OrdinalIgnoreCase))
            .OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
        var rowsPerPage = MatrixRowsFor(sites.Count);
        var pageNumber = (int)Math.Clamp(page.QueryLong("page") ?? 1, 1, Math.Max(1, (products.Count + rowsPerPage - 1) / rowsPerPage));
        // One row per product (a page of them): its newest build key.
        foreach (var group in products.Skip((pageNumber - 1) * rowsPerPage).Take(rowsPerPage))
        {
            var key = group.MaxBy(r => r.RecordedAt)!.BuildKey;
            var report = Coherence.Compute(key, [.. group.Where(r => r.BuildKey == key)]);
            var promotions = await store.GetPromotionsAsync(key, ct);
            var cells = sites.Select(site =>
            {
                var r = report.Results.FirstOrDefault(x => x.Site == site);
                var state = r is null ? "not built"
                    : !r.Passing && report.Results.Any(x => x.Passing) ? "failed here"
                    : !r.Passing ? "failed"
                    : r.OutputRoot == report.ReferenceRoot && report.Disagreements.All(d => d.Site != site) ? "agree"
                    : "differ";
                return new MatrixCell(site, state, r?.OutputRoot);
            }).ToList();
            rows.Add(new MatrixRow(group.Key, key, report.Status.ToString().ToLowerInvariant(), report.AgreeingSites.Count, stable.RequiredAgreeingSites,
                [.. promotions.Select(p => p.Channel)], cells));
        }

        return new Page<MatrixView>("Coherence", "coherence", new MatrixView(sites, q, products.Count, pageNumber, rowsPerPage, rows), DashboardJson.Default.MatrixView, WriteMatrix, live: true);
    }

    private static void WriteMatrix(HtmlWriter html, PageContext page, MatrixView m)
    {
        html.Element("h1", "Coherence across sites");
        html.Element("p", "Each cell is one site's result for the product's newest build key: agree (same output digest as the reference, all checks passing), " +
            "differ (another digest or test outcome), failed here (passes elsewhere), failed, or not built. Promotion to stable needs k of K agreeing sites.", ("class", "muted"));
        html.Open("form", ("class", "filter"), ("method", "get"), ("action", page.Url("/coherence")), ("role", "search"));
        html.Open("label").Text("Product contains").Void("input", ("type", "search"), ("name", "q"), ("value", m.Query ?? "")).Close("label");
        html.Element("button", "Filter", ("type", "submit"));
        html.Close("form");
        html.Open("div", ("id", "live-matrix"), ("data-live", "matrix"));
        html.Open("table", ("class", "matrix"), ("id", "matrix")).Open("thead").Open("tr");
        html.Element("th", "Product", ("scope", "col"));
        foreach (var s in m.Sites) html.Element("th", s, ("scope", "col"));
        html.Element("th", "Status", ("scope", "col")).Element("th", "Stable", ("scope", "col")).Element("th", "Channels", ("scope", "col"));
        html.Close("tr").Close("thead").Open("tbody");
        foreach (var row in m.Rows)
        {
            html.Open("tr", ("data-product", row.Product), ("data-status", row.Status));
            html.Open("th", ("scope", "row")).Link(page.Url("/coherence/" + Uri.EscapeDataString(row.BuildKey)), row.Product).Close("th");
            foreach (var c in row.Cells)
            {
                html.Open("td", ("data-site", c.Site), ("data-state", c.State));
                Layout.Badge(html, c.State switch { "agree" => "agree", "differ" => "differ", "failed here" or "failed" => "failed", _ => "not built" }, c.State);
                html.Close("td");
            }

            html.Open("td");
            Layout.Badge(html, row.Status);
            html.Close("td");
            html.Open("td").Open("meter", ("min", "0"), ("max", row.RequiredForStable.ToString(CultureInfo.InvariantCulture)),
                ("value", Math.Min(row.Agreeing, row.RequiredForStable).ToString(CultureInfo.InvariantCulture)), ("aria-label", $"{row.Product}: agreeing sites toward stable")).Close("meter");
            html.Text($" {row.Agreeing} of {row.RequiredForStable}").Close("td");
            html.Element("td", string.Join(", ", row.PromotedTo));
            html.Close("tr");
        }

        html.Close("tbody").Close("table").Close("div");
        RepositoryPages.Pager(html, page, m.Page, m.Page * m.PageSize < m.Total);
    }

    public static async Task<object> CoherenceAsync(PageContext page, string buildKey, CancellationToken ct)
    {
        Store(page);
        var coherence = page.Options.CoherenceOf is { } of
            ? await of(buildKey, ct)
            : new GatewayCoherence(await Store(page).GetCoherenceAsync(buildKey, ct), [], await Store(page).GetPromotionsAsync(buildKey, ct));
        if (coherence.Report.Status == CoherenceStatus.NoResults)
        {
            throw new CairnException(ErrorCode.ProductNotFound, $"no site has reported build key {buildKey}", "pick a row of the coherence matrix");
        }

        var product = coherence.Report.Results[0].Product;
        var head = await page.HeadAsync(ct);
        var published = (await page.CatalogAsync(head, ct)).Products.Select(p => p.PathInRepository).ToHashSet(StringComparer.Ordinal);
        return new Page<GatewayCoherence>($"Coherence of {product}", "coherence", coherence, DashboardJson.Default.GatewayCoherence, (html, pg, c) =>
        {
            var r = c.Report;
            html.Element("h1", $"Coherence of {product}");
            Layout.Facts(html, ("Build key", r.BuildKey), ("Status", r.Status.ToString()), ("Reference output", r.ReferenceRoot?.ToString() ?? "none"),
                ("Agreeing sites", r.AgreeingSites.Count == 0 ? "none" : string.Join(", ", r.AgreeingSites)),
                ("Promoted to", c.Promotions.Count == 0 ? "no channel yet" : string.Join(", ", c.Promotions.Select(p => $"{p.Channel} ({Layout.Time(p.PromotedAt)})"))));
            if (pg.AntiForgery is not null)
            {
                html.Open("div", ("class", "actions"), ("id", "operator-actions"));
                if (c.Promotions.All(p => p.Channel != ChannelPolicy.Stable)) OperatorActions.Form(html, pg, OperatorActions.Promote, "Promote to stable", ("key", r.BuildKey), ("channel", ChannelPolicy.Stable));
                if (r.Results.Any(x => !x.Passing)) OperatorActions.Form(html, pg, OperatorActions.Rerun, "Re-run (forget the failed results)", ("key", r.BuildKey));
                html.Close("div");
            }

            html.Element("h2", "Results");
            WriteResults(html, pg, [.. r.Results.Select(ViewOf)], published);
            if (r.Disagreements.Count > 0)
            {
                html.Element("h2", "Disagreements");
                html.Open("ul", ("id", "disagreements"));
                foreach (var d in r.Disagreements) html.Element("li", $"{d.Site}: {d.Reason} (environment: {d.Environment})");
                html.Close("ul");
            }

            if (r.TestDifferences.Count > 0)
            {
                html.Element("h2", "Tests whose outcome differs");
                html.Open("table", ("id", "test-differences")).Open("thead").Open("tr").Element("th", "Test", ("scope", "col"));
                var sites = r.Results.Select(x => x.Site).ToList();
                foreach (var s in sites) html.Element("th", s, ("scope", "col"));
                html.Close("tr").Close("thead").Open("tbody");
                foreach (var t in r.TestDifferences)
                {
                    html.Open("tr").Element("td", t.Test);
                    foreach (var s in sites) html.Element("td", t.BySite.TryGetValue(s, out var o) ? o.ToString().ToLowerInvariant() : "");
                    html.Close("tr");
                }

                html.Close("tbody").Close("table");
            }

            foreach (var f in c.Files)
            {
                html.Element("h2", $"Files that differ on {f.Site}" + (f.Truncated ? " (list truncated)" : ""));
                foreach (var d in f.Files)
                {
                    html.Element("h3", $"{d.Path}: {d.Kind}");
                    if (d.TextDiff is not null) html.Element("pre", d.TextDiff, ("class", "file"));
                }
            }
        });
    }
}
