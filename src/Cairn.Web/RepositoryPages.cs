using System.Text;
using System.Xml;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Web;

/// <summary>The pages of the repository itself: products, one product, its files and log, revisions and their diff.</summary>
internal static class RepositoryPages
{
    public const int ProductsPerPage = 200;
    public const int LogLinesPerPage = 1000;
    public const int MaxLineChars = 4000;
    public const int MaxTextFileBytes = 256 * 1024;
    public const int RevisionsScanned = 32;
    public const int RevisionsPerPage = 100;
    public const int MaxSearchHits = 500;

    // ---- products

    public static async Task<object> ProductsAsync(PageContext page, CancellationToken ct)
    {
        var manifest = await page.SelectedRevisionAsync(ct);
        var head = await page.HeadAsync(ct);
        var catalog = await page.CatalogAsync(manifest, ct);
        var q = page.Query("q");
        var platform = page.Query("platform");
        var matching = catalog.Products
            .Where(p => platform is null || p.Platform == platform)
            .Where(p => q is null || $"{p.Name}/{p.Version}".Contains(q, StringComparison.OrdinalIgnoreCase))
            .ToList();
        var pageNumber = (int)Math.Clamp(page.QueryLong("page") ?? 1, 1, Math.Max(1, (matching.Count + ProductsPerPage - 1) / ProductsPerPage));
        var shown = matching.Skip((pageNumber - 1) * ProductsPerPage).Take(ProductsPerPage).ToList();
        var model = new ProductsView(manifest.Repository, manifest.Revision, page.Query("tag"), q, platform,
            [.. catalog.Products.Select(p => p.Platform).Distinct().Order(StringComparer.Ordinal)], head.Tags, matching.Count, pageNumber, ProductsPerPage, shown);
        return new Page<ProductsView>("Products", "products", model, DashboardJson.Default.ProductsView, WriteProducts);
    }

    private static void WriteProducts(HtmlWriter html, PageContext page, ProductsView m)
    {
        html.Element("h1", $"Products in revision {m.Revision}" + (m.Tag is null ? "" : $" (tag {m.Tag})"));
        html.Open("form", ("class", "filter"), ("method", "get"), ("action", page.Url("/")), ("role", "search"));
        html.Open("label").Text("Name contains").Void("input", ("type", "search"), ("name", "q"), ("value", m.Query ?? "")).Close("label");
        html.Open("label").Text("Platform").Open("select", ("name", "platform"));
        html.Element("option", "any", ("value", ""));
        foreach (var p in m.Platforms) html.Element("option", p, ("value", p), ("selected", p == m.Platform ? "selected" : null));
        html.Close("select").Close("label");
        html.Open("label").Text("Channel (tag)").Open("select", ("name", "tag"));
        html.Element("option", "head", ("value", ""));
        foreach (var (tag, rev) in m.Tags.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            html.Element("option", $"{tag} (revision {rev})", ("value", tag), ("selected", tag == m.Tag ? "selected" : null));
        }

        html.Close("select").Close("label");
        html.Element("button", "Filter", ("type", "submit"));
        html.Close("form");
        html.Element("p", $"{m.Total} product(s)" + (m.Total > m.PageSize ? $", page {m.Page}" : ""), ("class", "muted"));
        html.Open("table", ("id", "products"));
        html.Open("thead").Open("tr");
        foreach (var h in new[] { "Product", "Platform", "Size", "Files", "Tests", "Published", "By" }) html.Element("th", h, ("scope", "col"), ("class", h is "Size" or "Files" ? "num" : null));
        html.Close("tr").Close("thead").Open("tbody");
        foreach (var p in m.Products)
        {
            html.Open("tr", ("data-product", p.PathInRepository));
            html.Open("td").Link(page.ProductUrl(p), $"{p.Name}/{p.Version}").Close("td");
            html.Element("td", p.Platform);
            html.Element("td", Layout.Size(p.Size), ("class", "num"));
            html.Element("td", p.Files.ToString(System.Globalization.CultureInfo.InvariantCulture), ("class", "num"));
            html.Open("td");
            Layout.Tests(html, p.Tests);
            html.Close("td");
            html.Element("td", Layout.Time(p.PublishedAt));
            html.Element("td", p.PublishedBy);
            html.Close("tr");
        }

        html.Close("tbody").Close("table");
        Pager(html, page, m.Page, m.Page * m.PageSize < m.Total);
    }

