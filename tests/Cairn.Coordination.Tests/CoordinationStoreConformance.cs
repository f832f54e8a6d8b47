using Cairn.Core;
using Microsoft.Extensions.Time.Testing;

namespace Cairn.Coordination.Tests;

/// <summary>
/// What every <see cref="ICoordinationStore"/> must do. A backend's subclass provides a fresh database per test
/// and can open several stores on it (separate connections or pools, as separate gateway processes would).
/// Expiry runs on a <see cref="FakeTimeProvider"/>: no test waits for a TTL.
/// </summary>
public abstract class CoordinationStoreConformance : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly List<ICoordinationStore> _opened = [];

    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));

    protected ICoordinationStore Store { get; private set; } = null!;

    /// <summary>Creates the empty database this test uses.</summary>
    protected abstract Task CreateDatabaseAsync();

    protected abstract Task DropDatabaseAsync();

    /// <summary>A new store (own connections) on this test's database; not migrated.</summary>
    protected abstract ICoordinationStore NewStore(TimeProvider time);

    /// <summary>Runs SQL on this test's database directly, to set up states the interface cannot make.</summary>
    protected abstract Task ExecuteSqlAsync(string sql);

    public async Task InitializeAsync()
    {
        await CreateDatabaseAsync();
        Store = await OpenAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var store in _opened)
        {
            await store.DisposeAsync();
        }

        await DropDatabaseAsync();
    }

    protected async Task<ICoordinationStore> OpenAsync(TimeProvider? time = null)
    {
        var store = NewStore(time ?? Time);
        _opened.Add(store);
        await store.MigrateAsync(None);
        return store;
    }

    private static readonly SiteCapabilities Linux = new("linux-x86_64", "debian/12", ["gpu", "big-memory"]);

    private Task<Site> SiteAsync(string name, SiteCapabilities? caps = null) => Store.RegisterSiteAsync(name, caps ?? Linux, None);

    private static Digest D(string text) => Digest.Of(System.Text.Encoding.UTF8.GetBytes(text));

    private static BuildResult Result(string site, Digest? root, int failed = 0, IReadOnlyList<TestCaseResult>? tests = null, string key = "key-zlib") =>
        new(key, site, "linux-x86_64/zlib/1.2.13", root, new CheckOutcome(failed == 0 ? 3 : 3 - failed, failed, 0, tests),
            $"{site}: debian/12 kernel 6.1", TimeSpan.FromSeconds(42), $"logs/linux-x86_64/zlib/1.2.13/build.log#{site}");

    // ---- schema

    [Fact]
    public async Task MigrationsRerunIdempotently()
    {
        var before = await Store.GetAppliedMigrationsAsync(None);
        Assert.NotEmpty(before);
        Assert.Equal(Enumerable.Range(1, before.Count), before.Select(m => m.Version));
        await SiteAsync("a");

        await Store.MigrateAsync(None);
        await Store.MigrateAsync(None);

        // Several processes starting at once each migrate: nothing fails, nothing is applied twice.
        var others = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => OpenAsync())));
        Assert.Equal(before, await others[0].GetAppliedMigrationsAsync(None));
        Assert.Equal(before, await Store.GetAppliedMigrationsAsync(None));
        Assert.NotNull(await Store.GetSiteAsync("a", None));
    }

    [Fact]
    public async Task ADatabaseMigratedByANewerCairnIsRefused()
    {
        await ExecuteSqlAsync("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'from_the_future', 0)");
        await using var store = NewStore(Time);
        var e = await Assert.ThrowsAsync<CairnException>(() => store.MigrateAsync(None));
        Assert.Equal(ErrorCode.CoordinationSchemaTooNew, e.Code);
        Assert.Contains("999", e.Message, StringComparison.Ordinal);
    }

    // ---- sites and tokens

    [Fact]
    public async Task SitesRegisterAndUpdateCapabilities()
    {
        var first = await SiteAsync("jenkins-cpt");
        Assert.Equal(["big-memory", "gpu"], first.Capabilities.Labels);
        Time.Advance(TimeSpan.FromMinutes(1));
        var updated = await Store.RegisterSiteAsync("jenkins-cpt", new SiteCapabilities("linux-aarch64", null, []), None);
        Assert.Equal("linux-aarch64", updated.Capabilities.Platform);
        Assert.Null(updated.Capabilities.Environment);
        Assert.Equal(first.RegisteredAt, updated.RegisteredAt);
        Assert.True(updated.UpdatedAt > first.UpdatedAt);
        await SiteAsync("gitlab-jhb");
        Assert.Equal(["gitlab-jhb", "jenkins-cpt"], (await Store.ListSitesAsync(None)).Select(s => s.Name));
        Assert.Null(await Store.GetSiteAsync("nobody", None));
        Assert.Equal(ErrorCode.Usage, (await Assert.ThrowsAsync<CairnException>(() => Store.RegisterSiteAsync("bad name", Linux, None))).Code);
    }

    [Fact]
    public async Task TokensAreScopedToPathPrefixesAndChannelsAndRevocable()
    {
        await SiteAsync("a");
        var issued = await Store.IssueTokenAsync("a", new TokenScope(["linux-x86_64/zlib", "/linux-x86_64/libpng/"], [ChannelPolicy.Testing]), None);
        Assert.StartsWith(SiteTokens.Prefix, issued.Secret, StringComparison.Ordinal);

        var identity = await Store.AuthenticateAsync(issued.Secret, None);
        Assert.Equal("a", identity.Site);
        Assert.Equal(issued.TokenId, identity.TokenId);
        identity.AuthorizePaths(["linux-x86_64/zlib/1.2.13", "linux-x86_64/libpng/1.6.43/lib"]);
        identity.AuthorizeChannel(ChannelPolicy.Testing);

        // Prefixes are whole components: zlib does not cover zlib-ng.
        var outside = await Assert.ThrowsAsync<CairnException>(() => Task.Run(() => identity.AuthorizePaths(["linux-x86_64/zlib-ng/2.0", "linux-x86_64/zlib/1.3"])));
        Assert.Equal(ErrorCode.TokenOutOfScope, outside.Code);
        Assert.Contains("linux-x86_64/zlib-ng/2.0", outside.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("zlib/1.3", outside.Message, StringComparison.Ordinal);
        Assert.Contains("linux-x86_64/zlib, linux-x86_64/libpng", outside.Message, StringComparison.Ordinal);
        var channel = Assert.Throws<CairnException>(() => identity.AuthorizeChannel(ChannelPolicy.Stable));
        Assert.Equal(ErrorCode.TokenOutOfScope, channel.Code);
        Assert.Contains("channels [testing]", channel.Message, StringComparison.Ordinal);

        // A wrong secret with a real id, and garbage, are both just invalid.
        var forged = issued.Secret[..^4] + "AAAA";
        Assert.Equal(ErrorCode.TokenInvalid, (await Assert.ThrowsAsync<CairnException>(() => Store.AuthenticateAsync(forged, None))).Code);
        Assert.Equal(ErrorCode.TokenInvalid, (await Assert.ThrowsAsync<CairnException>(() => Store.AuthenticateAsync("hunter2", None))).Code);

        var everything = await Store.IssueTokenAsync("a", TokenScope.Everything, None);
        var all = await Store.AuthenticateAsync(everything.Secret, None);
        all.AuthorizePaths(["linux-aarch64/anything/1"]);
        all.AuthorizeChannel("nightly");

        Assert.True(await Store.RevokeTokenAsync(issued.TokenId, None));
        Assert.False(await Store.RevokeTokenAsync(issued.TokenId, None));
        var revoked = await Assert.ThrowsAsync<CairnException>(() => Store.AuthenticateAsync(issued.Secret, None));
        Assert.Equal(ErrorCode.TokenRevoked, revoked.Code);
        Assert.Contains(issued.TokenId, revoked.Message, StringComparison.Ordinal);
        await Store.AuthenticateAsync(everything.Secret, None); // the other token still works

        var tokens = await Store.ListTokensAsync("a", None);
        Assert.Equal(2, tokens.Count);
        Assert.NotNull(tokens.Single(t => t.TokenId == issued.TokenId).RevokedAt);
        Assert.Null(tokens.Single(t => t.TokenId == everything.TokenId).RevokedAt);

        Assert.Equal(ErrorCode.SiteUnknown, (await Assert.ThrowsAsync<CairnException>(() => Store.IssueTokenAsync("ghost", TokenScope.Everything, None))).Code);
    }

    // ---- claims

    [Fact]
    public async Task OneLiveClaimPerKeyUnderContention()
    {
        const int contenders = 20;
        for (var i = 0; i < contenders; i++)
        {
            await SiteAsync($"site-{i}");
        }

        // Each contender has its own store, hence its own connections, as separate gateway processes would.
        var stores = new ICoordinationStore[contenders];
        for (var i = 0; i < contenders; i++)
        {
            stores[i] = await OpenAsync();
        }

        using var start = new ManualResetEventSlim();
        var attempts = Enumerable.Range(0, contenders).Select(i => Task.Run(async () =>
        {
            start.Wait();
            return await stores[i].TryClaimAsync("key-contended", $"site-{i}", TimeSpan.FromMinutes(5), null, None);
        })).ToList();
        start.Set();
        var results = await Task.WhenAll(attempts);

        var winner = Assert.Single(results, r => r.Granted);
        Assert.All(results, r => Assert.Equal(winner.Claim, r.Claim));
        Assert.Equal(winner.Claim, await Store.GetClaimAsync("key-contended", None));
    }

    [Fact]
    public async Task EveryKeyIsGrantedOnceWhenManySitesClaimManyKeys()
    {
        const int sites = 6, keys = 40;
        var stores = new List<ICoordinationStore>();
        for (var i = 0; i < sites; i++)
        {
            await SiteAsync($"site-{i}");
            stores.Add(await OpenAsync());
        }

        var granted = await Task.WhenAll(stores.Select((store, i) => Task.Run(async () =>
        {
            var mine = new List<Claim>();
            foreach (var k in Enumerable.Range(0, keys).OrderBy(_ => Random.Shared.Next()))
            {
                var r = await store.TryClaimAsync($"key-{k}", $"site-{i}", TimeSpan.FromMinutes(5), null, None);
                if (r.Granted) mine.Add(r.Claim);
            }

            return mine;
        })));

        var all = granted.SelectMany(g => g).ToList();
        Assert.Equal(keys, all.Count);
        Assert.Equal(keys, all.Select(c => c.BuildKey).Distinct().Count());
        Assert.Equal(keys, all.Select(c => c.FencingToken).Distinct().Count());
    }

    [Fact]
    public async Task ExpiredClaimIsTakenByAnotherSiteWithAHigherFencingToken()
    {
        await SiteAsync("a");
        await SiteAsync("b");
        var a = await Store.TryClaimAsync("key-1", "a", TimeSpan.FromMinutes(5), null, None);
        Assert.True(a.Granted);

        Time.Advance(TimeSpan.FromMinutes(4));
        var early = await Store.TryClaimAsync("key-1", "b", TimeSpan.FromMinutes(5), null, None);
        Assert.False(early.Granted);
        Assert.Equal("a", early.Claim.Site);

        Time.Advance(TimeSpan.FromMinutes(1)); // exactly at expiry: dead
        Assert.Null(await Store.GetClaimAsync("key-1", None));
        var b = await Store.TryClaimAsync("key-1", "b", TimeSpan.FromMinutes(5), null, None);
        Assert.True(b.Granted);
        Assert.Equal("b", b.Claim.Site);
        Assert.True(b.Claim.FencingToken > a.Claim.FencingToken);
        Assert.Equal(Time.GetUtcNow() + TimeSpan.FromMinutes(5), b.Claim.ExpiresAt);
    }

    [Fact]
    public async Task LateCommitWithAStaleFencingTokenIsRefused()
    {
        await SiteAsync("a");
        await SiteAsync("b");
        var a = (await Store.TryClaimAsync("key-1", "a", TimeSpan.FromMinutes(5), null, None)).Claim;
        Assert.Equal(a, await Store.ValidateFencingTokenAsync("key-1", "a", a.FencingToken, None));

        // a freezes past its TTL; nobody has taken the job yet, but a's claim is already gone.
        Time.Advance(TimeSpan.FromMinutes(6));
        var expired = await Assert.ThrowsAsync<CairnException>(() => Store.ValidateFencingTokenAsync("key-1", "a", a.FencingToken, None));
        Assert.Equal(ErrorCode.ClaimLost, expired.Code);
        Assert.Contains("expired", expired.Message, StringComparison.Ordinal);

        var b = (await Store.TryClaimAsync("key-1", "b", TimeSpan.FromMinutes(5), null, None)).Claim;
        var taken = await Assert.ThrowsAsync<CairnException>(() => Store.ValidateFencingTokenAsync("key-1", "a", a.FencingToken, None));
        Assert.Equal(ErrorCode.ClaimLost, taken.Code);
        Assert.Contains($"site b holds it now with fencing token {b.FencingToken}", taken.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorCode.ClaimLost, (await Assert.ThrowsAsync<CairnException>(() => Store.HeartbeatAsync("key-1", "a", a.FencingToken, TimeSpan.FromMinutes(5), None))).Code);
        Assert.False(await Store.ReleaseAsync("key-1", "a", a.FencingToken, None));

        // b's token is good; b's token used by a is not.
        await Store.ValidateFencingTokenAsync("key-1", "b", b.FencingToken, None);
        Assert.Equal(ErrorCode.ClaimLost, (await Assert.ThrowsAsync<CairnException>(() => Store.ValidateFencingTokenAsync("key-1", "a", b.FencingToken, None))).Code);
    }

    [Fact]
    public async Task HeartbeatExtendsTheClaim()
    {
        await SiteAsync("a");
        await SiteAsync("b");
        var claim = (await Store.TryClaimAsync("key-1", "a", TimeSpan.FromMinutes(1), null, None)).Claim;
        for (var i = 0; i < 5; i++)
        {
            Time.Advance(TimeSpan.FromSeconds(50));
            var beat = await Store.HeartbeatAsync("key-1", "a", claim.FencingToken, TimeSpan.FromMinutes(1), None);
            Assert.Equal(Time.GetUtcNow() + TimeSpan.FromMinutes(1), beat.ExpiresAt);
            Assert.Equal(claim.FencingToken, beat.FencingToken);
            Assert.False((await Store.TryClaimAsync("key-1", "b", TimeSpan.FromMinutes(1), null, None)).Granted);
        }

        await Store.ValidateFencingTokenAsync("key-1", "a", claim.FencingToken, None);
        Time.Advance(TimeSpan.FromSeconds(61));
        Assert.True((await Store.TryClaimAsync("key-1", "b", TimeSpan.FromMinutes(1), null, None)).Granted);
    }

    [Fact]
    public async Task ReleaseFreesTheJobAndASiteCannotClaimTwice()
    {
        await SiteAsync("a");
        await SiteAsync("b");
        var a = (await Store.TryClaimAsync("key-1", "a", TimeSpan.FromMinutes(5), null, None)).Claim;
        var again = await Store.TryClaimAsync("key-1", "a", TimeSpan.FromMinutes(5), null, None);
        Assert.False(again.Granted);
        Assert.Equal(a, again.Claim);

        Assert.False(await Store.ReleaseAsync("key-1", "b", a.FencingToken, None));
        Assert.False(await Store.ReleaseAsync("key-1", "a", a.FencingToken + 1000, None));
        Assert.True(await Store.ReleaseAsync("key-1", "a", a.FencingToken, None));
        Assert.False(await Store.ReleaseAsync("key-1", "a", a.FencingToken, None));
        Assert.Null(await Store.GetClaimAsync("key-1", None));
        Assert.Equal(ErrorCode.ClaimLost, (await Assert.ThrowsAsync<CairnException>(() => Store.ValidateFencingTokenAsync("key-1", "a", a.FencingToken, None))).Code);

        var b = await Store.TryClaimAsync("key-1", "b", TimeSpan.FromMinutes(5), null, None);
        Assert.True(b.Granted);
        Assert.True(b.Claim.FencingToken > a.FencingToken);
    }

    [Fact]
    public async Task AJobGoesOnlyToASiteWhoseCapabilitiesMatch()
    {
        await SiteAsync("x86-gpu");
        await SiteAsync("arm", new SiteCapabilities("linux-aarch64", "debian/12", []));
        await SiteAsync("x86-plain", new SiteCapabilities("linux-x86_64", "debian/11", []));
        var job = new JobRequirements("linux-x86_64", "debian/12", ["gpu"]);

        async Task<CairnException> Refused(string site) =>
            await Assert.ThrowsAsync<CairnException>(() => Store.TryClaimAsync("key-1", site, TimeSpan.FromMinutes(5), job, None));

        var platform = await Refused("arm");
        Assert.Equal(ErrorCode.CapabilityMismatch, platform.Code);
        Assert.Contains("platform linux-x86_64", platform.Message, StringComparison.Ordinal);
        var environment = await Refused("x86-plain");
        Assert.Equal(ErrorCode.CapabilityMismatch, environment.Code);
        Assert.Contains("debian/12", environment.Message, StringComparison.Ordinal);
        await Store.RegisterSiteAsync("x86-plain", new SiteCapabilities("linux-x86_64", "debian/12", ["big-memory"]), None);
        Assert.Contains("label(s) gpu", (await Refused("x86-plain")).Message, StringComparison.Ordinal);
        Assert.Null(await Store.GetClaimAsync("key-1", None));

        Assert.True((await Store.TryClaimAsync("key-1", "x86-gpu", TimeSpan.FromMinutes(5), job, None)).Granted);
        Assert.True((await Store.TryClaimAsync("key-2", "arm", TimeSpan.FromMinutes(5), new JobRequirements("linux-aarch64"), None)).Granted);
        Assert.Equal(ErrorCode.SiteUnknown, (await Assert.ThrowsAsync<CairnException>(() => Store.TryClaimAsync("key-3", "ghost", TimeSpan.FromMinutes(5), null, None))).Code);
    }

    // ---- leases

    [Fact]
    public async Task OverlappingLeasesAreSerialisedAndDisjointOnesConcurrent()
    {
        await SiteAsync("a");
        await SiteAsync("b");
        var ttl = TimeSpan.FromMinutes(2);
        var a = await Store.AcquireLeaseAsync(["linux-x86_64/zlib/1.2.13", "logs/linux-x86_64/zlib/1.2.13"], "a", ttl, None);
        Assert.True(a.Granted);

        // Overlap is by subtree: the parent, the same path, a path below.
        foreach (var overlapping in new[] { "linux-x86_64/zlib", "linux-x86_64/zlib/1.2.13", "logs/linux-x86_64/zlib/1.2.13/build.log", "/" })
        {
            var refused = await Store.AcquireLeaseAsync([overlapping], "b", ttl, None);
            Assert.False(refused.Granted);
            Assert.Equal(a.Lease!.Id, Assert.Single(refused.Conflicts).Id);
        }

        var disjoint = await Store.AcquireLeaseAsync(["linux-x86_64/zlib-ng/2.1", "linux-x86_64/libpng/1.6.43"], "b", ttl, None);
        Assert.True(disjoint.Granted);
        Assert.True(disjoint.Lease!.Id > a.Lease!.Id);

        Assert.False(await Store.ReleaseLeaseAsync(a.Lease.Id, "b", None));
        Assert.True(await Store.ReleaseLeaseAsync(a.Lease.Id, "a", None));
        var next = await Store.AcquireLeaseAsync(["linux-x86_64/zlib"], "b", ttl, None);
        Assert.True(next.Granted);
        Assert.Equal(["linux-x86_64/zlib"], next.Lease!.Paths);
    }

    [Fact]
    public async Task OneLeaseHolderUnderContention()
    {
        const int contenders = 12;
        var stores = new List<ICoordinationStore>();
        for (var i = 0; i < contenders; i++)
        {
            await SiteAsync($"site-{i}");
            stores.Add(await OpenAsync());
        }

        using var start = new ManualResetEventSlim();
        var attempts = stores.Select((s, i) => Task.Run(async () =>
        {
            start.Wait();
            return await s.AcquireLeaseAsync([i % 2 == 0 ? "linux-x86_64/zlib" : "linux-x86_64/zlib/1.2.13"], $"site-{i}", TimeSpan.FromMinutes(1), None);
        })).ToList();
        start.Set();
        var results = await Task.WhenAll(attempts);
        Assert.Single(results, r => r.Granted);
    }

    [Fact]
    public async Task AKeptLeaseOutlivesItsTtlAndLapsesOnceTheKeeperStops()
    {
        var ttl = TimeSpan.FromSeconds(30);
        string[] paths = ["linux-x86_64/gsl/2.7"];
        await SiteAsync("a");
        await SiteAsync("b");
        var lease = (await Store.AcquireLeaseAsync(paths, "a", ttl, None)).Lease!;
        var keeper = LeaseKeeper.Start(Store, lease, ttl, Time);
        // Move the clock a second at a time (giving the keeper real time to run) through twice the TTL.
        for (var second = 1; second <= 2 * ttl.TotalSeconds + 5; second++)
        {
            Time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(20);
        }

        Assert.True(keeper.Renewals >= 5, $"{keeper.Renewals} renewals");
        // Twice the TTL has passed: the lease is still live and still this site's.
        await Store.ValidateLeaseAsync(lease.Id, "a", paths, None);
        Assert.False((await Store.AcquireLeaseAsync(paths, "b", ttl, None)).Granted);

        await keeper.DisposeAsync();
        Time.Advance(ttl + TimeSpan.FromSeconds(1));
        Assert.Equal(ErrorCode.LeaseLost, (await Assert.ThrowsAsync<CairnException>(() => Store.ValidateLeaseAsync(lease.Id, "a", paths, None))).Code);
        Assert.True((await Store.AcquireLeaseAsync(paths, "b", ttl, None)).Granted);
    }

    [Fact]
    public async Task LeasesExpireAndAreValidatedAgainstSiteAndPaths()
    {
        await SiteAsync("a");
        await SiteAsync("b");
        var lease = (await Store.AcquireLeaseAsync(["linux-x86_64/zlib/1.2.13"], "a", TimeSpan.FromSeconds(30), None)).Lease!;
        await Store.ValidateLeaseAsync(lease.Id, "a", ["linux-x86_64/zlib/1.2.13/lib/libz.so"], None);

        var uncovered = await Assert.ThrowsAsync<CairnException>(() => Store.ValidateLeaseAsync(lease.Id, "a", ["linux-x86_64/zlib/1.3"], None));
        Assert.Equal(ErrorCode.LeaseLost, uncovered.Code);
        Assert.Contains("does not cover linux-x86_64/zlib/1.3", uncovered.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorCode.LeaseLost, (await Assert.ThrowsAsync<CairnException>(() => Store.ValidateLeaseAsync(lease.Id, "b", ["linux-x86_64/zlib/1.2.13"], None))).Code);

        Time.Advance(TimeSpan.FromSeconds(20));
        var renewed = await Store.RenewLeaseAsync(lease.Id, "a", TimeSpan.FromSeconds(30), None);
        Assert.Equal(Time.GetUtcNow() + TimeSpan.FromSeconds(30), renewed.ExpiresAt);
        Time.Advance(TimeSpan.FromSeconds(20));
        Assert.False((await Store.AcquireLeaseAsync(["linux-x86_64/zlib"], "b", TimeSpan.FromSeconds(30), None)).Granted);

        Time.Advance(TimeSpan.FromSeconds(11));
        var expired = await Assert.ThrowsAsync<CairnException>(() => Store.ValidateLeaseAsync(lease.Id, "a", ["linux-x86_64/zlib/1.2.13"], None));
        Assert.Equal(ErrorCode.LeaseLost, expired.Code);
        Assert.Contains("expired", expired.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorCode.LeaseLost, (await Assert.ThrowsAsync<CairnException>(() => Store.RenewLeaseAsync(lease.Id, "a", TimeSpan.FromSeconds(30), None))).Code);
        var taken = await Store.AcquireLeaseAsync(["linux-x86_64/zlib"], "b", TimeSpan.FromSeconds(30), None);
        Assert.True(taken.Granted);
        Assert.True(taken.Lease!.Id > lease.Id);
    }

    [Fact]
    public async Task EveryCommitIsRecordedWithItsSite()
    {
        await SiteAsync("a");
        await SiteAsync("b");
        var claim = (await Store.TryClaimAsync("key-zlib", "a", TimeSpan.FromMinutes(5), null, None)).Claim;
        var lease = (await Store.AcquireLeaseAsync(["linux-x86_64/zlib/1.2.13"], "a", TimeSpan.FromMinutes(1), None)).Lease!;
        var root = D("zlib");
        var first = await Store.RecordCommitAsync(new CommitRequest("a", "tok-a", lease.Id, "key-zlib", claim.FencingToken,
            ["linux-x86_64/zlib/1.2.13"], ChannelPolicy.Testing, 7, root, "build zlib/1.2.13"), None);
        Time.Advance(TimeSpan.FromSeconds(3));
        var second = await Store.RecordCommitAsync(new CommitRequest("b", null, 99, null, null, ["linux-x86_64/hello/2.12"], null, 8, null, "import hello"), None);

        var all = await Store.ListCommitsAsync(0, 100, None);
        static CommitRecord WithoutPaths(CommitRecord c) => c with { Commit = c.Commit with { Paths = [] } };
        Assert.Equal([WithoutPaths(first), WithoutPaths(second)], all.Select(WithoutPaths));
        Assert.Equal(["linux-x86_64/zlib/1.2.13"], all[0].Commit.Paths);
        var c0 = all[0].Commit;
        Assert.Equal(("a", "tok-a", lease.Id, "key-zlib", (long?)claim.FencingToken, root), (c0.Site, c0.TokenId, c0.LeaseId, c0.BuildKey, c0.FencingToken, c0.Root));
        Assert.True(second.Id > first.Id);
        Assert.Equal(second.Id, Assert.Single(await Store.ListCommitsAsync(first.Id, 100, None)).Id);
        Assert.Equal(ErrorCode.SiteUnknown, (await Assert.ThrowsAsync<CairnException>(() => Store.RecordCommitAsync(
            new CommitRequest("ghost", null, 1, null, null, ["x/y/z"], null, 9, null, "?"), None))).Code);
    }

    [Fact]
    public async Task OperatorActionsAreAuditedInOrderAndARerunForgetsOnlyFailedResults()
    {
        await SiteAsync("a");
        await SiteAsync("b");
        await SiteAsync("c");
        await Store.RecordResultAsync(Result("a", D("zlib")), None);
        await Store.RecordResultAsync(Result("b", null, failed: 1), None);
        await Store.RecordResultAsync(Result("c", D("other"), failed: 2), None);
        Assert.Equal(["b", "c"], (await Store.ForgetFailedResultsAsync("key-zlib", None)).Order(StringComparer.Ordinal));
        Assert.Equal(["a"], (await Store.GetResultsAsync("key-zlib", None)).Select(r => r.Site));
        Assert.Empty(await Store.ForgetFailedResultsAsync("key-zlib", None));

        var first = await Store.RecordOperatorActionAsync(new OperatorAction("rerun", "key-zlib", "forgot b, c", "operator session 1"), None);
        Time.Advance(TimeSpan.FromSeconds(5));
        var second = await Store.RecordOperatorActionAsync(new OperatorAction("revoke-token", "3f2a", "revoked", "operator session 1"), None);
        Assert.Equal([first, second], await Store.ListOperatorActionsAsync(0, 100, None));
        Assert.Equal(Time.GetUtcNow().ToUnixTimeMilliseconds(), second.ActedAt.ToUnixTimeMilliseconds());
        Assert.Equal([second], await Store.ListOperatorActionsAsync(first.Id, 100, None));
    }

    // ---- results, coherence, promotion

    [Fact]
    public async Task ResultsAreKeptPerSiteWithTheirDetails()
    {
        await SiteAsync("a");
        var tests = new List<TestCaseResult> { new("zlib.example", TestOutcome.Passed), new("zlib.minigzip", TestOutcome.Skipped, "no gzip") };
        var recorded = await Store.RecordResultAsync(Result("a", D("x"), tests: tests), None);
        Assert.Equal(Time.GetUtcNow(), recorded.RecordedAt);

        var read = Assert.Single(await Store.GetResultsAsync("key-zlib", None));
        Assert.Equal(recorded with { Checks = null! }, read with { Checks = null! });
        Assert.Equal(tests, read.Checks.Tests);
        Assert.Equal((3, 0, 0), (read.Checks.Passed, read.Checks.Failed, read.Checks.Skipped));

        // A site's new result for the same key replaces its old one.
        Time.Advance(TimeSpan.FromMinutes(1));
        await Store.RecordResultAsync(Result("a", D("y")), None);
        var replaced = Assert.Single(await Store.GetResultsAsync("key-zlib", None));
        Assert.Equal(D("y"), replaced.OutputRoot);
        Assert.Null(replaced.Checks.Tests);
        Assert.Empty(await Store.GetResultsAsync("key-other", None));
        Assert.Equal(CoherenceStatus.NoResults, (await Store.GetCoherenceAsync("key-other", None)).Status);
        Assert.Equal(ErrorCode.SiteUnknown, (await Assert.ThrowsAsync<CairnException>(() => Store.RecordResultAsync(Result("ghost", D("x")), None))).Code);
    }

    [Fact]
    public async Task LiveClaimsAreListedUntilReleasedOrExpired()
    {
        await SiteAsync("a");
        await SiteAsync("b");
        Assert.Empty(await Store.ListLiveClaimsAsync(None));
        var first = (await Store.TryClaimAsync("key-1", "a", TimeSpan.FromMinutes(1), null, None)).Claim;
        Time.Advance(TimeSpan.FromSeconds(1));
        var second = (await Store.TryClaimAsync("key-2", "b", TimeSpan.FromMinutes(10), null, None)).Claim;
        var third = (await Store.TryClaimAsync("key-3", "a", TimeSpan.FromMinutes(10), null, None)).Claim;
        Assert.Equal([first, second, third], await Store.ListLiveClaimsAsync(None));

        Assert.True(await Store.ReleaseAsync("key-3", "a", third.FencingToken, None));
        Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal([second], await Store.ListLiveClaimsAsync(None));
    }

    [Fact]
    public async Task RecentResultsComeNewestFirstUpToTheLimit()
    {
        await SiteAsync("a");
        await SiteAsync("b");
        await Store.RecordResultAsync(Result("a", D("x"), key: "key-1"), None);
        Time.Advance(TimeSpan.FromSeconds(1));
        await Store.RecordResultAsync(Result("b", null, failed: 1, key: "key-1"), None);
        Time.Advance(TimeSpan.FromSeconds(1));
        await Store.RecordResultAsync(Result("a", D("y"), key: "key-2"), None);

        var recent = await Store.ListRecentResultsAsync(10, None);
        Assert.Equal([("key-2", "a"), ("key-1", "b"), ("key-1", "a")], recent.Select(r => (r.BuildKey, r.Site)));
        Assert.Equal(1, recent[1].Checks.Failed);
        Assert.Equal([("key-2", "a"), ("key-1", "b")], (await Store.ListRecentResultsAsync(2, None)).Select(r => (r.BuildKey, r.Site)));
    }

    [Fact]
    public async Task ThreeSitesTwoAgreeingTheReportNamesTheThirdWithDigests()
    {
        foreach (var s in new[] { "a", "b", "c" }) await SiteAsync(s);
        await Store.RecordResultAsync(Result("a", D("good")), None);
        Time.Advance(TimeSpan.FromSeconds(1));
        await Store.RecordResultAsync(Result("c", D("irreproducible")), None);
        Time.Advance(TimeSpan.FromSeconds(1));
        await Store.RecordResultAsync(Result("b", D("good")), None);

        var report = await Store.GetCoherenceAsync("key-zlib", None);
        Assert.Equal(CoherenceStatus.Disagreement, report.Status);
        Assert.Equal(D("good"), report.ReferenceRoot);
        Assert.Equal(["a", "b"], report.AgreeingSites);
        Assert.Equal(3, report.Results.Count);
        var odd = Assert.Single(report.Disagreements);
        Assert.Equal("c", odd.Site);
        Assert.Equal(D("irreproducible"), odd.OutputRoot);
        Assert.Equal(D("good"), odd.ReferenceRoot);
        Assert.Contains(D("irreproducible").ToString(), odd.Reason, StringComparison.Ordinal);
        Assert.Contains(D("good").ToString(), odd.Reason, StringComparison.Ordinal);
        Assert.Equal("c: debian/12 kernel 6.1", odd.Environment);

        // Two agree, but the third disagrees: promoted nowhere.
        foreach (var channel in new[] { ChannelPolicy.Testing, ChannelPolicy.Stable })
        {
            var decision = await Store.EvaluatePromotionAsync("key-zlib", channel, None);
            Assert.False(decision.Allowed);
            Assert.Contains("disagree", decision.Reason, StringComparison.Ordinal);
            var refused = await Assert.ThrowsAsync<CairnException>(() => Store.PromoteAsync("key-zlib", channel, None));
            Assert.Equal(ErrorCode.PromotionRefused, refused.Code);
            Assert.Contains("c:", refused.Message, StringComparison.Ordinal);
        }

        Assert.Empty(await Store.GetPromotionsAsync("key-zlib", None));

        // c rebuilds reproducibly: agreement, and stable (K = 2) is allowed.
        await Store.RecordResultAsync(Result("c", D("good")), None);
        var agreed = await Store.GetCoherenceAsync("key-zlib", None);
        Assert.Equal(CoherenceStatus.Agreement, agreed.Status);
        Assert.Empty(agreed.Disagreements);
        Assert.Equal(3, agreed.AgreeingSites.Count);
        var stable = await Store.PromoteAsync("key-zlib", ChannelPolicy.Stable, None);
        Assert.Equal((D("good"), 3), (stable.Root, stable.AgreeingSites));
    }

    [Fact]
    public async Task PromotionToStableOnlyWhenKSitesAgree()
    {
        foreach (var s in new[] { "a", "b", "c" }) await SiteAsync(s);
        Assert.Equal(new ChannelPolicy(ChannelPolicy.Testing, 1), await Store.GetChannelPolicyAsync(ChannelPolicy.Testing, None));
        Assert.Equal(new ChannelPolicy(ChannelPolicy.Stable, 2), await Store.GetChannelPolicyAsync(ChannelPolicy.Stable, None));
        await Store.SetChannelPolicyAsync(new ChannelPolicy(ChannelPolicy.Stable, 3), None);
        Assert.Equal(3, (await Store.GetChannelPolicyAsync(ChannelPolicy.Stable, None)).RequiredAgreeingSites);

        Assert.False((await Store.EvaluatePromotionAsync("key-zlib", ChannelPolicy.Testing, None)).Allowed); // no results

        await Store.RecordResultAsync(Result("a", D("good")), None);
        var testing = await Store.PromoteAsync("key-zlib", ChannelPolicy.Testing, None);
        Assert.Equal((ChannelPolicy.Testing, D("good"), 1), (testing.Channel, testing.Root, testing.AgreeingSites));
        Assert.Equal(testing, await Store.PromoteAsync("key-zlib", ChannelPolicy.Testing, None)); // idempotent

        var one = await Store.EvaluatePromotionAsync("key-zlib", ChannelPolicy.Stable, None);
        Assert.False(one.Allowed);
        Assert.Equal((1, 3), (one.AgreeingSites, one.RequiredAgreeingSites));
        Assert.Contains("1 of the 3", one.Reason, StringComparison.Ordinal);

        await Store.RecordResultAsync(Result("b", D("good")), None);
        Assert.Equal(ErrorCode.PromotionRefused, (await Assert.ThrowsAsync<CairnException>(() => Store.PromoteAsync("key-zlib", ChannelPolicy.Stable, None))).Code);

        await Store.RecordResultAsync(Result("c", D("good")), None);
        Time.Advance(TimeSpan.FromMinutes(1));
        var decision = await Store.EvaluatePromotionAsync("key-zlib", ChannelPolicy.Stable, None);
        Assert.True(decision.Allowed, decision.Reason);
        var stable = await Store.PromoteAsync("key-zlib", ChannelPolicy.Stable, None);
        Assert.Equal(3, stable.AgreeingSites);
        Assert.Equal([ChannelPolicy.Testing, ChannelPolicy.Stable], (await Store.GetPromotionsAsync("key-zlib", None)).Select(p => p.Channel));

        // A custom channel needs a policy first; K must be at least 1.
        Assert.Equal(ErrorCode.Usage, (await Assert.ThrowsAsync<CairnException>(() => Store.EvaluatePromotionAsync("key-zlib", "nightly", None))).Code);
        Assert.Equal(ErrorCode.Usage, (await Assert.ThrowsAsync<CairnException>(() => Store.SetChannelPolicyAsync(new ChannelPolicy("nightly", 0), None))).Code);
        await Store.SetChannelPolicyAsync(new ChannelPolicy("nightly", 1), None);
        Assert.True((await Store.EvaluatePromotionAsync("key-zlib", "nightly", None)).Allowed);
    }

    [Fact]
    public async Task ACheckThatFailsOnOneSiteOnlyIsADisagreementNamingTheTest()
    {
        foreach (var s in new[] { "a", "b", "c" }) await SiteAsync(s);
        TestCaseResult[] Tests(TestOutcome t2) => [new("zlib.example", TestOutcome.Passed), new("zlib.t2", t2), new("zlib.gpu", TestOutcome.Skipped)];
        await Store.RecordResultAsync(Result("a", D("same"), tests: Tests(TestOutcome.Passed)), None);
        await Store.RecordResultAsync(Result("b", D("same"), failed: 1, tests: Tests(TestOutcome.Failed)), None);
        await Store.RecordResultAsync(Result("c", D("same"), tests: [.. Tests(TestOutcome.Passed)[..2], new("zlib.gpu", TestOutcome.Passed)]), None);

        var report = await Store.GetCoherenceAsync("key-zlib", None);
        Assert.Equal(CoherenceStatus.Disagreement, report.Status);
        var b = Assert.Single(report.Disagreements);
        Assert.Equal("b", b.Site);
        Assert.Contains("zlib.t2", b.Reason, StringComparison.Ordinal);
        var diff = Assert.Single(report.TestDifferences); // skipped vs passed (zlib.gpu) is not a difference
        Assert.Equal("zlib.t2", diff.Test);
        Assert.Equal(TestOutcome.Failed, diff.BySite["b"]);
        Assert.Equal(TestOutcome.Passed, diff.BySite["a"]);
        Assert.Equal(["a", "c"], report.AgreeingSites);

        Assert.False((await Store.EvaluatePromotionAsync("key-zlib", ChannelPolicy.Testing, None)).Allowed);
        Assert.False((await Store.EvaluatePromotionAsync("key-zlib", ChannelPolicy.Stable, None)).Allowed);
    }

    [Fact]
    public async Task AFailureEverywhereIsFailingNotDisagreementAndNotPromoted()
    {
        await SiteAsync("a");
        await SiteAsync("b");
        await Store.RecordResultAsync(Result("a", D("same"), failed: 2), None);
        await Store.RecordResultAsync(Result("b", D("same"), failed: 2), None);
        var report = await Store.GetCoherenceAsync("key-zlib", None);
        Assert.Equal(CoherenceStatus.Failing, report.Status);
        Assert.Empty(report.AgreeingSites);
        Assert.False((await Store.EvaluatePromotionAsync("key-zlib", ChannelPolicy.Testing, None)).Allowed);
    }
}
