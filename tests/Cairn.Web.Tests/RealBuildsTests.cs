using Cairn.Build;
using Cairn.Build.Coordinated;
using Cairn.Coordination;
using Cairn.Core;
using Cairn.Gateway.Tests.Infrastructure;
using Cairn.Gateway.Tests.Sites;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;

namespace Cairn.Web.Tests;

/// <summary>
/// The dashboard of a real <c>cairn gateway</c> process (SQLite, stable needs two agreeing sites) while three real
/// sites (<c>cairn build --gateway</c> processes) build a small stack in bubblewrap, watched in Debian's chromium:
/// zlib from examples/stack (its real autotools build and check), a program linked against it, a recipe whose
/// product holds the time and random bytes (irreproducible: the confirming site's output differs), and one whose
/// check fails with a message. Nothing is injected into the gateway: every row the pages show was reported by a site.
/// </summary>
public sealed class RealBuildsTests(BrowserFixture chromium) : IClassFixture<BrowserFixture>
{
    private const string Platform = "linux-x86_64";
    private const string Zlib = Platform + "/zlib/1.2.13";
    private const string Zversion = Platform + "/zversion/1.0";
    private const string Stamp = Platform + "/stamp/1.0";
    private const string Broken = Platform + "/broken/1.0";
    private const string BrokenReason = "broken.answer (expected 42, got 41)";

    private readonly List<string> _dialogs = [];

    [Fact]
    public async Task Three_real_sites_build_a_stack_and_the_browser_shows_results_live_the_failure_and_the_irreproducible_product()
    {
        using var dir = new TempDir("cairn-web-real");
        var recipes = Recipes(dir);
        await using var gateway = await GatewayProcess.StartAsync();
        var ui = gateway.Url.AbsoluteUri.TrimEnd('/') + "/ui";

        // The builds page is open before any site starts: what follows must arrive through live refresh, no reload.
        var page = await OpenAsync(javaScript: true);
        await page.GotoAsync(ui + "/builds");
        Assert.Equal(0, await page.Locator("table.results tbody tr").CountAsync());
        await page.EvaluateAsync("() => { window.notReloaded = true; }");

        var sites = new List<SiteProcess>();
        try
        {
            foreach (var name in new[] { "site-a", "site-b", "site-c" })
            {
                sites.Add(await SiteProcess.StartAsync(gateway, name, recipes, dir, claimTtl: "30s", extra: ["--keep-going", "--sources", ExampleSources()]));
            }

            // zlib's real build finishing, shown by live refresh in the page opened before it started.
            var zlibPassed = page.Locator("table.results tr[data-verdict='passed']", new() { HasText = "zlib/1.2.13" });
            await zlibPassed.First.WaitForAsync(new() { Timeout = 300_000 });
            Assert.True(await page.EvaluateAsync<bool>("() => window.notReloaded === true"), "the builds page was reloaded");

            var outcomes = new List<SiteProcess.Outcome>();
            foreach (var site in sites) outcomes.Add(await site.ExitAsync(TimeSpan.FromMinutes(10)));
            foreach (var o in outcomes)
            {
                // Exit 7: the site tried broken/1.0 and its check failed (--keep-going built the rest); everything else must have passed.
                Assert.True(o.ExitCode is 0 or ErrorCodes.BuildFailedExitCode, o.Stderr);
                Assert.All(o.Result.Packages.Where(p => p.Name != "broken"), p => Assert.True(p.Ok, $"{p.Id}: {p.Status} {p.Reason}\n{o.Stderr}"));
            }

            Assert.Contains(outcomes, o => o.Result.Packages.Any(p => p.Name == "broken" && p.Code == ErrorCodes.Name(ErrorCode.CheckFailed)));
            Assert.All(new[] { "zlib", "zversion", "stamp" }, name => Assert.Contains(outcomes, o => o.Result.Packages.Any(p => p.Name == name && p.Job == JobOutcome.Built)));
        }
        finally
        {
            foreach (var s in sites) await s.DisposeAsync();
        }

        await ProductsAndTheZlibPageAsync(page, ui);
        await GraphColoursAsync(page, ui);
        await TheFailureWithItsReasonAsync(page, ui);
        var rows = await CoherenceMatrixAsync(page, ui);

        // The same matrix without JavaScript: the page is complete as served.
        var plain = await OpenAsync(javaScript: false);
        await plain.GotoAsync(ui + "/coherence");
        Assert.Equal(rows, await plain.Locator("#matrix tbody tr").EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.product + ' ' + r.dataset.status)"));

        foreach (var url in new[] { "/", "/builds", "/coherence", "/graph", "/sites" })
        {
            await page.GotoAsync(ui + url);
            var axe = await page.RunAxe();
            var serious = axe.Violations.Where(v => v.Impact is "serious" or "critical").Select(v => $"{url}: {v.Id}: {v.Help}").ToList();
            Assert.True(serious.Count == 0, string.Join("\n", serious));
        }

        Assert.Empty(_dialogs);
    }

