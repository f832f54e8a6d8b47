using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Gateway.Tests.Infrastructure;

namespace Cairn.Gateway.Tests;

/// <summary>The fixture itself: cairn gateway starts, answers over HTTP with a token, publishes, restarts.</summary>
public sealed class GatewayProcessSmokeTests
{
    [Fact]
    public async Task PublishesThroughARealGatewayProcessAndServesTheRepository()
    {
        await using var gateway = await GatewayProcess.StartAsync();
        await gateway.AddSiteAsync("site-a");
        var token = await gateway.IssueTokenAsync("site-a");
        using var client = gateway.Client(token.Secret);
        await using var site = new SiteWorkspace("site-a");

        var me = await client.WhoAmIAsync(CancellationToken.None);
        Assert.Equal("site-a", me.Site);

        var offer = await client.RequestJobAsync(SiteWorkspace.Job("key-1", "zlib", "1.3"), CancellationToken.None);
        Assert.Equal(JobOfferKind.Build, offer.Kind);
        var root = await site.TreeAsync(new Dictionary<string, string> { ["lib/libz.so"] = "zlib", ["include/zlib.h"] = "header" });
        var log = await site.FileAsync("build.log", "built\n");
        var upload = await site.UploadAsync(client, root, log);
        Assert.True(upload.ObjectsUploaded > 0);
        var outcome = await client.CommitAsync(site.Commit("key-1", offer.Claim!.FencingToken, "zlib", "1.3", root,
            extras: [new CommittedExtra("logs/linux-x86_64/zlib/1.3/build.log", log)]), CancellationToken.None);
        Assert.True(outcome.RepositoryWritten);
        Assert.Contains("testing", outcome.Promotions);

        var again = await client.RequestJobAsync(SiteWorkspace.Job("key-1", "zlib", "1.3"), CancellationToken.None);
        Assert.Equal(JobOfferKind.Done, again.Kind);

        using var http = new HttpClient();
        var manifest = await http.GetStringAsync(new Uri(gateway.Url, "manifest.json"));
        Assert.Contains($"\"revision\":{outcome.Revision}", manifest.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);

        await gateway.KillAsync();
        await gateway.RestartAsync();
        var coherence = await client.GetCoherenceAsync("key-1", CancellationToken.None);
        Assert.Equal(CoherenceStatus.Agreement, coherence.Report.Status);
        var verify = await Exec.CairnAsync("--repo", gateway.Repository, "verify");
        Assert.True(verify.ExitCode == 0, verify.ToString());
    }

    [Fact]
    public async Task TheGatewaySignsEveryRevisionItWritesAndClientsTrustingTheRootReadThroughIt()
    {
        using var keys = new TempDir("cairn-gw-keys");
        var signing = await SigningKeys.CreateAsync(keys.Path);
        await using var gateway = await GatewayProcess.StartAsync(new GatewayProcessOptions { SigningKey = signing.PublishingKey });
        await gateway.AddSiteAsync("site-a");
        using var client = gateway.Client((await gateway.IssueTokenAsync("site-a")).Secret);
        await using var site = new SiteWorkspace("site-a");

        var offer = await client.RequestJobAsync(SiteWorkspace.Job("key-s", "signed", "1.0"), CancellationToken.None);
        var root = await site.TreeAsync(new Dictionary<string, string> { ["readme.txt"] = "signed by the gateway" });
        await site.UploadAsync(client, root);
        var outcome = await client.CommitAsync(site.Commit("key-s", offer.Claim!.FencingToken, "signed", "1.0", root), CancellationToken.None);
        Assert.True(File.Exists(Path.Combine(gateway.Repository, "revisions", $"{outcome.Revision:D16}.sig")));

        // A client that trusts only the root reads the product through the gateway's own listener.
        var list = await Exec.CairnAsync("--repo", gateway.Url.ToString(), "list", "--trust", signing.RootPublicKey, "--cache", keys.Sub("cache"));
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains("signed", list.Stdout, StringComparison.Ordinal);
    }
}
