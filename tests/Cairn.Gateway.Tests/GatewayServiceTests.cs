using System.Net;
using System.Text.Json;
using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Gateway.Tests.Infrastructure;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Microsoft.Extensions.Time.Testing;

namespace Cairn.Gateway.Tests;

/// <summary>
/// The gateway's commit logic against a real repository directory and a real coordination database, in-process
/// (claims expire on a <see cref="FakeTimeProvider"/>; the repository's file locks use the system clock), plus the
/// HTTP statuses and a SIGKILL mid-burst through a real <c>cairn gateway</c> process. Runs on SQLite and PostgreSQL.
/// </summary>
public abstract class GatewayServiceTests : IAsyncLifetime
{
    private const string Platform = InProcessGateway.Platform;
    private InProcessGateway _gw = null!;

    protected abstract DatabaseKind Kind { get; }

    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));

    private string RepoPath => _gw.RepoPath;

    public async Task InitializeAsync() => _gw = await InProcessGateway.StartAsync("cairn-gw-svc", Kind, Time);

    public async Task DisposeAsync() => await _gw.DisposeAsync();

    private async Task<IGateway> SiteAsync(string site, IReadOnlyList<string>? paths = null, IReadOnlyList<string>? channels = null)
    {
        var token = await _gw.RegisterSiteAsync(site, new TokenScope(paths ?? ["/"], channels ?? ["*"]));
        return await _gw.Service.AuthenticateAsync(token.Secret, CancellationToken.None);
    }

    private async Task<long> HeadRevisionAsync()
    {
        await using var fresh = await DirectoryRepository.OpenAsync(RepoPath, TimeProvider.System, null, TimeSpan.FromSeconds(30), CancellationToken.None);
        return (await fresh.HeadAsync(CancellationToken.None)).Revision;
    }

    private async Task<Catalog> CatalogAsync()
    {
        await using var fresh = await DirectoryRepository.OpenAsync(RepoPath, TimeProvider.System, null, TimeSpan.FromSeconds(30), CancellationToken.None);
        return await fresh.CatalogAsync(await fresh.HeadAsync(CancellationToken.None), CancellationToken.None);
    }

    private static Dictionary<string, string> Files(string tag) => new()
    {
        ["bin/tool"] = $"#!/bin/sh\necho {tag}\n",
        ["share/doc/README"] = "a product\n",
    };

    /// <summary>Claims, uploads and commits NAME/VERSION as <paramref name="gateway"/>'s site.</summary>
    private static async Task<CommitOutcome> PublishAsync(IGateway gateway, SiteWorkspace site, string key, string name, string version, IReadOnlyDictionary<string, string> files)
    {
        var offer = await gateway.RequestJobAsync(SiteWorkspace.Job(key, name, version), CancellationToken.None);
        Assert.True(offer.Kind is JobOfferKind.Build or JobOfferKind.Confirm, offer.ToString());
        var root = await site.TreeAsync(files);
        await site.UploadAsync(gateway, root);
        return await gateway.CommitAsync(site.Commit(key, offer.Claim!.FencingToken, name, version, root,
            offer.Kind == JobOfferKind.Confirm ? CommitMode.Confirm : CommitMode.Publish), CancellationToken.None);
    }

    [Fact]
    public async Task AnUploadWhoseContentDoesNotMatchItsDigestIsRefusedAndNothingIsStored()
    {
        var gateway = await SiteAsync("site-a");
        var claimed = Digest.Of("what the site says it sends"u8);
        var sent = "what it actually sends"u8.ToArray();

        var e = await Assert.ThrowsAsync<CairnException>(() => gateway.PutObjectAsync(claimed, sent, CancellationToken.None));
        Assert.Equal(ErrorCode.GatewayObjectMismatch, e.Code);
        Assert.Contains(claimed.ToString(), e.Message, StringComparison.Ordinal);
        var missing = await gateway.MissingObjectsAsync([claimed, Digest.Of(sent)], CancellationToken.None);
        Assert.Equal(2, missing.Count);

        // The same bytes under their own digest are accepted (and then no longer missing).
        await gateway.PutObjectAsync(Digest.Of(sent), sent, CancellationToken.None);
        Assert.Equal([claimed], await gateway.MissingObjectsAsync([claimed, Digest.Of(sent)], CancellationToken.None));
    }

    [Fact]
    public async Task AnObjectLargerThanTheCapIsRefused()
    {
        await using var capped = new GatewayService(_gw.Store, _gw.Repository, new GatewayOptions { MaxObjectSize = 1000 });
        await _gw.Store.RegisterSiteAsync("site-a", new SiteCapabilities(Platform, null, []), CancellationToken.None);
        var token = await _gw.Store.IssueTokenAsync("site-a", TokenScope.Everything, CancellationToken.None);
        var gateway = capped.For(await _gw.Store.AuthenticateAsync(token.Secret, CancellationToken.None));
        var big = new byte[1001];
        var e = await Assert.ThrowsAsync<CairnException>(() => gateway.PutObjectAsync(Digest.Of(big), big, CancellationToken.None));
        Assert.Equal(ErrorCode.GatewayObjectTooLarge, e.Code);
    }

    [Fact]
    public async Task ACommitNamingAnObjectThatWasNeverUploadedIsRefusedAndNothingIsWritten()
    {
        var gateway = await SiteAsync("site-a");
        await using var site = new SiteWorkspace("site-a");
        var offer = await gateway.RequestJobAsync(SiteWorkspace.Job("k1", "zlib", "1.3"), CancellationToken.None);
        var root = await site.TreeAsync(Files("zlib"));
        var all = await Cairn.Gateway.Client.ObjectUploader.ReachableAsync(site.Objects, [root], CancellationToken.None);
        var withheld = all[^1];
        foreach (var d in all.Where(d => d != withheld))
        {
            await gateway.PutObjectAsync(d, await site.Objects.GetAsync(d, CancellationToken.None), CancellationToken.None);
        }

        var before = await HeadRevisionAsync();
        var e = await Assert.ThrowsAsync<CairnException>(() => gateway.CommitAsync(site.Commit("k1", offer.Claim!.FencingToken, "zlib", "1.3", root), CancellationToken.None));
        Assert.Equal(ErrorCode.GatewayObjectsMissing, e.Code);
        Assert.Contains(withheld.ToString(), e.Message, StringComparison.Ordinal);
        Assert.Equal(before, await HeadRevisionAsync());
        Assert.Empty(await _gw.Store.ListCommitsAsync(0, 10, CancellationToken.None));

        // Uploading it and committing again (the claim is still live) publishes.
        await site.UploadAsync(gateway, root);
        var outcome = await gateway.CommitAsync(site.Commit("k1", offer.Claim!.FencingToken, "zlib", "1.3", root), CancellationToken.None);
        Assert.True(outcome.RepositoryWritten);
        Assert.Equal(root.Digest, (await CatalogAsync()).Find(Platform, new ProductRef("zlib", "1.3"))!.Root);
    }

    [Fact]
    public async Task AnUploadCollectedByGcBeforeItsCommitFailsClearlyAndARetryAfterReuploadLands()
    {
        var gateway = await SiteAsync("site-a");
        await using var site = new SiteWorkspace("site-a");
        var offer = await gateway.RequestJobAsync(SiteWorkspace.Job("k1", "zlib", "1.3"), CancellationToken.None);
        var root = await site.TreeAsync(Files("zlib"));
        await site.UploadAsync(gateway, root);

        // cairn gc in another process: the uploads are referenced by no revision yet, so they go.
        await using (var other = await DirectoryRepository.OpenAsync(RepoPath, TimeProvider.System, null, TimeSpan.FromSeconds(60), CancellationToken.None))
        {
            var gc = await new GarbageCollector(other).CollectAsync(5, dryRun: false, CancellationToken.None);
            Assert.True(gc.Objects.ObjectsDeleted > 0);
        }

        var e = await Assert.ThrowsAsync<CairnException>(() => gateway.CommitAsync(site.Commit("k1", offer.Claim!.FencingToken, "zlib", "1.3", root), CancellationToken.None));
        Assert.Equal(ErrorCode.GatewayObjectsMissing, e.Code);
        Assert.Contains("gc", e.Hint, StringComparison.Ordinal);

        var reuploaded = await site.UploadAsync(gateway, root);
        Assert.True(reuploaded.ObjectsUploaded > 0);
        var outcome = await gateway.CommitAsync(site.Commit("k1", offer.Claim!.FencingToken, "zlib", "1.3", root), CancellationToken.None);
        Assert.True(outcome.RepositoryWritten);
        var verify = await Exec.CairnAsync("--repo", RepoPath, "verify");
        Assert.True(verify.ExitCode == 0, verify.ToString());
    }

    [Fact]
    public async Task AStaleFencingTokenIsRefusedAndNothingIsWritten()
    {
        var a = await SiteAsync("site-a");
        var b = await SiteAsync("site-b");
        await using var siteA = new SiteWorkspace("site-a");
        var offer = await a.RequestJobAsync(SiteWorkspace.Job("k1", "zlib", "1.3", ttl: TimeSpan.FromMinutes(1)), CancellationToken.None);
        Assert.Equal(JobOfferKind.Build, offer.Kind);
        var root = await siteA.TreeAsync(Files("late"));
        await siteA.UploadAsync(a, root);

        // site-a freezes past its TTL; site-b takes the job.
        Time.Advance(TimeSpan.FromMinutes(2));
        var taken = await b.RequestJobAsync(SiteWorkspace.Job("k1", "zlib", "1.3"), CancellationToken.None);
        Assert.Equal(JobOfferKind.Build, taken.Kind);
        Assert.True(taken.Claim!.FencingToken > offer.Claim!.FencingToken);

        var before = await HeadRevisionAsync();
        var e = await Assert.ThrowsAsync<CairnException>(() => a.CommitAsync(siteA.Commit("k1", offer.Claim.FencingToken, "zlib", "1.3", root), CancellationToken.None));
        Assert.Equal(ErrorCode.ClaimLost, e.Code);
        Assert.Equal(before, await HeadRevisionAsync());
        Assert.Null((await CatalogAsync()).Find(Platform, new ProductRef("zlib", "1.3")));
        Assert.Empty(await _gw.Store.ListCommitsAsync(0, 10, CancellationToken.None));
        Assert.Empty(await _gw.Store.GetResultsAsync("k1", CancellationToken.None));
    }

    [Fact]
    public async Task ConcurrentCommitsFromSeveralSitesOnDifferentProductsAllLand()
    {
        const int sites = 4, each = 3;
        var gateways = new List<(IGateway Gateway, SiteWorkspace Site)>();
        for (var i = 0; i < sites; i++) gateways.Add((await SiteAsync($"site-{i}"), new SiteWorkspace($"site-{i}")));
        try
        {
            await Task.WhenAll(gateways.Select((g, i) => Task.Run(async () =>
            {
                for (var j = 0; j < each; j++)
                {
                    var outcome = await PublishAsync(g.Gateway, g.Site, $"key-{i}-{j}", $"pkg{i}x{j}", "1.0", Files($"{i}/{j}"));
                    Assert.True(outcome.RepositoryWritten);
                }
            })));
        }
        finally
        {
            foreach (var (_, s) in gateways) await s.DisposeAsync();
        }

        var catalog = await CatalogAsync();
        Assert.Equal(sites * each, catalog.Products.Count);
        Assert.Equal(1 + (sites * each), await HeadRevisionAsync());
        var commits = await _gw.Store.ListCommitsAsync(0, 100, CancellationToken.None);
        Assert.Equal(sites * each, commits.Count);
        Assert.Equal(sites * each, commits.Select(c => c.Commit.Revision).Distinct().Count());
        var verify = await Exec.CairnAsync("--repo", RepoPath, "verify");
        Assert.True(verify.ExitCode == 0, verify.ToString());
    }

    [Fact]
    public async Task TwoSitesWithDifferentOutputsDisagreeTheReportNamesTheFileWithATextDiffAndStableIsRefused()
    {
        var a = await SiteAsync("site-a");
        var b = await SiteAsync("site-b");
        await using var siteA = new SiteWorkspace("site-a");
        await using var siteB = new SiteWorkspace("site-b");
        var first = await PublishAsync(a, siteA, "k1", "clock", "1.0", new Dictionary<string, string> { ["share/stamp.txt"] = "built at 10:00\nsame line\n", ["bin/x"] = "x" });
        Assert.Contains(ChannelPolicy.Testing, first.Promotions);

        var offer = await b.RequestJobAsync(SiteWorkspace.Job("k1", "clock", "1.0"), CancellationToken.None);
        Assert.Equal(JobOfferKind.Confirm, offer.Kind);
        var root = await siteB.TreeAsync(new Dictionary<string, string> { ["share/stamp.txt"] = "built at 10:07\nsame line\n", ["bin/x"] = "x" });
        await siteB.UploadAsync(b, root);
        var outcome = await b.CommitAsync(siteB.Commit("k1", offer.Claim!.FencingToken, "clock", "1.0", root, CommitMode.Confirm), CancellationToken.None);
        Assert.False(outcome.RepositoryWritten);
        Assert.Equal(CoherenceStatus.Disagreement, outcome.Coherence);
        Assert.DoesNotContain(ChannelPolicy.Stable, outcome.Promotions);

        var report = await b.GetCoherenceAsync("k1", CancellationToken.None);
        Assert.Equal(CoherenceStatus.Disagreement, report.Report.Status);
        var differing = Assert.Single(report.Files);
        var file = Assert.Single(differing.Files);
        Assert.Equal("share/stamp.txt", file.Path);
        Assert.Contains("-built at 10:00", file.TextDiff, StringComparison.Ordinal);
        Assert.Contains("+built at 10:07", file.TextDiff, StringComparison.Ordinal);
        Assert.DoesNotContain(report.Promotions, p => p.Channel == ChannelPolicy.Stable);
        Assert.Equal(JobOfferKind.Done, (await a.RequestJobAsync(SiteWorkspace.Job("k1", "clock", "1.0"), CancellationToken.None)).Kind);

        var byProduct = await _gw.Service.FindCoherenceAsync("clock", CancellationToken.None);
        Assert.Equal("k1", Assert.Single(byProduct).Report.BuildKey);
    }

    [Fact]
    public async Task ASecondAgreeingSitePromotesToStable()
    {
        var a = await SiteAsync("site-a");
        var b = await SiteAsync("site-b");
        await using var siteA = new SiteWorkspace("site-a");
        await using var siteB = new SiteWorkspace("site-b");
        var first = await PublishAsync(a, siteA, "k1", "zlib", "1.3", Files("same"));
        Assert.Equal([ChannelPolicy.Testing], first.Promotions);
        var revision = await HeadRevisionAsync();

        var second = await PublishAsync(b, siteB, "k1", "zlib", "1.3", Files("same"));
        Assert.False(second.RepositoryWritten);
        Assert.Equal(CoherenceStatus.Agreement, second.Coherence);
        Assert.Contains(ChannelPolicy.Stable, second.Promotions);
        Assert.Equal(revision, await HeadRevisionAsync());

        // Nothing more is wanted from anyone.
        var c = await SiteAsync("site-c");
        Assert.Equal(JobOfferKind.Done, (await c.RequestJobAsync(SiteWorkspace.Job("k1", "zlib", "1.3"), CancellationToken.None)).Kind);
    }

    [Fact]
    public async Task ATokenOutsideItsScopeGets403NamingTheScopeAndARevokedOne401()
    {
        await using var gateway = await GatewayProcess.StartAsync(new GatewayProcessOptions { Database = Kind });
        await gateway.AddSiteAsync("site-a");
        var narrow = await gateway.IssueTokenAsync("site-a", ["linux-x86_64/zlib"], ["testing"]);
        using var http = new HttpClient();

        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(gateway.Url, "v1/jobs"))
        {
            Content = new StringContent(JsonSerializer.Serialize(SiteWorkspace.Job("k1", "hdf5", "1.14"), CoordinationJson.Default.JobRequest), System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new("Bearer", narrow.Secret);
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        var error = JsonSerializer.Deserialize(await response.Content.ReadAsStringAsync(), CoordinationJson.Default.GatewayError)!;
        Assert.Equal("CAIRN-E0903", error.Code);
        Assert.Equal(nameof(ErrorCode.TokenOutOfScope), error.Name);
        Assert.Contains("linux-x86_64/hdf5/1.14", error.Message, StringComparison.Ordinal);
        Assert.Contains("paths [linux-x86_64/zlib], channels [testing]", error.Message, StringComparison.Ordinal);

        using var client = gateway.Client(narrow.Secret);
        var inScope = await client.RequestJobAsync(SiteWorkspace.Job("k2", "zlib", "1.3"), CancellationToken.None);
        Assert.Equal(JobOfferKind.Build, inScope.Kind);
        var e = await Assert.ThrowsAsync<CairnException>(() => client.RequestJobAsync(SiteWorkspace.Job("k1", "hdf5", "1.14"), CancellationToken.None));
        Assert.Equal(ErrorCode.TokenOutOfScope, e.Code);

        Assert.True(await gateway.RevokeTokenAsync(narrow.TokenId));
        using var revoked = new HttpRequestMessage(HttpMethod.Get, new Uri(gateway.Url, "v1/whoami"));
        revoked.Headers.Authorization = new("Bearer", narrow.Secret);
        using var answer = await http.SendAsync(revoked);
        Assert.Equal(HttpStatusCode.Unauthorized, answer.StatusCode);
        Assert.Contains("CAIRN-E0902", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var r = await Assert.ThrowsAsync<CairnException>(() => client.WhoAmIAsync(CancellationToken.None));
        Assert.Equal(ErrorCode.TokenRevoked, r.Code);

        using var anonymous = await http.GetAsync(new Uri(gateway.Url, "v1/whoami"));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        // Coherence reports are public.
        using var report = await http.GetAsync(new Uri(gateway.Url, "v1/coherence/k2"));
        Assert.Equal(HttpStatusCode.OK, report.StatusCode);
    }

    [Fact]
    public async Task AGatewayKilledMidBurstOfCommitsRestartsConsistentWithEveryAcknowledgedCommit()
    {
        await using var gateway = await GatewayProcess.StartAsync(new GatewayProcessOptions { Database = Kind, ExtraArguments = ["--lease-ttl", "5"] });
        var acknowledged = new System.Collections.Concurrent.ConcurrentDictionary<string, Digest>();
        var sites = new List<(Cairn.Gateway.Client.GatewayClient Client, SiteWorkspace Site)>();
        for (var i = 0; i < 3; i++)
        {
            await gateway.AddSiteAsync($"site-{i}");
            var token = await gateway.IssueTokenAsync($"site-{i}");
            sites.Add((gateway.Client(token.Secret), new SiteWorkspace($"site-{i}")));
        }

        using var stop = new CancellationTokenSource();
        var enough = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            var burst = sites.Select((s, i) => Task.Run(async () =>
            {
                for (var j = 0; !stop.IsCancellationRequested && j < 200; j++)
                {
                    var name = $"p{i}x{j}";
                    try
                    {
                        var outcome = await PublishAsync(s.Client, s.Site, $"key-{name}", name, "1.0", Files(name));
                        acknowledged[name] = (await s.Site.TreeAsync(Files(name))).Digest;
                        if (acknowledged.Count >= 6) enough.TrySetResult();
                    }
                    catch (CairnException e) when (e.Code is ErrorCode.GatewayUnavailable or ErrorCode.GatewayProtocol)
                    {
                        return;
                    }
                }
            })).ToList();

            await enough.Task.WaitAsync(TimeSpan.FromMinutes(2));
            await gateway.KillAsync();
            stop.Cancel();
            await Task.WhenAll(burst);
        }
        finally
        {
            foreach (var (c, s) in sites)
            {
                c.Dispose();
                await s.DisposeAsync();
            }
        }

        await gateway.RestartAsync();
        var verify = await Exec.CairnAsync("--repo", gateway.Repository, "verify");
        Assert.True(verify.ExitCode == 0, verify.ToString());
        await using var repo = await DirectoryRepository.OpenAsync(gateway.Repository, TimeProvider.System, null, TimeSpan.FromSeconds(60), CancellationToken.None);
        var catalog = await repo.CatalogAsync(await repo.HeadAsync(CancellationToken.None), CancellationToken.None);
        Assert.True(acknowledged.Count >= 6);
        foreach (var (name, root) in acknowledged)
        {
            var record = catalog.Find(Platform, new ProductRef(name, "1.0"));
            Assert.True(record is not null, $"acknowledged commit of {name} is not in the catalog");
            Assert.Equal(root, record.Root);
        }

        // Every product in the catalog is whole: every file of its tree reads back with the content its site sent
        // (acknowledged or not: a commit the kill cut off after it landed is in the catalog too).
        Assert.NotEmpty(catalog.Products);
        foreach (var p in catalog.Products)
        {
            var read = new SortedDictionary<string, string>(StringComparer.Ordinal);
            await foreach (var (relative, entry) in repo.Trees.WalkAsync(p.Root, CancellationToken.None))
            {
                if (!entry.IsFile) continue;
                using var content = new MemoryStream();
                await repo.Trees.CopyContentAsync(entry, content, CancellationToken.None);
                read[relative] = System.Text.Encoding.UTF8.GetString(content.ToArray());
            }

            Assert.Equal(new SortedDictionary<string, string>(Files(p.Name), StringComparer.Ordinal), read);
        }

        // The restarted gateway takes commits again.
        var token2 = await gateway.IssueTokenAsync("site-0");
        using var client = gateway.Client(token2.Secret);
        await using var site = new SiteWorkspace("site-0");
        var after = await PublishAsync(client, site, "key-after", "after", "1.0", Files("after"));
        Assert.True(after.RepositoryWritten);
    }
}

public sealed class SqliteGatewayServiceTests : GatewayServiceTests
{
    protected override DatabaseKind Kind => DatabaseKind.Sqlite;
}

public sealed class PostgreSqlGatewayServiceTests : GatewayServiceTests
{
    protected override DatabaseKind Kind => DatabaseKind.PostgreSql;
}