    private static async Task ProductsAndTheZlibPageAsync(IPage page, string ui)
    {
        await page.GotoAsync(ui + "/");
        var listed = await page.Locator("#products tbody tr").EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.product)");
        // broken/1.0 failed its check: it was never published.
        Assert.Equal([Stamp, Zlib, Zversion], listed.Order(StringComparer.Ordinal));

        await page.GetByRole(AriaRole.Link, new() { Name = "zlib/1.2.13", Exact = true }).ClickAsync();
        Assert.Equal("zlib/1.2.13", await page.Locator("h1").InnerTextAsync());
        Assert.Contains("zversion/1.0", await page.Locator("main").InnerTextAsync());
        await page.GetByRole(AriaRole.Link, new() { Name = "Build log" }).ClickAsync();
        // The real build's log, to its check: a program linked against the installed zlib ran.
        Assert.Contains("zlib 1.2.13 ok", await page.Locator("#log").InnerTextAsync());
    }

    private static async Task GraphColoursAsync(IPage page, string ui)
    {
        var expected = new Dictionary<string, string>
        {
            [Zlib] = StackStatus.UpToDate,
            [Zversion] = StackStatus.UpToDate,
            [Stamp] = StackStatus.UpToDate,
            [Broken] = StackStatus.Failed,
        };
        await page.GotoAsync(ui + "/graph");
        var nodes = page.Locator("#graph svg .node");
        Assert.Equal(expected.Count, await nodes.CountAsync());
        for (var i = 0; i < expected.Count; i++)
        {
            var product = await nodes.Nth(i).GetAttributeAsync("data-product");
            var fill = await nodes.Nth(i).Locator("rect").EvaluateAsync<string>("r => getComputedStyle(r).fill");
            Assert.True(expected.ContainsKey(product!), $"unexpected node {product}");
            Assert.Equal(BrowserTests.Rgb(GraphPage.Colours(expected[product!]).Fill), fill);
        }
    }

    private static async Task TheFailureWithItsReasonAsync(IPage page, string ui)
    {
        await page.GotoAsync(ui + "/builds");
        var failed = page.Locator("table.results tr[data-verdict='failed']", new() { HasText = "broken/1.0" });
        Assert.True(await failed.CountAsync() >= 1);
        Assert.Contains(BrokenReason, await failed.First.InnerTextAsync());
    }

    /// <summary>The matrix: the irreproducible product differs, the rest agree; returns its rows as "product status".</summary>
    private static async Task<string[]> CoherenceMatrixAsync(IPage page, string ui)
    {
        await page.GotoAsync(ui + "/coherence");
        foreach (var product in new[] { Zlib, Zversion })
        {
            var row = page.Locator($"#matrix tr[data-product='{product}']");
            Assert.Equal("agreement", await row.GetAttributeAsync("data-status"));
            var states = await row.Locator("td[data-state]").EvaluateAllAsync<string[]>("cells => cells.map(c => c.dataset.state)");
            Assert.True(states.Count(s => s == "agree") >= 2, $"{product}: {string.Join(", ", states)}");
            Assert.DoesNotContain("differ", states);
            // Two agreeing sites: promoted to stable.
            Assert.Contains("stable", await row.InnerTextAsync());
        }

        var stamp = page.Locator($"#matrix tr[data-product='{Stamp}']");
        Assert.Equal("disagreement", await stamp.GetAttributeAsync("data-status"));
        var stampStates = await stamp.Locator("td[data-state]").EvaluateAllAsync<string[]>("cells => cells.map(c => c.dataset.state)");
        Assert.Contains("differ", stampStates);
        Assert.DoesNotContain("stable", await stamp.Locator("td").Last.InnerTextAsync());
        var rows = await page.Locator("#matrix tbody tr").EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.product + ' ' + r.dataset.status)");

        // Its report names the file that differs, not the one that is the same everywhere.
        await stamp.GetByRole(AriaRole.Link).ClickAsync();
        var report = await page.Locator("main").InnerTextAsync();
        Assert.Contains("share/stamp.txt", report);
        Assert.DoesNotContain("share/fixed.txt", report);
        return rows;
    }

    private async Task<IPage> OpenAsync(bool javaScript)
    {
        var context = await chromium.Browser.NewContextAsync(new BrowserNewContextOptions { JavaScriptEnabled = javaScript });
        var page = await context.NewPageAsync();
        page.Dialog += (_, dialog) =>
        {
            lock (_dialogs) _dialogs.Add(dialog.Message);
            _ = dialog.DismissAsync();
        };
        return page;
    }

    /// <summary>
    /// zlib exactly as examples/stack has it, and three small recipes: zversion links a program against zlib, stamp
    /// writes the time and random bytes next to a fixed file, broken's check reports a failing JUnit test.
    /// </summary>
    private static string Recipes(TempDir dir)
    {
        var recipes = dir.Sub("recipes");
        var zlib = Path.Combine(recipes, "zlib");
        Directory.CreateDirectory(zlib);
        foreach (var file in Directory.GetFiles(Path.Combine(ExampleStack(), "zlib")))
        {
            File.Copy(file, Path.Combine(zlib, Path.GetFileName(file)));
        }

        Recipe(recipes, "zversion", ["zlib"], """
            printf '#include <stdio.h>\n#include <zlib.h>\nint main(void) { puts(zlibVersion()); return 0; }\n' > "$WORKSPACE/zversion.c"
            mkdir -p "$SOFT_DIR/bin"
            cc -I"$ZLIB_DIR/include" "$WORKSPACE/zversion.c" -L"$ZLIB_DIR/lib" -Wl,-rpath,"$ZLIB_DIR/lib" -lz -o "$SOFT_DIR/bin/zversion"
            """, """test "$("$SOFT_DIR/bin/zversion")" = 1.2.13""");
        Recipe(recipes, "stamp", [], """
            mkdir -p "$SOFT_DIR/share"
            echo fixed > "$SOFT_DIR/share/fixed.txt"
            { date +%s%N; head -c 16 /dev/urandom | od -An -tx1; } > "$SOFT_DIR/share/stamp.txt"
            """, """test -s "$SOFT_DIR/share/stamp.txt" """);
        Recipe(recipes, "broken", [], """
            mkdir -p "$SOFT_DIR/share"
            echo 41 > "$SOFT_DIR/share/answer"
            """, """
            mkdir -p "$WORKSPACE/junit"
            echo '<testsuite name="broken"><testcase classname="broken" name="answer"><failure message="expected 42, got 41"/></testcase></testsuite>' > "$WORKSPACE/junit/broken.xml"
            test "$(cat "$SOFT_DIR/share/answer")" = 42
            """);
        return recipes;
    }

    private static void Recipe(string recipes, string name, IReadOnlyList<string> deps, string build, string check)
    {
        var dir = Path.Combine(recipes, name);
        Directory.CreateDirectory(dir);
        static string Block(string script) => string.Join("", script.Split('\n').Select(line => "  " + line + "\n"));
        var depLine = deps.Count == 0 ? "" : $"dependencies: [{string.Join(", ", deps)}]\n";
        File.WriteAllText(Path.Combine(dir, "recipe.yml"), $"name: {name}\nversion: \"1.0\"\n{depLine}build: |\n{Block(build)}check: |\n{Block(check)}");
    }

    private static string ExampleSources() => Path.Combine(ExampleStack(), "sources");

    /// <summary>examples/stack of this source tree.</summary>
    private static string ExampleStack([System.Runtime.CompilerServices.CallerFilePath] string sourceFile = "")
    {
        for (var dir = new DirectoryInfo(Path.GetDirectoryName(sourceFile)!); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Cairn.slnx"))) return Path.Combine(dir.FullName, "examples", "stack");
        }

        throw new InvalidOperationException($"the repository root (Cairn.slnx) is not above {sourceFile}");
    }
}
