using Deque.AxeCore.Playwright;
using Microsoft.Playwright;

namespace Cairn.Web.Tests;

/// <summary>Debian's chromium, headless, driven by Playwright's node driver (no browser download).</summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public const string Chromium = "/usr/bin/chromium";

    private IPlaywright _playwright = null!;

    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: run scripts/install-deps.sh (it installs Debian's chromium)");
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
    }

    public async Task DisposeAsync()
    {
        await Browser.CloseAsync();
        _playwright.Dispose();
    }
}

[Collection("stack")]
public sealed class BrowserTests(StackFixture stack, BrowserFixture chromium) : IClassFixture<BrowserFixture>
{
    private readonly List<string> _dialogs = [];

    private async Task<IPage> OpenAsync(bool javaScript = true)
    {
        var context = await chromium.Browser.NewContextAsync(new BrowserNewContextOptions
        {
            JavaScriptEnabled = javaScript,
            ViewportSize = new ViewportSize { Width = 1280, Height = 860 },
        });
        var page = await context.NewPageAsync();
        // Any alert(), confirm() or prompt() is an injected script that ran.
        page.Dialog += (_, dialog) =>
        {
            lock (_dialogs) _dialogs.Add(dialog.Message);
            _ = dialog.DismissAsync();
        };
        return page;
    }

