using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Cairn.Core;

namespace Cairn.Web.Tests;

/// <summary>The dashboard over real HTTP (cairn serve and the gateway in-process on Kestrel): negotiation, headers, paths.</summary>
[Collection("stack")]
public sealed class DashboardHttpTests(StackFixture stack) : IDisposable
{
    private readonly HttpClient _http = new(new HttpClientHandler { AllowAutoRedirect = false });

    public void Dispose() => _http.Dispose();

    private async Task<HttpResponseMessage> GetAsync(string url, string accept, string? prefix = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Accept.ParseAdd(accept);
        if (prefix is not null) request.Headers.Add("X-Forwarded-Prefix", prefix);
        return await _http.SendAsync(request);
    }

    [Fact]
    public async Task ABrowserAtTheRootLandsOnTheDashboardWhileClientsKeepTheRepositoryFiles()
    {
        using var browser = await GetAsync(stack.ServeUrl + "/", "text/html,application/xhtml+xml");
        Assert.Equal(HttpStatusCode.Redirect, browser.StatusCode);
        Assert.Equal("/ui/", browser.Headers.Location!.OriginalString);

        using var client = await GetAsync(stack.ServeUrl + "/", "*/*");
        Assert.Equal(HttpStatusCode.NotFound, client.StatusCode);

        using var manifest = await GetAsync(stack.ServeUrl + "/manifest.json", "text/html");
        Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
        Assert.Equal("application/json", manifest.Content.Headers.ContentType!.MediaType);
        Assert.Contains("\"revision\"", await manifest.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task EveryPageAnswersJsonWithTheSameData()
    {
        using var html = await GetAsync(stack.ServeUrl + "/ui/", "text/html");
        Assert.Equal("text/html", html.Content.Headers.ContentType!.MediaType);
        Assert.Contains(">zlib/1.2.13</a>", await html.Content.ReadAsStringAsync());

        using var json = await GetAsync(stack.ServeUrl + "/ui/?q=lib", "application/json");
        Assert.Equal("application/json", json.Content.Headers.ContentType!.MediaType);
        using var doc = JsonDocument.Parse(await json.Content.ReadAsStringAsync());
        var names = doc.RootElement.GetProperty("products").EnumerateArray().Select(p => p.GetProperty("name").GetString()).ToList();
        Assert.Equal(["libpng", "zlib"], names);
        Assert.Equal(2, doc.RootElement.GetProperty("total").GetInt32());

        foreach (var path in new[] { "/ui/products/linux-x86_64/zlib/1.2.13", "/ui/revisions", "/ui/graph", "/ui/health", "/ui/builds", "/ui/sites", "/ui/coherence",
            "/ui/products/linux-x86_64/zlib/1.2.13/files/include", "/ui/products/linux-x86_64/zlib/1.2.13/log", "/ui/revisions/diff?from=1&to=3" })
        {
            using var r = await GetAsync(stack.GatewayUrl + path, "application/json");
            Assert.True(r.StatusCode == HttpStatusCode.OK, $"{path}: {r.StatusCode}");
            JsonDocument.Parse(await r.Content.ReadAsStringAsync()).Dispose();
        }
    }

    [Fact]
    public async Task PagesCarryAStrictContentSecurityPolicyAndAssetsAreImmutable()
    {
        using var page = await GetAsync(stack.GatewayUrl + "/ui/", "text/html");
        var csp = string.Join(";", page.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("script-src 'self'", csp);
        Assert.DoesNotContain("unsafe-inline", csp);
        Assert.Equal("nosniff", page.Headers.GetValues("X-Content-Type-Options").Single());
        var body = await page.Content.ReadAsStringAsync();
        var css = System.Text.RegularExpressions.Regex.Match(body, "href=\"(/ui/assets/dashboard\\.[0-9a-f]{16}\\.css)\"").Groups[1].Value;
        Assert.NotEmpty(css);

        using var asset = await GetAsync(stack.GatewayUrl + css, "text/css");
        Assert.Equal(HttpStatusCode.OK, asset.StatusCode);
        Assert.Equal("public, max-age=31536000, immutable", asset.Headers.CacheControl!.ToString().Replace(" ", "").Replace(",", ", "));
        using var stale = await GetAsync(stack.GatewayUrl + "/ui/assets/dashboard.0000000000000000.css", "text/css");
        Assert.Equal(HttpStatusCode.NotFound, stale.StatusCode);
    }

    [Fact]
    public async Task LinksFollowTheForwardedPrefix()
    {
        using var page = await GetAsync(stack.ServeUrl + "/ui/", "text/html", prefix: "/mirror/cairn");
        var body = await page.Content.ReadAsStringAsync();
        Assert.Contains("href=\"/mirror/cairn/ui/products/linux-x86_64/zlib/1.2.13\"", body);
        Assert.Contains("href=\"/mirror/cairn/ui/assets/dashboard.", body);
        Assert.DoesNotContain("href=\"/ui/", body);

        // A prefix that is not a plain path is ignored, not echoed into the page.
        using var hostile = await GetAsync(stack.ServeUrl + "/ui/", "text/html", prefix: "/x\"><script>alert(1)</script>");
        Assert.DoesNotContain("<script>alert", await hostile.Content.ReadAsStringAsync());

        using var root = await GetAsync(stack.ServeUrl + "/", "text/html", prefix: "/mirror/cairn");
        Assert.Equal("/mirror/cairn/ui/", root.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task PagesAnswerHeadLikeGetWithoutABody()
    {
        foreach (var path in new[] { "/ui/", "/ui/builds", "/ui/coherence", "/ui/graph.svg", "/ui/products/linux-x86_64/zlib/1.2.13/log", "/ui/nowhere" })
        {
            using var get = await GetAsync(stack.GatewayUrl + path, "text/html");
            using var head = new HttpRequestMessage(HttpMethod.Head, stack.GatewayUrl + path);
            head.Headers.Accept.ParseAdd("text/html");
            using var answer = await _http.SendAsync(head);
            Assert.Equal(get.StatusCode, answer.StatusCode);
            Assert.Equal(get.Content.Headers.ContentType, answer.Content.Headers.ContentType);
            Assert.Equal(get.Headers.GetValues("Content-Security-Policy"), answer.Headers.GetValues("Content-Security-Policy"));
            Assert.Empty(await answer.Content.ReadAsByteArrayAsync());
        }
    }

    [Fact]
    public async Task AFixedBasePathWinsOverTheForwardedPrefix()
    {
        await using var app = Cairn.Server.CairnServer.Build(new Cairn.Server.ServeOptions { RepositoryPath = stack.RepoPath, Listen = "http://127.0.0.1:0", BasePath = "/stack" });
        await app.StartAsync();
        var url = Cairn.Server.CairnServer.Addresses(app)[0];
        using var page = await GetAsync(url + "/ui/revisions", "text/html", prefix: "/other");
        var body = await page.Content.ReadAsStringAsync();
        Assert.Contains("href=\"/stack/ui/graph\"", body);
        Assert.DoesNotContain("/other/", body);
        await app.StopAsync();

        var bad = Assert.Throws<Cairn.Core.CairnException>(() => Cairn.Server.CairnServer.Build(new Cairn.Server.ServeOptions { RepositoryPath = stack.RepoPath, Listen = "http://127.0.0.1:0", BasePath = "cairn/" }));
        Assert.Equal(Cairn.Core.ErrorCode.Usage, bad.Code);
    }

    [Fact]
    public async Task AHugeLogIsPagedWithLineAnchorsAndSearchable()
    {
        var log = stack.ServeUrl + "/ui/products/linux-x86_64/biglog/1.0/log";
        using var page2 = await GetAsync(log + "?page=2", "application/json");
        using var doc = JsonDocument.Parse(await page2.Content.ReadAsStringAsync());
        var lines = doc.RootElement.GetProperty("lines");
        Assert.Equal(1000, lines.GetArrayLength());
        Assert.Equal(1001, lines[0].GetProperty("number").GetInt64());
        Assert.Equal("log line 1001", lines[0].GetProperty("text").GetString());
        Assert.True(doc.RootElement.GetProperty("hasNext").GetBoolean());

        using var page3 = await GetAsync(log + "?page=3", "application/json");
        using var last = JsonDocument.Parse(await page3.Content.ReadAsStringAsync());
        var long1 = last.RootElement.GetProperty("lines").EnumerateArray().Single(l => l.GetProperty("text").GetString()!.StartsWith(StackFixture.LongLineMarker, StringComparison.Ordinal));
        Assert.Equal(RepositoryPages.MaxLineChars, long1.GetProperty("text").GetString()!.Length);
        Assert.Equal(StackFixture.LongLineMarker.Length + 100_000 - RepositoryPages.MaxLineChars, long1.GetProperty("omitted").GetInt32());
        Assert.False(last.RootElement.GetProperty("hasNext").GetBoolean());

        using var html = await GetAsync(log + "?page=2", "text/html");
        var body = await html.Content.ReadAsStringAsync();
        Assert.Contains("<tr id=\"L1500\"><td class=\"ln\"><a href=\"#L1500\">1500</a></td><td>log line 1500</td></tr>", body);

        using var search = await GetAsync(log + "?q=line%202499", "application/json");
        using var hits = JsonDocument.Parse(await search.Content.ReadAsStringAsync());
        Assert.Equal([2499L], hits.RootElement.GetProperty("lines").EnumerateArray().Select(l => l.GetProperty("number").GetInt64()));
    }

    [Fact]
    public async Task TheCoherenceMatrixFiltersByProduct()
    {
        using var r = await GetAsync(stack.GatewayUrl + "/ui/coherence?q=png", "application/json");
        using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        var row = Assert.Single(doc.RootElement.GetProperty("rows").EnumerateArray());
        Assert.Equal("linux-x86_64/libpng/1.6.40", row.GetProperty("product").GetString());
        Assert.Equal("disagreement", row.GetProperty("status").GetString());
        Assert.Equal(["agree", "agree", "differ"], row.GetProperty("cells").EnumerateArray().Select(c => c.GetProperty("state").GetString()));
        Assert.Equal(1, doc.RootElement.GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task TheRevisionDiffNamesAddedProducts()
    {
        using var r = await GetAsync(stack.ServeUrl + "/ui/revisions/diff?from=1&to=3", "application/json");
        using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        var changes = doc.RootElement.GetProperty("changes").EnumerateArray().Select(c => (c.GetProperty("product").GetString(), c.GetProperty("change").GetString())).ToList();
        Assert.Equal([("linux-x86_64/libpng/1.6.40", "added"), ("linux-x86_64/zlib/1.2.13", "added")], changes);
    }

    [Fact]
    public async Task UnknownProductsAndPagesAre404InBothForms()
    {
        using var html = await GetAsync(stack.ServeUrl + "/ui/products/linux-x86_64/nope/1.0", "text/html");
        Assert.Equal(HttpStatusCode.NotFound, html.StatusCode);
        Assert.Contains("nope/1.0 is not in revision", await html.Content.ReadAsStringAsync());
        using var json = await GetAsync(stack.ServeUrl + "/ui/no/such/page", "application/json");
        Assert.Equal(HttpStatusCode.NotFound, json.StatusCode);
        using (var error = JsonDocument.Parse(await json.Content.ReadAsStringAsync()))
        {
            Assert.Equal(ErrorCodes.Name(ErrorCode.DashboardPageNotFound), error.RootElement.GetProperty("code").GetString());
        }

        // cairn serve has no coordination state: the gateway's pages say so.
        using var builds = await GetAsync(stack.ServeUrl + "/ui/builds", "application/json");
        Assert.Equal(HttpStatusCode.BadRequest, builds.StatusCode);
        // A gateway started without --operator-token-file has no operator actions, and says so with its own code.
        using var action = new HttpRequestMessage(HttpMethod.Post, stack.GatewayUrl + "/ui/actions/rerun") { Content = new FormUrlEncodedContent([KeyValuePair.Create("key", "k-hdf5")]) };
        action.Headers.Accept.ParseAdd("application/json");
        using var disabled = await _http.SendAsync(action);
        Assert.Equal(HttpStatusCode.NotFound, disabled.StatusCode);
        using (var error = JsonDocument.Parse(await disabled.Content.ReadAsStringAsync()))
        {
            Assert.Equal(ErrorCodes.Name(ErrorCode.OperatorActionsDisabled), error.RootElement.GetProperty("code").GetString());
        }

        Assert.Equal(2, (await stack.Store.GetResultsAsync("k-hdf5", CancellationToken.None)).Count);
        // A path that tries to climb out of the product is not found, never served.
        using var climb = await GetAsync(stack.ServeUrl + "/ui/products/linux-x86_64/zlib/1.2.13/files/..%2f..%2fbiglog", "application/json");
        Assert.Equal(HttpStatusCode.NotFound, climb.StatusCode);
    }

    [Fact]
    public async Task TheGraphHasOneNodePerPackageWithItsStatusColour()
    {
        using var r = await GetAsync(stack.GatewayUrl + "/ui/graph.svg", "image/svg+xml");
        Assert.Equal("image/svg+xml", r.Content.Headers.ContentType!.MediaType);
        var svg = System.Xml.Linq.XDocument.Parse(await r.Content.ReadAsStringAsync());
        System.Xml.Linq.XNamespace ns = "http://www.w3.org/2000/svg";
        var nodes = svg.Descendants().Where(e => e.Attribute("class")?.Value == "node").ToList();
        Assert.Equal(StackFixture.ExpectedStatus.Keys.Order(), nodes.Select(n => n.Attribute("data-product")!.Value).Order());
        foreach (var n in nodes)
        {
            var status = StackFixture.ExpectedStatus[n.Attribute("data-product")!.Value];
            Assert.Equal(status, n.Attribute("data-status")!.Value);
            Assert.Equal(GraphPage.Colours(status).Fill, n.Element(ns + "rect")!.Attribute("fill")!.Value);
        }
    }
}