    internal static void Pager(HtmlWriter html, PageContext page, long current, bool hasNext, string fragment = "")
    {
        if (current <= 1 && !hasNext) return;
        html.Open("nav", ("class", "pager"), ("aria-label", "Pages"));
        if (current > 1) html.Link(WithQuery(page, "page", (current - 1).ToString(System.Globalization.CultureInfo.InvariantCulture)) + fragment, "← previous page");
        html.Element("span", $"page {current}");
        if (hasNext) html.Link(WithQuery(page, "page", (current + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)) + fragment, "next page →");
        html.Close("nav");
    }

    private static string WithQuery(PageContext page, string name, string value)
    {
        var query = page.Http.Request.Query.Where(q => q.Key != name).Select(q => (q.Key, q.Value.ToString())).Append((name, value));
        return page.Base + page.Http.Request.Path.Value![Dashboard.Root.Length..] + "?" +
            string.Join("&", query.Select(q => Uri.EscapeDataString(q.Item1) + "=" + Uri.EscapeDataString(q.Item2)));
    }

    // ---- one product

    public static async Task<ProductRecord> FindAsync(PageContext page, Manifest manifest, string platform, string name, string version, CancellationToken ct)
    {
        var catalog = await page.CatalogAsync(manifest, ct);
        return catalog.Products.FirstOrDefault(p => p.Platform == platform && p.Name == name && p.Version == version)
            ?? throw new CairnException(ErrorCode.ProductNotFound, $"{platform}/{name}/{version} is not in revision {manifest.Revision}",
                "pick a product from the products list (or choose another revision)");
    }

    public static async Task<object> ProductAsync(PageContext page, string platform, string name, string version, CancellationToken ct)
    {
        var manifest = await page.SelectedRevisionAsync(ct);
        var catalog = await page.CatalogAsync(manifest, ct);
        var product = await FindAsync(page, manifest, platform, name, version, ct);
        var repo = page.Options.Repository;
        var deps = product.Dependencies.Select(d =>
        {
            var published = ProductRefOrNull(d) is { } r && catalog.Find(platform, r) is not null;
            return new DependencyLink(d, published);
        }).ToList();
        var self = $"{name}/{version}";
        var dependants = catalog.Products.Where(p => p.Platform == platform && p.Dependencies.Contains(self, StringComparer.Ordinal)).Select(p => $"{p.Name}/{p.Version}").ToList();

        var modulePath = $"modules/{platform}/{name}/{version}";
        var module = await ReadSmallTextAsync(page, manifest.Root, modulePath, ct);

        var testCases = new List<TestCaseView>();
        var junitDir = $"logs/{platform}/{name}/{version}/junit";
        if (await repo.Trees.LookupAsync(manifest.Root, junitDir, ct) is { Kind: EntryKind.Directory } junit)
        {
            foreach (var entry in await repo.Trees.ReadTreeAsync(junit.Digest, ct))
            {
                if (!entry.IsFile || entry.Size > 4 << 20) continue;
                var bytes = await ReadBytesAsync(repo, entry, ct);
                testCases.AddRange(JUnit.Parse(bytes, entry.Name));
                if (testCases.Count > 5000) break;
            }
        }

        // Which kept revisions hold this NAME/VERSION (newest first), and whether it is this very build.
        var mentions = new List<RevisionMention>();
        var head = await page.HeadAsync(ct);
        var recent = await page.RevisionsDownFromAsync(head.Revision, RevisionsScanned, RevisionsScanned * 4L, ct);
        foreach (var r in recent)
        {
            var c = await page.CatalogAsync(r, ct);
            if (c.Find(platform, new ProductRef(name, version)) is { } there)
            {
                var tags = head.Tags.Where(t => t.Value == r.Revision).Select(t => t.Key).Order(StringComparer.Ordinal).ToList();
                mentions.Add(new RevisionMention(r.Revision, r.Timestamp, there.Root, there.BuildKey, there.Root == product.Root, tags));
            }
        }

        IReadOnlyList<Cairn.Coordination.BuildResult>? results = null;
        if (page.Options.Coordination is { } store && product.BuildKey is { } key)
        {
            results = await store.GetResultsAsync(key, ct);
        }

        var provenance = await ProvenancePanel.ReadAsync(page, manifest, product, ct);
        var model = new ProductView(manifest.Revision, product, deps, dependants, module is null ? null : modulePath, module, testCases, mentions, recent.Count, results, provenance);
        return new Page<ProductView>($"{name}/{version}", "products", model, DashboardJson.Default.ProductView, WriteProduct);
    }

