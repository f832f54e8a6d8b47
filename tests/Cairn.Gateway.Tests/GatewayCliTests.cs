using System.Text.Json;
using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Gateway.Tests.Infrastructure;

namespace Cairn.Gateway.Tests;

/// <summary>The operator's commands (cairn gateway site/token/policy) and cairn coherence, as real processes.</summary>
public sealed class GatewayCliTests
{
    [Fact]
    public async Task TheOperatorRegistersASiteIssuesATokenFileListsAndRevokesIt()
    {
        using var dir = new TempDir();
        await using var db = TestDatabase.Create(DatabaseKind.Sqlite);
        await Exec.CairnOkAsync("gateway", "--db", db.Url, "site", "add", "jenkins-cpt", "--platform", "linux-x86_64", "--label", "gpu");
        var tokenFile = dir.Sub("jenkins.token");
        var issued = await Exec.CairnOkAsync("gateway", "--db", db.Url, "token", "issue", "jenkins-cpt", "--path", "linux-x86_64/zlib", "--channel", "testing", "--out", tokenFile, "--json");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(tokenFile));
        var secret = (await File.ReadAllTextAsync(tokenFile)).Trim();
        Assert.StartsWith("cairn_", secret, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, issued.Stdout, StringComparison.Ordinal);
        var tokenId = JsonDocument.Parse(issued.Stdout).RootElement.GetProperty("tokenId").GetString()!;

        // The token works against the same database, with the scope given.
        await using (var store = await CoordinationDatabase.OpenAsync(db.Url, TimeProvider.System, null, CancellationToken.None))
        {
            var identity = await store.AuthenticateAsync(secret, CancellationToken.None);
            Assert.Equal("jenkins-cpt", identity.Site);
            Assert.Equal(["linux-x86_64/zlib"], identity.Scope.PathPrefixes);
        }

        var list = await Exec.CairnOkAsync("gateway", "--db", db.Url, "token", "list", "jenkins-cpt");
        Assert.Contains(tokenId, list.Stdout, StringComparison.Ordinal);
        Assert.Contains("live", list.Stdout, StringComparison.Ordinal);
        await Exec.CairnOkAsync("gateway", "--db", db.Url, "token", "revoke", tokenId);
        Assert.Contains("revoked", (await Exec.CairnOkAsync("gateway", "--db", db.Url, "token", "list", "jenkins-cpt")).Stdout, StringComparison.Ordinal);
        var again = await Exec.CairnAsync("gateway", "--db", db.Url, "token", "revoke", tokenId);
        Assert.NotEqual(0, again.ExitCode);

        await Exec.CairnOkAsync("gateway", "--db", db.Url, "policy", "set", "stable", "3");
        await using (var store = await CoordinationDatabase.OpenAsync(db.Url, TimeProvider.System, null, CancellationToken.None))
        {
            Assert.Equal(3, (await store.GetChannelPolicyAsync("stable", CancellationToken.None)).RequiredAgreeingSites);
        }

        var bad = await Exec.CairnAsync("gateway", "--db", "mysql://x", "site", "add", "s", "--platform", "linux-x86_64");
        Assert.Contains("CAIRN-E0917", bad.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CairnCoherenceShowsTheDisagreeingSiteTheFileWithItsDiffAndTheDifferingTest()
    {
        await using var gateway = await GatewayProcess.StartAsync();
        await gateway.AddSiteAsync("site-a");
        await gateway.AddSiteAsync("site-b");
        using var a = gateway.Client((await gateway.IssueTokenAsync("site-a")).Secret);
        using var b = gateway.Client((await gateway.IssueTokenAsync("site-b")).Secret);
        await using var siteA = new SiteWorkspace("site-a");
        await using var siteB = new SiteWorkspace("site-b");

        var offer = await a.RequestJobAsync(SiteWorkspace.Job("k1", "stamp", "1.0"), CancellationToken.None);
        var rootA = await siteA.TreeAsync(new Dictionary<string, string> { ["share/stamp.txt"] = "random 4\n" });
        await siteA.UploadAsync(a, rootA);
        await a.CommitAsync(siteA.Commit("k1", offer.Claim!.FencingToken, "stamp", "1.0", rootA,
            checks: new CheckOutcome(2, 0, 0, [new TestCaseResult("t-fast", TestOutcome.Passed), new TestCaseResult("t-net", TestOutcome.Passed)])), CancellationToken.None);

        var confirm = await b.RequestJobAsync(SiteWorkspace.Job("k1", "stamp", "1.0"), CancellationToken.None);
        Assert.Equal(JobOfferKind.Confirm, confirm.Kind);
        var rootB = await siteB.TreeAsync(new Dictionary<string, string> { ["share/stamp.txt"] = "random 9\n" });
        await siteB.UploadAsync(b, rootB);
        await b.CommitAsync(siteB.Commit("k1", confirm.Claim!.FencingToken, "stamp", "1.0", rootB, CommitMode.Confirm,
            checks: new CheckOutcome(1, 1, 0, [new TestCaseResult("t-fast", TestOutcome.Passed), new TestCaseResult("t-net", TestOutcome.Failed, "no network")])), CancellationToken.None);

        var text = await Exec.CairnOkAsync("coherence", "stamp", "--gateway", gateway.Url.ToString());
        Assert.Contains("DISAGREEMENT", text.Stdout, StringComparison.Ordinal);
        Assert.Contains("site-b disagrees", text.Stdout, StringComparison.Ordinal);
        Assert.Contains("share/stamp.txt", text.Stdout, StringComparison.Ordinal);
        Assert.Contains("-random 4", text.Stdout, StringComparison.Ordinal);
        Assert.Contains("+random 9", text.Stdout, StringComparison.Ordinal);
        Assert.Contains("test t-net: site-a passed, site-b failed", text.Stdout, StringComparison.Ordinal);
        Assert.Contains("test environment of site-b", text.Stdout, StringComparison.Ordinal);

        var json = await Exec.CairnOkAsync("coherence", "linux-x86_64/stamp/1.0", "--gateway", gateway.Url.ToString(), "--json");
        var reports = JsonSerializer.Deserialize(json.Stdout, CoordinationJson.Default.IReadOnlyListGatewayCoherence)!;
        var report = Assert.Single(reports);
        Assert.Equal(CoherenceStatus.Disagreement, report.Report.Status);
        Assert.Equal("share/stamp.txt", Assert.Single(Assert.Single(report.Files).Files).Path);
        Assert.DoesNotContain(report.Promotions, p => p.Channel == ChannelPolicy.Stable);
    }
}
