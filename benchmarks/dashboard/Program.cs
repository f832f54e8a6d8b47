using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Cairn.Coordination;
using Cairn.Coordination.Sqlite;
using Cairn.Core;
using Cairn.Gateway;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Server;

// cairn-dashboard-bench seed DIR [--products 5000] [--sites 50] [--results 20000]
//     Writes DIR/repo (a directory repository) and DIR/coordination.db through the libraries: the products in one
//     revision (a layered stack, 20 layers deep, each product depending on three of the layer below), the sites with
//     a token each, and the results (every product reported by results/products sites; ~1 % disagree, ~2 % fail).
// cairn-dashboard-bench measure DIR [--samples 40]
//     Starts the gateway (its dashboard) in this process over DIR on loopback and times each page warm (p50/p95/max of
//     the samples, after 3 warm-up requests), printing its size; the graph of the product whose closure is nearest
//     2,000 nodes, and the whole stack's once.
if (args.Length < 2 || args[0] is not ("seed" or "measure"))
{
    Console.Error.WriteLine("usage: cairn-dashboard-bench seed DIR [--products N] [--sites N] [--results N] | measure DIR [--samples N]");
    return 2;
}

var dir = Path.GetFullPath(args[1]);
int Option(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

Console.WriteLine($"load average: {File.ReadAllText("/proc/loadavg").Trim()}; {Environment.ProcessorCount} cores");
return args[0] == "seed"
    ? await Bench.SeedAsync(dir, Option("--products", 5000), Option("--sites", 50), Option("--results", 20000))
    : await Bench.MeasureAsync(dir, Option("--samples", 40));

internal static class Bench
{
    private const string Platform = "linux-x86_64";
    private const int Layers = 20;

    /// <summary>Product j: a name among a thousand, five versions each, placed in layer j / (products / 20).</summary>
    private static (string Name, string Version) Product(int j) => ($"pkg{j % 1000:D4}", $"{j / 1000 + 1}.{j % 7}");

    private static List<int> Dependencies(int j, int products)
    {
        var perLayer = Math.Max(1, products / Layers);
        var layer = j / perLayer;
        if (layer == 0) return [];
        var below = (layer - 1) * perLayer;
        return [.. new[] { 0, 1, 2 }.Select(k => below + (int)((uint)(j * 2654435761u + k * 40503u) % perLayer)).Distinct()];
    }

    private static string Key(int j) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"bench key {j}")));

    public static async Task<int> SeedAsync(string dir, int products, int sites, int results)
    {
        var ct = CancellationToken.None;
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(dir);
        var clock = Stopwatch.StartNew();
        await using (var repo = await DirectoryRepository.InitAsync(Path.Combine(dir, "repo"), "dashboard-bench", Platform, TimeProvider.System, null, ct))
        {
            await using var session = await repo.BeginPublishAsync(ct);
            var batch = new List<(ProductRef, TreeEntry, PublishOptions)>(products);
            for (var j = 0; j < products; j++)
            {
                var (name, version) = Product(j);
                var content = Encoding.UTF8.GetBytes($"{name} {version}: product {j} of the dashboard benchmark\n");
                using var stream = new MemoryStream(content);
                var file = await session.Ingest.AddFileAsync($"{name}.txt", stream, content.Length, false, ct);
                var share = await session.Ingest.AddDirectoryAsync("share", [file], ct);
                var root = await session.Ingest.AddDirectoryAsync("", [share], ct);
                var deps = Dependencies(j, products).Select(d => Product(d)).Select(p => $"{p.Name}/{p.Version}").ToList();
                batch.Add((new ProductRef(name, version), root, new PublishOptions
                {
                    BuildKey = Key(j),
                    Dependencies = deps,
                    Tests = new TestSummary(10 + j % 50, 0, j % 3, null),
                    PublishedBy = $"ci@site-{j % sites:D2}",
                }));
            }

            var manifest = await session.CommitProductsAsync(batch, $"dashboard benchmark: {products} products", ct);
            Console.WriteLine($"seeded {products} products as revision {manifest.Revision} in {clock.Elapsed.TotalSeconds:F1} s");
        }

        clock.Restart();
        await using var store = await SqliteCoordinationStore.OpenAsync(Path.Combine(dir, "coordination.db"), TimeProvider.System, null, ct);
        var siteNames = Enumerable.Range(0, sites).Select(s => $"site-{s:D2}").ToList();
        foreach (var site in siteNames)
        {
            await store.RegisterSiteAsync(site, new SiteCapabilities(Platform, "debian/12", site.EndsWith('7') ? ["gpu"] : []), ct);
            await store.IssueTokenAsync(site, TokenScope.Everything, ct);
        }

        var perProduct = Math.Max(1, results / products);
        var recorded = 0;
        for (var j = 0; j < products && recorded < results; j++)
        {
            var (name, version) = Product(j);
            var root = Digest.Of(Encoding.UTF8.GetBytes($"root {j}"));
            for (var r = 0; r < perProduct && recorded < results; r++, recorded++)
            {
                var site = siteNames[(j * 7 + r * 13) % sites];
                var differs = j % 97 == 0 && r == perProduct - 1;
                var fails = j % 53 == 0 && r == perProduct - 1;
                var checks = fails ? new CheckOutcome(9, 1, 0, [new TestCaseResult($"{name}.selftest", TestOutcome.Failed, "assertion failed: expected 1, got 0")])
                    : new CheckOutcome(10, 0, 0);
                await store.RecordResultAsync(new BuildResult(Key(j), site, $"{Platform}/{name}/{version}",
                    fails ? null : differs ? Digest.Of(Encoding.UTF8.GetBytes($"irreproducible {j}")) : root, checks,
                    $"{site}: debian/12, kernel 6.1, 8 CPUs", TimeSpan.FromSeconds(30 + j % 600), $"logs/{Platform}/{name}/{version}/build.log"), ct);
            }
        }

        Console.WriteLine($"seeded {sites} sites and {recorded} results in {clock.Elapsed.TotalSeconds:F1} s");
        return 0;
    }

    public static async Task<int> MeasureAsync(string dir, int samples)
    {
        var ct = CancellationToken.None;
        var repoPath = Path.Combine(dir, "repo");
        await using var repo = await DirectoryRepository.OpenAsync(repoPath, TimeProvider.System, null, TimeSpan.FromSeconds(30), ct);
        await using var store = await SqliteCoordinationStore.OpenAsync(Path.Combine(dir, "coordination.db"), TimeProvider.System, null, ct);
        var catalog = await repo.CatalogAsync(await repo.HeadAsync(ct), ct);
        var products = catalog.Products.Count;

        // The product whose graph (what it needs and what needs it, as the graph page draws it) is nearest 2,000 nodes.
        var deps = catalog.Products.ToDictionary(p => $"{p.Name}/{p.Version}", p => p.Dependencies);
        var dependants = catalog.Products.SelectMany(p => p.Dependencies.Select(d => (Dependency: d, Dependant: $"{p.Name}/{p.Version}")))
            .GroupBy(x => x.Dependency).ToDictionary(g => g.Key, g => (IReadOnlyList<string>)[.. g.Select(x => x.Dependant)]);
        string? focus = null;
        var focusSize = 0;
        foreach (var p in catalog.Products)
        {
            var size = Closure(deps, $"{p.Name}/{p.Version}") + Closure(dependants, $"{p.Name}/{p.Version}") - 1;
            if (focus is null || Math.Abs(size - 2000) < Math.Abs(focusSize - 2000)) (focus, focusSize) = (p.PathInRepository, size);
        }

        await using var service = new GatewayService(store, repo);
        var app = GatewayHost.Build(new GatewayHostOptions { Service = service, RepositoryDirectory = repoPath, Listen = "http://127.0.0.1:0" });
        await app.StartAsync(ct);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri(CairnServer.Addresses(app)[0]), Timeout = TimeSpan.FromMinutes(2) };
            Console.WriteLine($"{products} products, {(await store.ListSitesAsync(ct)).Count} sites, " +
                $"{(await store.ListRecentResultsAsync(1_000_000, ct)).Count} results; graph focus {focus} ({focusSize} nodes)");
            Console.WriteLine();
            Console.WriteLine($"| page (warm, {samples} samples, HTML) | p50 ms | p95 ms | max ms | size KB | target |");
            Console.WriteLine("|---|---|---|---|---|---|");
            await PageAsync(http, "/ui/", samples, "≤ 100 ms p95, ≤ 200 KB");
            await PageAsync(http, "/ui/?page=13", samples, "≤ 100 ms p95, ≤ 200 KB");
            await PageAsync(http, "/ui/?q=pkg01", samples, "≤ 100 ms p95, ≤ 200 KB");
            await PageAsync(http, "/ui/coherence", samples, "≤ 100 ms p95, ≤ 200 KB");
            await PageAsync(http, "/ui/coherence?page=50", samples, "≤ 100 ms p95, ≤ 200 KB");
            await PageAsync(http, "/ui/coherence?q=pkg09", samples, "≤ 100 ms p95, ≤ 200 KB");
            await PageAsync(http, "/ui/builds", Math.Min(samples, 10), "");
            await PageAsync(http, "/ui/sites", Math.Min(samples, 10), "");
            await PageAsync(http, "/ui/products/" + catalog.Products[products / 2].PathInRepository, Math.Min(samples, 10), "");
            await PageAsync(http, "/ui/graph.svg?product=" + Uri.EscapeDataString(focus!), Math.Min(samples, 5), $"≤ 1000 ms ({focusSize} nodes)");
            await PageAsync(http, "/ui/graph?product=" + Uri.EscapeDataString(focus!), Math.Min(samples, 5), $"≤ 1000 ms ({focusSize} nodes)");
            await PageAsync(http, "/ui/graph.svg", 1, $"(whole stack, {products} nodes)", warmups: 0);
        }
        finally
        {
            await app.StopAsync(ct);
            await app.DisposeAsync();
        }

        Console.WriteLine();
        Console.WriteLine($"load average after: {File.ReadAllText("/proc/loadavg").Trim()}");
        return 0;
    }

    private static int Closure(Dictionary<string, IReadOnlyList<string>> deps, string top)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal) { top };
        var todo = new Stack<string>([top]);
        while (todo.Count > 0)
        {
            foreach (var d in deps.GetValueOrDefault(todo.Pop()) ?? [])
            {
                if (seen.Add(d)) todo.Push(d);
            }
        }

        return seen.Count;
    }

    /// <summary>Times GETs of one page over loopback (client-side: the server's time plus the transfer, an upper bound).</summary>
    private static async Task PageAsync(HttpClient http, string path, int samples, string target, int warmups = 3)
    {
        var times = new List<double>();
        long size = 0;
        for (var i = 0; i < warmups + samples; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.Accept.ParseAdd("text/html");
            var clock = Stopwatch.StartNew();
            using var response = await http.SendAsync(request);
            var body = await response.Content.ReadAsByteArrayAsync();
            clock.Stop();
            if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"{path}: HTTP {(int)response.StatusCode}");
            size = body.Length;
            if (i >= warmups) times.Add(clock.Elapsed.TotalMilliseconds);
        }

        times.Sort();
        double Pct(double p) => times[Math.Min(times.Count - 1, (int)Math.Ceiling(p * times.Count) - 1)];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| `{path}` | {Pct(0.5):F1} | {Pct(0.95):F1} | {times[^1]:F1} | {size / 1024.0:F0} | {target} |"));
    }
}