    private static ProductRef? ProductRefOrNull(string text)
    {
        try
        {
            return ProductRef.Parse(text);
        }
        catch (CairnException)
        {
            return null;
        }
    }

    private static void WriteProduct(HtmlWriter html, PageContext page, ProductView m)
    {
        var p = m.Product;
        html.Element("h1", $"{p.Name}/{p.Version}");
        Layout.Facts(html,
            ("Platform", p.Platform),
            ("Revision", m.Revision.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("Size", $"{Layout.Size(p.Size)} in {p.Files} file(s)"),
            ("Root", p.Root.ToString()),
            ("Build key", p.BuildKey ?? "none (published by hand)"),
            ("Published", $"{Layout.Time(p.PublishedAt)} by {p.PublishedBy}"),
            ("Tests", p.Tests is null ? "none recorded" : $"{p.Tests.Passed} passed, {p.Tests.Failed} failed, {p.Tests.Skipped} skipped" + (p.Tests.Report is null ? "" : $" ({p.Tests.Report})")));
        html.Open("p");
        html.Link(page.ProductUrl(p) + "/files/", "Browse files");
        if (p.Log is not null)
        {
            html.Text(" · ");
            html.Link(page.ProductUrl(p) + "/log", "Build log");
        }

        html.Text(" · ");
        html.Link(page.Url("/graph?product=" + Uri.EscapeDataString(p.PathInRepository)), "Dependency graph");
        if (page.IsGateway && p.BuildKey is not null)
        {
            html.Text(" · ");
            html.Link(page.Url("/coherence/" + Uri.EscapeDataString(p.BuildKey)), "Coherence across sites");
        }

        html.Close("p");

        html.Element("h2", "Dependencies");
        if (m.Dependencies.Count == 0) html.Element("p", "none", ("class", "muted"));
        else
        {
            html.Open("ul");
            foreach (var d in m.Dependencies)
            {
                html.Open("li");
                var slash = d.Product.IndexOf('/', StringComparison.Ordinal);
                if (d.Published && slash > 0) html.Link(page.ProductUrl(p.Platform, d.Product[..slash], d.Product[(slash + 1)..]), d.Product);
                else html.Text(d.Product).Text(" ").Element("span", "(not published)", ("class", "muted"));
                html.Close("li");
            }

            html.Close("ul");
        }

        html.Element("h2", "Dependants");
        if (m.Dependants.Count == 0) html.Element("p", "none", ("class", "muted"));
        else
        {
            html.Open("ul");
            foreach (var d in m.Dependants)
            {
                var slash = d.IndexOf('/', StringComparison.Ordinal);
                html.Open("li").Link(page.ProductUrl(p.Platform, d[..slash], d[(slash + 1)..]), d).Close("li");
            }

            html.Close("ul");
        }

        if (m.TestCases.Count > 0)
        {
            html.Element("h2", $"Tests ({m.TestCases.Count} JUnit cases)");
            html.Open("table", ("id", "tests")).Open("thead").Open("tr");
            foreach (var h in new[] { "Suite", "Test", "Outcome", "Message" }) html.Element("th", h, ("scope", "col"));
            html.Close("tr").Close("thead").Open("tbody");
            foreach (var t in m.TestCases)
            {
                html.Open("tr").Element("td", t.Suite).Element("td", t.Name).Open("td");
                Layout.Badge(html, t.Outcome);
                html.Close("td").Element("td", t.Message).Close("tr");
            }

            html.Close("tbody").Close("table");
        }

        if (m.Results is { Count: > 0 } results)
        {
            html.Element("h2", "Results by site");
            GatewayPages.WriteResults(html, page, [.. results.Select(GatewayPages.ViewOf)]);
        }

        ProvenancePanel.Write(html, page, m.Provenance);

        html.Element("h2", "Modulefile");
        if (m.Modulefile is null) html.Element("p", "none in this revision", ("class", "muted"));
        else html.Element("p", m.ModulefilePath, ("class", "mono muted")).Element("pre", m.Modulefile, ("class", "file"));

        html.Element("h2", "History: revisions holding " + $"{p.Name}/{p.Version}");
        if (p.Replaced is { Count: > 0 } replaced)
        {
            html.Open("ul");
            foreach (var r in replaced) html.Element("li", $"{Layout.Time(r.At)}: replaced {r.PreviousRoot.ToString()[..12]}… by {r.By}" + (r.Reason is null ? "" : $": {r.Reason}"));
            html.Close("ul");
        }

        html.Open("table", ("id", "revisions")).Open("thead").Open("tr");
        foreach (var h in new[] { "Revision", "When", "Root", "Build key", "Tags" }) html.Element("th", h, ("scope", "col"));
        html.Close("tr").Close("thead").Open("tbody");
        foreach (var r in m.Revisions)
        {
            html.Open("tr").Open("td").Link(page.ProductUrl(p) + "?rev=" + r.Revision.ToString(System.Globalization.CultureInfo.InvariantCulture), r.Revision.ToString(System.Globalization.CultureInfo.InvariantCulture)).Close("td");
            html.Element("td", Layout.Time(r.Timestamp));
            html.Element("td", r.Root.ToString()[..16] + (r.SameRoot ? " (this build)" : ""), ("class", "mono"));
            html.Element("td", r.BuildKey is null ? "" : r.BuildKey[..Math.Min(16, r.BuildKey.Length)], ("class", "mono"));
            html.Element("td", string.Join(", ", r.Tags));
            html.Close("tr");
        }

        html.Close("tbody").Close("table");
        html.Element("p", $"The {m.RevisionsScanned} newest kept revisions were searched.", ("class", "muted"));
    }

    // ---- files

    public static async Task<object> FilesAsync(PageContext page, string platform, string name, string version, string path, CancellationToken ct)
    {
        var manifest = await page.SelectedRevisionAsync(ct);
        var product = await FindAsync(page, manifest, platform, name, version, ct);
        var repo = page.Options.Repository;
        path = path.Trim('/');
        var entry = path.Length == 0 ? TreeEntry.Dir("", 0, product.Root) : await repo.Trees.LookupAsync(product.Root, path, ct)
            ?? throw new CairnException(ErrorCode.InvalidPath, $"{path} is not in {product.PathInRepository}", "browse from the product's file list");
        FilesView model;
        if (entry.Kind == EntryKind.Directory)
        {
            var entries = (await repo.Trees.ReadTreeAsync(entry.Digest, ct))
                .Select(e => new FileEntryView(e.Name, KindName(e.Kind), e.Size, e.Executable, e.Target)).ToList();
            model = new FilesView(product.PathInRepository, path, "directory", entry.Size, entries, null, null);
        }
        else if (entry.Kind == EntryKind.Symlink)
        {
            model = new FilesView(product.PathInRepository, path, "symlink", 0, null, null, "a symbolic link to " + entry.Target);
        }
        else if (entry.Size > MaxTextFileBytes)
        {
            model = new FilesView(product.PathInRepository, path, "file", entry.Size, null, null,
                $"{Layout.Size(entry.Size)} is larger than the {Layout.Size(MaxTextFileBytes)} shown here: use cairn materialize or mount");
        }
        else
        {
            var text = TreeDiff.DecodeText(await ReadBytesAsync(repo, entry, ct));
            model = new FilesView(product.PathInRepository, path, "file", entry.Size, null, text, text is null ? "a binary file" : null);
        }

        return new Page<FilesView>(path.Length == 0 ? $"{name}/{version} files" : path, "products", model, DashboardJson.Default.FilesView, (html, pg, m) => WriteFiles(html, pg, product, m));
    }

    private static string KindName(EntryKind kind) => kind switch
    {
        EntryKind.Directory => "directory",
        EntryKind.Symlink => "symlink",
        _ => "file",
    };

    private static void WriteFiles(HtmlWriter html, PageContext page, ProductRecord product, FilesView m)
    {
        var baseUrl = page.ProductUrl(product) + "/files/";
        html.Open("nav", ("aria-label", "Breadcrumb")).Open("p");
        html.Link(page.ProductUrl(product), $"{product.Name}/{product.Version}");
        var parts = m.Path.Length == 0 ? [] : m.Path.Split('/');
        html.Text(" / ").Link(baseUrl, "files");
        for (var i = 0; i < parts.Length; i++)
        {
            html.Text(" / ").Link(baseUrl + string.Join('/', parts.Take(i + 1).Select(Uri.EscapeDataString)), parts[i]);
        }

        html.Close("p").Close("nav");
        html.Element("h1", m.Path.Length == 0 ? "Files" : parts[^1]);
        if (m.Entries is { } entries)
        {
            html.Open("table", ("id", "files")).Open("thead").Open("tr");
            foreach (var h in new[] { "Name", "Kind", "Size" }) html.Element("th", h, ("scope", "col"), ("class", h == "Size" ? "num" : null));
            html.Close("tr").Close("thead").Open("tbody");
            var here = m.Path.Length == 0 ? "" : string.Join('/', parts.Select(Uri.EscapeDataString)) + "/";
            foreach (var e in entries)
            {
                html.Open("tr").Open("td").Link(baseUrl + here + Uri.EscapeDataString(e.Name), e.Name + (e.Kind == "directory" ? "/" : "")).Close("td");
                html.Element("td", e.Kind + (e.Executable ? " (executable)" : "") + (e.Target is null ? "" : " → " + e.Target));
                html.Element("td", e.Kind == "file" ? Layout.Size(e.Size) : "", ("class", "num"));
                html.Close("tr");
            }

            html.Close("tbody").Close("table");
        }
        else if (m.Text is not null)
        {
            html.Element("p", Layout.Size(m.Size), ("class", "muted"));
            html.Element("pre", m.Text, ("class", "file"));
        }
        else
        {
            html.Element("p", m.NotShown, ("class", "muted"));
        }
    }

    // ---- build log

    public static async Task<object> LogAsync(PageContext page, string platform, string name, string version, CancellationToken ct)
    {
        var manifest = await page.SelectedRevisionAsync(ct);
        var product = await FindAsync(page, manifest, platform, name, version, ct);
        var repo = page.Options.Repository;
        var logPath = product.Log ?? throw new CairnException(ErrorCode.InvalidPath, $"{product.PathInRepository} has no build log (it was published, not built)", "see the product page");
        var entry = await repo.Trees.LookupAsync(manifest.Root, logPath, ct);
        if (entry is not { IsFile: true })
        {
            throw new CairnException(ErrorCode.InvalidPath, $"the log {logPath} is missing from revision {manifest.Revision}", "run 'cairn verify'");
        }

        var search = page.Query("q");
        var pageNumber = Math.Max(1, page.QueryLong("page") ?? 1);
        var lines = new List<LogLine>();
        var hasNext = false;
        var truncated = false;
        var first = (pageNumber - 1) * LogLinesPerPage + 1;
        var sink = new LineSink((number, text, omitted) =>
        {
            if (search is not null)
            {
                if (!text.Contains(search, StringComparison.OrdinalIgnoreCase)) return true;
                if (lines.Count >= MaxSearchHits)
                {
                    truncated = true;
                    return false;
                }

                lines.Add(new LogLine(number, text, omitted));
                return true;
            }

            if (number < first) return true;
            if (number >= first + LogLinesPerPage)
            {
                hasNext = true;
                return false;
            }

            lines.Add(new LogLine(number, text, omitted));
            return true;
        });
        await sink.ReadAsync(repo.Trees, entry, ct);
        var model = new LogView(product.PathInRepository, logPath, entry.Size, search is null ? pageNumber : 1, LogLinesPerPage, hasNext, search, lines, truncated);
        return new Page<LogView>($"{name}/{version} build log", "products", model, DashboardJson.Default.LogView, (html, pg, m) => WriteLog(html, pg, product, m));
    }

    private static void WriteLog(HtmlWriter html, PageContext page, ProductRecord product, LogView m)
    {
        html.Open("p").Link(page.ProductUrl(product), $"{product.Name}/{product.Version}").Close("p");
        html.Element("h1", "Build log");
        html.Element("p", $"{m.Path} · {Layout.Size(m.Size)}", ("class", "muted mono"));
        html.Open("form", ("class", "filter"), ("method", "get"), ("action", page.ProductUrl(product) + "/log"), ("role", "search"));
        html.Open("label").Text("Lines containing").Void("input", ("type", "search"), ("name", "q"), ("value", m.Search ?? "")).Close("label");
        html.Element("button", "Search", ("type", "submit"));
        html.Close("form");
        if (m.Search is not null)
        {
            html.Element("p", $"{m.Lines.Count} line(s) match" + (m.Truncated ? $" (the first {MaxSearchHits} shown)" : ""), ("class", "muted"));
        }
        else
        {
            Pager(html, page, m.Page, m.HasNext);
        }

        html.Open("table", ("class", "log"), ("id", "log"), ("aria-label", "Build log lines"));
        html.Open("tbody");
        foreach (var line in m.Lines)
        {
            var id = "L" + line.Number.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var target = m.Search is null ? "#" + id : $"{page.ProductUrl(product)}/log?page={((line.Number - 1) / LogLinesPerPage) + 1}#{id}";
            html.Open("tr", ("id", id));
            html.Open("td", ("class", "ln")).Link(target, line.Number.ToString(System.Globalization.CultureInfo.InvariantCulture)).Close("td");
            html.Open("td").Text(line.Text);
            if (line.Omitted > 0) html.Element("span", $" … ({line.Omitted} more characters)", ("class", "muted"));
            html.Close("td").Close("tr");
        }

        html.Close("tbody").Close("table");
        if (m.Search is null) Pager(html, page, m.Page, m.HasNext);
    }

    // ---- revisions

    public static async Task<object> RevisionsAsync(PageContext page, CancellationToken ct)
    {
        var head = await page.HeadAsync(ct);
        // A page is a range of revision numbers, newest first: the history is never read whole.
        var pageNumber = Math.Max(1, page.QueryLong("page") ?? 1);
        var newest = head.Revision - (pageNumber - 1) * RevisionsPerPage;
        var list = (await page.RevisionsDownFromAsync(newest, RevisionsPerPage, RevisionsPerPage, ct))
            .Select(r => new RevisionView(r.Revision, r.Parent, r.Timestamp, r.Message,
                [.. head.Tags.Where(t => t.Value == r.Revision).Select(t => t.Key).Order(StringComparer.Ordinal)], r.Root)).ToList();
        var model = new RevisionsView(head.Revision, pageNumber, newest - RevisionsPerPage >= 1, list);
        return new Page<RevisionsView>("Revisions", "revisions", model, DashboardJson.Default.RevisionsView, WriteRevisions);
    }

    private static void WriteRevisions(HtmlWriter html, PageContext page, RevisionsView m)
    {
        html.Element("h1", "Revisions");
        html.Open("form", ("class", "filter"), ("method", "get"), ("action", page.Url("/revisions/diff")));
        foreach (var (label, field, pick) in new[] { ("Compare revision", "from", m.Revisions.Count > 1 ? m.Revisions[1].Revision : m.Head), ("with revision", "to", m.Head) })
        {
            html.Open("label").Text(label).Open("select", ("name", field));
            foreach (var r in m.Revisions)
            {
                var n = r.Revision.ToString(System.Globalization.CultureInfo.InvariantCulture);
                html.Element("option", n, ("value", n), ("selected", r.Revision == pick ? "selected" : null));
            }

            html.Close("select").Close("label");
        }

        html.Element("button", "Show differences", ("type", "submit"));
        html.Close("form");
        html.Open("table", ("id", "revision-list")).Open("thead").Open("tr");
        foreach (var h in new[] { "Revision", "When", "Message", "Tags", "" }) html.Element("th", h, ("scope", "col"));
        html.Close("tr").Close("thead").Open("tbody");
        foreach (var r in m.Revisions)
        {
            var n = r.Revision.ToString(System.Globalization.CultureInfo.InvariantCulture);
            html.Open("tr").Open("td").Link(page.Url("/?rev=" + n), n).Close("td");
            html.Element("td", Layout.Time(r.Timestamp)).Element("td", r.Message).Element("td", string.Join(", ", r.Tags));
            html.Open("td");
            if (r.Parent is { } parent) html.Link(page.Url($"/revisions/diff?from={parent}&to={n}"), "changes");
            html.Close("td").Close("tr");
        }

        html.Close("tbody").Close("table");
        Pager(html, page, m.Page, m.HasNext);
    }

    public static async Task<object> DiffAsync(PageContext page, CancellationToken ct)
    {
        var repo = page.Options.Repository;
        var head = await page.HeadAsync(ct);
        var to = await repo.RevisionAsync(page.QueryLong("to") ?? head.Revision, ct);
        var from = await repo.RevisionAsync(page.QueryLong("from") ?? to.Parent ?? to.Revision, ct);
        var a = await page.CatalogAsync(from, ct);
        var b = await page.CatalogAsync(to, ct);
        var before = a.Products.ToDictionary(p => p.PathInRepository, StringComparer.Ordinal);
        var after = b.Products.ToDictionary(p => p.PathInRepository, StringComparer.Ordinal);
        var changes = new List<ProductChange>();
        var unchanged = 0;
        foreach (var key in before.Keys.Union(after.Keys).Order(StringComparer.Ordinal))
        {
            before.TryGetValue(key, out var x);
            after.TryGetValue(key, out var y);
            if (x is null) changes.Add(new ProductChange(key, "added", null, y!.Root, null, y.BuildKey, null));
            else if (y is null) changes.Add(new ProductChange(key, "removed", x.Root, null, x.BuildKey, null, null));
            else if (x.Root != y.Root)
            {
                var reason = y.Replaced?.LastOrDefault(r => r.PreviousRoot == x.Root)?.Reason;
                changes.Add(new ProductChange(key, "replaced", x.Root, y.Root, x.BuildKey, y.BuildKey, reason));
            }
            else unchanged++;
        }

        var model = new DiffView(from.Revision, to.Revision, changes, unchanged);
        return new Page<DiffView>($"Revision {from.Revision} → {to.Revision}", "revisions", model, DashboardJson.Default.DiffView, WriteDiff);
    }

    private static void WriteDiff(HtmlWriter html, PageContext page, DiffView m)
    {
        html.Element("h1", $"Changes from revision {m.From} to {m.To}");
        html.Element("p", $"{m.Changes.Count(c => c.Change == "added")} added, {m.Changes.Count(c => c.Change == "removed")} removed, " +
            $"{m.Changes.Count(c => c.Change == "replaced")} replaced, {m.Unchanged} unchanged", ("class", "muted"));
        html.Open("table", ("id", "diff")).Open("thead").Open("tr");
        foreach (var h in new[] { "Product", "Change", "Before", "After", "Why" }) html.Element("th", h, ("scope", "col"));
        html.Close("tr").Close("thead").Open("tbody");
        foreach (var c in m.Changes)
        {
            html.Open("tr", ("class", c.Change == "added" ? "diff-add" : c.Change == "removed" ? "diff-del" : null));
            var parts = c.Product.Split('/');
            html.Open("td");
            if (c.Change != "removed" && parts.Length == 3) html.Link(page.ProductUrl(parts[0], parts[1], parts[2]) + "?rev=" + m.To, c.Product);
            else html.Text(c.Product);
            html.Close("td");
            html.Element("td", c.Change);
            html.Element("td", c.From?.ToString()[..16], ("class", "mono"));
            html.Element("td", c.To?.ToString()[..16], ("class", "mono"));
            html.Element("td", c.Reason ?? (c.FromBuildKey != c.ToBuildKey && c.Change == "replaced" ? "build key changed" : ""));
            html.Close("tr");
        }

        html.Close("tbody").Close("table");
    }

    // ---- helpers

    internal static async Task<byte[]> ReadBytesAsync(ProductRepository repo, TreeEntry entry, CancellationToken ct)
    {
        using var buffer = new MemoryStream((int)Math.Min(entry.Size, MaxTextFileBytes));
        await repo.Trees.CopyContentAsync(entry, buffer, ct);
        return buffer.ToArray();
    }

    private static async Task<string?> ReadSmallTextAsync(PageContext page, Digest root, string path, CancellationToken ct)
    {
        var entry = await page.Options.Repository.Trees.LookupAsync(root, path, ct);
        if (entry is not { IsFile: true } || entry.Size > MaxTextFileBytes) return null;
        return TreeDiff.DecodeText(await ReadBytesAsync(page.Options.Repository, entry, ct));
    }
}

/// <summary>Test cases of a JUnit XML report (testsuite/testcase with failure, error or skipped children). DTDs are refused.</summary>
internal static class JUnit
{
    public static IEnumerable<TestCaseView> Parse(byte[] xml, string file)
    {
        var cases = new List<TestCaseView>();
        try
        {
            using var reader = XmlReader.Create(new MemoryStream(xml), new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, IgnoreWhitespace = true });
            string suite = file;
            string? name = null;
            string outcome = "passed";
            string? message = null;
            while (reader.Read())
            {
                if (reader.NodeType == XmlNodeType.Element && reader.Name == "testsuite") suite = reader.GetAttribute("name") ?? file;
                else if (reader.NodeType == XmlNodeType.Element && reader.Name == "testcase")
                {
                    name = reader.GetAttribute("name") ?? "(unnamed)";
                    var cls = reader.GetAttribute("classname");
                    if (!string.IsNullOrEmpty(cls)) name = cls + "." + name;
                    outcome = "passed";
                    message = null;
                    if (reader.IsEmptyElement)
                    {
                        cases.Add(new TestCaseView(suite, name, outcome, message));
                        name = null;
                    }
                }
                else if (reader.NodeType == XmlNodeType.Element && name is not null && reader.Name is "failure" or "error" or "skipped")
                {
                    outcome = reader.Name == "skipped" ? "skipped" : "failed";
                    message = reader.GetAttribute("message");
                }
                else if (reader.NodeType == XmlNodeType.EndElement && reader.Name == "testcase" && name is not null)
                {
                    cases.Add(new TestCaseView(suite, name, outcome, message));
                    name = null;
                }
            }
        }
        catch (XmlException e)
        {
            cases.Add(new TestCaseView(file, "(unreadable JUnit report)", "failed", e.Message));
        }

