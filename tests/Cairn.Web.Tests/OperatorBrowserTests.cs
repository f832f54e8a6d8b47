using Deque.AxeCore.Playwright;
using Microsoft.Playwright;

namespace Cairn.Web.Tests;

/// <summary>The operator signs in with the token in Debian's chromium and promotes a key the sites agree on.</summary>
public sealed class OperatorBrowserTests(OperatorFixture fixture, BrowserFixture chromium) : IClassFixture<OperatorFixture>, IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task TheOperatorSignsInAndPromotesAKeyToStable()
    {
        await using var context = await chromium.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync(fixture.GatewayUrl + "/ui/coherence/k-agreed");
        Assert.Equal(0, await page.Locator("#operator-actions").CountAsync());

        await page.GetByRole(AriaRole.Link, new() { Name = "Operator sign-in" }).ClickAsync();
        await page.WaitForURLAsync("**/ui/login**");
        var violations = (await page.RunAxe()).Violations.Where(v => v.Impact is "serious" or "critical").Select(v => v.Id).ToList();
        Assert.Empty(violations);
        await page.GetByLabel("Operator token").FillAsync(OperatorFixture.OperatorToken);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.WaitForURLAsync("**/ui/");

        await page.GotoAsync(fixture.GatewayUrl + "/ui/coherence/k-agreed");
        violations = (await page.RunAxe()).Violations.Where(v => v.Impact is "serious" or "critical").Select(v => v.Id).ToList();
        Assert.Empty(violations);
        await page.GetByRole(AriaRole.Button, new() { Name = "Promote to stable" }).ClickAsync();
        // The action answers 303 back to this page, which then lists the promotion and offers the button no more.
        await page.GetByText("stable (", new() { Exact = false }).WaitForAsync(new() { Timeout = 20_000 });
        Assert.Equal(0, await page.GetByRole(AriaRole.Button, new() { Name = "Promote to stable" }).CountAsync());

        Assert.Contains(await fixture.Store.GetPromotionsAsync("k-agreed", CancellationToken.None), p => p.Channel == "stable");
        Assert.Contains(await fixture.Store.ListOperatorActionsAsync(0, 100, CancellationToken.None), a => a.Action is { Action: "promote", Target: "k-agreed" });
    }
}