    private static async Task ScreenshotAsync(IPage page, string name)
    {
        var file = name + ".png";
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(AppContext.BaseDirectory, "screenshots", file), FullPage = false });
        // CAIRN_UPDATE_SCREENSHOTS=1 refreshes the pictures in docs/dashboard.md.
        if (Environment.GetEnvironmentVariable("CAIRN_UPDATE_SCREENSHOTS") == "1" && Checkout() is { } root)
        {
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(root, "docs", "dashboard", file), FullPage = false });
        }
    }

    private static string? Checkout()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Cairn.slnx"))) return dir.FullName;
        }

        return null;
    }

    [Fact]
    public async Task TheProductListLeadsToAProductAndItsLog()
    {
        var page = await OpenAsync();
        await page.GotoAsync(stack.GatewayUrl + "/");
        Assert.EndsWith("/ui/", page.Url, StringComparison.Ordinal);
        var rows = page.Locator("#products tbody tr");
        Assert.Equal(6, await rows.CountAsync());
        await ScreenshotAsync(page, "products");

        await page.GetByRole(AriaRole.Link, new() { Name = "zlib/1.2.13", Exact = true }).ClickAsync();
        Assert.Equal("zlib/1.2.13", await page.Locator("h1").InnerTextAsync());
        Assert.Contains("libpng/1.6.40", await page.Locator("main").InnerTextAsync());
        Assert.Equal(3, await page.Locator("#tests tbody tr").CountAsync());
        Assert.Contains("module-whatis", await page.Locator("pre.file").InnerTextAsync());
        await ScreenshotAsync(page, "product");

        await page.GetByRole(AriaRole.Link, new() { Name = "Build log" }).ClickAsync();
        Assert.Equal("PASS: example", (await page.Locator("#L41 td").Nth(1).InnerTextAsync()).Trim());
        await page.Locator("#L10 a").ClickAsync();
        Assert.EndsWith("#L10", page.Url, StringComparison.Ordinal);
        await ScreenshotAsync(page, "log");

        await page.GotoAsync(stack.GatewayUrl + "/ui/products/linux-x86_64/zlib/1.2.13/files/include");
        await page.GetByRole(AriaRole.Link, new() { Name = "zlib.h" }).ClickAsync();
        Assert.Contains("ZLIB_VERSION", await page.Locator("pre.file").InnerTextAsync());
        Assert.Empty(_dialogs);
    }

    [Fact]
    public async Task TheGraphDrawsOnePackagePerNodeInItsStatusColour()
    {
        var page = await OpenAsync();
        await page.GotoAsync(stack.GatewayUrl + "/ui/graph");
        var nodes = page.Locator("#graph svg .node");
        Assert.Equal(StackFixture.ExpectedStatus.Count, await nodes.CountAsync());
        for (var i = 0; i < await nodes.CountAsync(); i++)
        {
            var node = nodes.Nth(i);
            var product = await node.GetAttributeAsync("data-product");
            var status = StackFixture.ExpectedStatus[product!];
            // The colour the browser paints, not only the attribute written.
            var fill = await node.Locator("rect").EvaluateAsync<string>("r => getComputedStyle(r).fill");
            Assert.Equal(Rgb(GraphPage.Colours(status).Fill), fill);
        }

        await ScreenshotAsync(page, "graph");
        await page.Locator("#graph svg a.node[data-product='linux-x86_64/libpng/1.6.40']").ClickAsync();
        Assert.Equal("libpng/1.6.40", await page.Locator("h1").InnerTextAsync());
    }

    internal static string Rgb(string hex) =>
        $"rgb({Convert.ToInt32(hex[1..3], 16)}, {Convert.ToInt32(hex[3..5], 16)}, {Convert.ToInt32(hex[5..7], 16)})";

    [Fact]
    public async Task MarkupInNamesLogsTestsAndResultsIsShownAsTextAndNeverRuns()
    {
        var page = await OpenAsync();
        var product = stack.GatewayUrl + "/ui/products/linux-x86_64/evil/1.0";
        foreach (var url in new[] { product, product + "/files/", product + "/log", stack.GatewayUrl + "/ui/builds", stack.GatewayUrl + "/ui/coherence/k-evil",
            stack.GatewayUrl + "/ui/sites", stack.GatewayUrl + "/ui/" })
        {
            await page.GotoAsync(url);
            Assert.Equal(0, await page.Locator("a[href^='javascript:' i], [onerror], [onload], img, main script").CountAsync());
        }

        await page.GotoAsync(product + "/files/");
        var names = await page.Locator("#files").InnerTextAsync();
        Assert.Contains("<script>alert(1)<_script>.txt", names);
        Assert.Contains("\"><img src=x onerror=alert(2)>.txt", names);
        await page.GotoAsync(product + "/log");
        Assert.Contains("log says <script>alert(1)</script>", await page.Locator("#log").InnerTextAsync());
        await page.GotoAsync(product);
        Assert.Contains(StackFixture.Attacks[0], await page.Locator("#tests").InnerTextAsync());
        await page.GotoAsync(stack.GatewayUrl + "/ui/builds");
        // The javascript: log link of a result is shown as text, not linked.
        Assert.Contains("javascript:alert(6)", await page.Locator("main").InnerTextAsync());
        await Task.Delay(300);
        Assert.Empty(_dialogs);
    }

    [Fact]
    public async Task PagesWorkWithJavaScriptDisabled()
    {
        var page = await OpenAsync(javaScript: false);
        await page.GotoAsync(stack.ServeUrl + "/ui/");
        await page.GetByLabel("Name contains").FillAsync("png");
        await page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await page.WaitForURLAsync("**q=png**");
        Assert.Equal(["libpng/1.6.40"], await page.Locator("#products tbody tr td:first-child").AllInnerTextsAsync());

        await page.GotoAsync(stack.ServeUrl + "/ui/revisions");
        await page.GetByRole(AriaRole.Button, new() { Name = "Show differences" }).ClickAsync();
        Assert.StartsWith("Changes from revision", await page.Locator("h1").InnerTextAsync(), StringComparison.Ordinal);

        await page.GotoAsync(stack.GatewayUrl + "/ui/coherence");
        Assert.Equal(await page.Locator("#matrix tbody tr").CountAsync(), await page.Locator("#matrix tbody tr").CountAsync());
        Assert.True(await page.Locator("#matrix tbody tr").CountAsync() >= 5);
    }

    [Fact]
    public async Task AFailingBuildAndThePlantedDisagreementAreShown()
    {
        var page = await OpenAsync();
        await page.GotoAsync(stack.GatewayUrl + "/ui/builds");
        var failed = page.Locator("table.results tr[data-verdict='failed']", new() { HasText = "hdf5/1.14.0" });
        Assert.Equal(2, await failed.CountAsync());
        Assert.Contains("segmentation fault in H5Dwrite", await failed.First.InnerTextAsync());
        // hdf5 was never published: its log path is shown, not linked to a page that cannot exist.
        Assert.Contains("logs/linux-x86_64/hdf5/1.14.0/build.log", await failed.First.InnerTextAsync());
        Assert.Equal(0, await failed.First.Locator("a").CountAsync());
        Assert.Contains("linux-x86_64/netcdf/4.9.2", await page.Locator("#blocked").InnerTextAsync());
        Assert.Contains("site-b", await page.Locator("#claims").InnerTextAsync());
        await ScreenshotAsync(page, "builds");

        await page.GotoAsync(stack.GatewayUrl + "/ui/coherence");
        var libpng = page.Locator("#matrix tr[data-product='linux-x86_64/libpng/1.6.40']");
        Assert.Equal("disagreement", await libpng.GetAttributeAsync("data-status"));
        Assert.Equal("differ", await libpng.Locator("td[data-site='site-c']").GetAttributeAsync("data-state"));
        Assert.Equal("agree", await libpng.Locator("td[data-site='site-a']").GetAttributeAsync("data-state"));
        var zlib = page.Locator("#matrix tr[data-product='linux-x86_64/zlib/1.2.13']");
        Assert.Contains("stable", await zlib.InnerTextAsync());
        Assert.Contains("3 of 2", await zlib.InnerTextAsync());
        await ScreenshotAsync(page, "coherence");

        await libpng.GetByRole(AriaRole.Link).ClickAsync();
        Assert.Contains("site-c: output root", await page.Locator("#disagreements").InnerTextAsync());

        await page.GotoAsync(stack.GatewayUrl + "/ui/sites");
        Assert.Contains("gpu", await page.Locator("main").InnerTextAsync());
        await ScreenshotAsync(page, "sites");
    }

    [Fact]
    public async Task LiveRefreshShowsANewResultWithoutAReload()
    {
        var page = await OpenAsync();
        await page.GotoAsync(stack.GatewayUrl + "/ui/builds");
        await page.EvaluateAsync("() => { window.notReloaded = true; }");
        var fresh = page.Locator("table.results tr", new() { HasText = "site-b" }).Filter(new() { HasText = "freetype" });
        Assert.Equal(0, await fresh.CountAsync());
        var freetype = await stack.Store.GetResultsAsync("k-freetype", CancellationToken.None);
        await stack.Store.RecordResultAsync(freetype[0] with { Site = "site-b" }, CancellationToken.None);
        await fresh.First.WaitForAsync(new() { Timeout = 20_000 });
        Assert.True(await page.EvaluateAsync<bool>("() => window.notReloaded === true"));
    }

    [Fact]
    public async Task NoSeriousOrCriticalAccessibilityViolations()
    {
        var page = await OpenAsync();
        var urls = new[] { "/ui/", "/ui/products/linux-x86_64/zlib/1.2.13", "/ui/products/linux-x86_64/zlib/1.2.13/files/", "/ui/products/linux-x86_64/zlib/1.2.13/log",
            "/ui/revisions", "/ui/revisions/diff?from=1&to=4", "/ui/graph", "/ui/builds", "/ui/sites", "/ui/coherence", "/ui/coherence/k-libpng", "/ui/health" };
        var problems = new List<string>();
        foreach (var url in urls)
        {
            await page.GotoAsync(stack.GatewayUrl + url);
            var result = await page.RunAxe();
            problems.AddRange(result.Violations.Where(v => v.Impact is "serious" or "critical")
                .Select(v => $"{url}: {v.Id} ({v.Impact}): {v.Help} — {string.Join(" | ", v.Nodes.Take(3).Select(n => n.Html))}"));
        }

        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }
}