        return cases;
    }
}

/// <summary>
/// A write-only stream that splits what is written into lines and hands each to a callback until it says stop:
/// a log of any size is read in chunks (the repository's own), never held whole. Lines longer than
/// <see cref="RepositoryPages.MaxLineChars"/> are cut, and the callback told how much was left out.
/// </summary>
internal sealed class LineSink(Func<long, string, int, bool> onLine) : Stream
{
    private readonly Decoder _decoder = new UTF8Encoding(false, false).GetDecoder();
    private readonly StringBuilder _line = new();
    private readonly char[] _chars = new char[8192];
    private long _number = 1;
    private int _omitted;
    private bool _stopped;

    private sealed class Stop : Exception;

    public async Task ReadAsync(TreeWalker trees, TreeEntry file, CancellationToken ct)
    {
        try
        {
            await trees.CopyContentAsync(file, this, ct);
        }
        catch (Stop)
        {
            return;
        }

        if (!_stopped && (_line.Length > 0 || _omitted > 0)) onLine(_number, _line.ToString(), _omitted);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            _decoder.Convert(buffer, _chars, false, out var used, out var produced, out _);
            buffer = buffer[used..];
            for (var i = 0; i < produced; i++)
            {
                var c = _chars[i];
                if (c == '\n')
                {
                    var text = _line.ToString();
                    if (text.EndsWith('\r')) text = text[..^1];
                    if (!onLine(_number, text, _omitted))
                    {
                        _stopped = true;
                        throw new Stop();
                    }

                    _number++;
                    _line.Clear();
                    _omitted = 0;
                }
                else if (_line.Length < RepositoryPages.MaxLineChars) _line.Append(c);
                else _omitted++;
            }
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
