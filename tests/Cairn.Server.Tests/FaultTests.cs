using Cairn.Core;
using Cairn.Repository.Http;
using Cairn.Server.Tests.Infrastructure;

namespace Cairn.Server.Tests;

/// <summary>
/// A real `cairn serve` behind <see cref="FaultProxy"/>: for every fault the client fails over to the next server,
/// says what it tried, and keeps nothing unverified in its cache or in a materialized tree.
/// </summary>
public sealed class FaultTests(ServedRepository served) : IClassFixture<ServedRepository>
{
    /// <summary>Short network limits so that slow faults cost seconds, not minutes.</summary>
    private static readonly Dictionary<string, string> FastLimits = new()
    {
        ["CAIRN_LOW_SPEED_TIME"] = "1",
        ["CAIRN_LOW_SPEED_LIMIT"] = "1K",
        ["CAIRN_RETRY_DELAY"] = "0.1",
        ["CAIRN_HTTP_TIMEOUT"] = "10",
        ["CAIRN_HTTP_DEADLINE"] = "60",
    };

    private string Fresh(string name) => served.Work.Sub($"{name}-{Guid.NewGuid():N}"[..(name.Length + 9)]);

    private static bool HoldsBigFiles(string tree) =>
        Directory.Exists(tree) && Directory.GetFiles(tree, "*", SearchOption.AllDirectories).Any(f => Path.GetFileName(f) is "big" or "blob.bin");

    [Theory]
    [InlineData(Fault.Reset, "/")]
    [InlineData(Fault.Truncate, "/packs/")]
    [InlineData(Fault.FlipBit, "/packs/")]
    [InlineData(Fault.NotFound404, "/")]
    [InlineData(Fault.Error500, "/")]
    [InlineData(Fault.Unavailable503, "/")]
    [InlineData(Fault.Trickle, "/")]
    [InlineData(Fault.Endless, "/")]
    [InlineData(Fault.CaptivePortal, "/")]
    public async Task EachFaultFailsOverToTheNextServerAndNothingUnverifiedIsKept(Fault fault, string where)
    {
        await using var proxy = new FaultProxy(served.Serve.Url).Rule(where, fault);

        // Faulty server first, a good one second: the right tree, and the log names the faulty server.
        var cache = Fresh("cache");
        var tree = Fresh("tree");
        var ok = await Exec.CairnAsync(FastLimits, "--repo", $"{proxy.Url},{served.Serve.Url}", "materialize", "--with-deps", "data/2.0", tree, "--cache", cache);
        Assert.True(ok.ExitCode == 0, ok.ToString());
        Assert.Equal(served.LocalTree, TestRepository.Describe(tree));
        Assert.Contains(proxy.Url, ok.Stderr, StringComparison.Ordinal);
        Assert.True(proxy.Requests() > 0);
        TestRepository.AssertCacheSound(cache);

        // Only the faulty server: a coded error that lists the server and why, and nothing unverified kept.
        var badCache = Fresh("cache");
        var badTree = Fresh("tree");
        var failed = await Exec.CairnAsync(FastLimits, "--repo", proxy.Url, "materialize", "--with-deps", "data/2.0", badTree, "--cache", badCache);
        Assert.NotEqual(0, failed.ExitCode);
        Assert.Matches("CAIRN-E\\d{4}", failed.Stderr);
        Assert.Contains(proxy.Url, failed.Stderr, StringComparison.Ordinal);
        Assert.False(HoldsBigFiles(badTree), failed.ToString());
        TestRepository.AssertCacheSound(badCache);
    }

    [Theory]
    [InlineData(Fault.Error500, "HTTP 500")]
    [InlineData(Fault.Unavailable503, "HTTP 503")]
    [InlineData(Fault.Reset, "reset by peer")]
    [InlineData(Fault.Trickle, "too slow")]
    [InlineData(Fault.Endless, "exceeds the limit")]
    [InlineData(Fault.CaptivePortal, "rejected")]
    public async Task TheErrorListsEveryAttemptWithItsReason(Fault fault, string reason)
    {
        await using var proxy = new FaultProxy(served.Serve.Url).Rule("/", fault);
        var env = new Dictionary<string, string>(FastLimits) { ["CAIRN_HTTP_RETRIES"] = "1" };
        var r = await Exec.CairnAsync(env, "--repo", proxy.Url, "list", "--cache", Fresh("cache"));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains($"{proxy.Url}/cairn.json", r.Stderr, StringComparison.Ordinal);
        Assert.Contains(reason, r.Stderr, StringComparison.Ordinal);
        if (fault is Fault.Error500 or Fault.Unavailable503 or Fault.Reset or Fault.Trickle or Fault.Endless)
        {
            // Transport failures (an endless body included: a broken proxy may recover) are retried once
            // (CAIRN_HTTP_RETRIES=1), and not more.
            Assert.Equal(2, proxy.Requests("/cairn.json"));
        }
        else
        {
            // A bad copy will not get better by asking again.
            Assert.Equal(1, proxy.Requests("/cairn.json"));
        }
    }

    [Fact]
    public async Task WithoutALowSpeedLimitTheDeadlineStopsATrickle()
    {
        await using var proxy = new FaultProxy(served.Serve.Url).Rule("/", Fault.Trickle);
        var env = new Dictionary<string, string>(FastLimits) { ["CAIRN_LOW_SPEED_LIMIT"] = "0", ["CAIRN_HTTP_DEADLINE"] = "3" };
        var r = await Exec.CairnAsync(env, "--repo", proxy.Url, "list", "--cache", Fresh("cache"));
        Assert.Equal(6, r.ExitCode);
        Assert.Contains("CAIRN-E0707", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("cairn.json", r.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("CAIRN_HTTP_RETRIES", "many")]
    [InlineData("CAIRN_LOW_SPEED_TIME", "-1")]
    [InlineData("CAIRN_HTTP_DEADLINE", "soon")]
    [InlineData("CAIRN_LOW_SPEED_LIMIT", "fast")]
    public async Task AMalformedNetworkSettingIsACodedUsageError(string name, string value)
    {
        var r = await Exec.CairnAsync(new Dictionary<string, string> { [name] = value }, "--repo", served.Serve.Url, "list", "--cache", Fresh("cache"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("CAIRN-E0708", r.Stderr, StringComparison.Ordinal);
        Assert.Contains(name, r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ATransient503IsRetriedAndTheReadSucceeds()
    {
        await using var proxy = new FaultProxy(served.Serve.Url).Rule("/manifest.json", Fault.Unavailable503);
        // Lift the fault while the client waits for its retry round.
        var env = new Dictionary<string, string>(FastLimits) { ["CAIRN_RETRY_DELAY"] = "3" };
        var run = Exec.CairnAsync(env, "--repo", proxy.Url, "--json", "list", "--cache", Fresh("cache"));
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (proxy.Requests("/manifest.json") == 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        proxy.ClearRules();
        var r = await run;
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(served.LocalList, r.Stdout);
        Assert.Equal(2, proxy.Requests("/manifest.json"));
    }

    [Fact]
    public async Task ManyConcurrentReadersOfOneObjectCauseOneUpstreamFetch()
    {
        await using var proxy = new FaultProxy(served.Serve.Url).Rule("/packs/", Fault.Delay);
        var options = new RemoteOptions { Servers = RemoteOptions.ParseServers([proxy.Url]) };
        await using var repo = await HttpRepository.OpenAsync(options, TimeProvider.System, null, default);
        var objects = new List<Cairn.Repository.ObjectInfo>();
        await foreach (var o in repo.Objects.ListAsync(default)) objects.Add(o);
        var target = objects.Where(o => o.Size > 1000).OrderByDescending(o => o.Size).First().Digest;
        var packReadsBefore = PackReads(proxy);

        var readers = await Task.WhenAll(Enumerable.Range(0, 32).Select(_ => Task.Run(async () => await repo.Objects.GetAsync(target, default))));

        Assert.All(readers, bytes => Assert.Equal(target, Digest.Of(bytes)));
        Assert.Equal(1, PackReads(proxy) - packReadsBefore);
    }

    private static int PackReads(FaultProxy proxy) => proxy.RequestsWhere(p => p.StartsWith("/packs/", StringComparison.Ordinal) && p.EndsWith(".pack", StringComparison.Ordinal));

    [Fact]
    public async Task AClientKilledMidFillLeavesNoPartialObject()
    {
        // Slow pack reads keep the client busy filling its cache while it is killed.
        await using var proxy = new FaultProxy(served.Serve.Url) { DelayTime = TimeSpan.FromMilliseconds(300) }.Rule("/packs/", Fault.Delay);
        var cache = Fresh("cache");
        using var client = Exec.Start([.. CairnUnderTest.Command, "--repo", proxy.Url, "materialize", "--with-deps", "data/2.0", Fresh("tree"), "--cache", cache]);
        var objects = Path.Combine(cache, "objects");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !client.HasExited
               && (!Directory.Exists(objects) || Directory.GetFiles(objects, "*", SearchOption.AllDirectories).Length < 3))
        {
            await Task.Delay(20);
        }

        Assert.False(client.HasExited, "the client finished before it could be killed");
        client.Kill(); // SIGKILL: no finally blocks, no cleanup.
        await client.WaitForExitAsync();
        Assert.Equal(137, client.ExitCode);

        // A fresh client (straight to the server) uses the same cache, removes what the dead one left and reads right.
        var tree = Fresh("tree");
        await Exec.CairnOkAsync("--repo", served.Serve.Url, "materialize", "--with-deps", "data/2.0", tree, "--cache", cache);
        Assert.Equal(served.LocalTree, TestRepository.Describe(tree));
        Assert.True(TestRepository.AssertCacheSound(cache) > 3);
    }

    [Fact]
    public async Task ACacheOnAFullSmallFileSystemEvictsInsteadOfFailing()
    {
        var mount = Fresh("tmpfs");
        Directory.CreateDirectory(mount);
        var m = await Exec.RunAsync(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mount]);
        Assert.True(m.ExitCode == 0, $"tests run as root and mount a small tmpfs: {m}");
        try
        {
            // The cache's own limit is far above the file system's size: the disk fills first.
            var env = new Dictionary<string, string> { ["CAIRN_CACHE_SIZE"] = "10G" };
            foreach (var _ in Enumerable.Range(0, 2))
            {
                var tree = Fresh("tree");
                var r = await Exec.CairnOkAsync(env, "--repo", served.Serve.Url, "materialize", "--with-deps", "data/2.0", tree, "--cache", mount);
                Assert.Equal(served.LocalTree, TestRepository.Describe(tree));
                Assert.Contains("evict", r.Stderr, StringComparison.Ordinal);
                Assert.True(TestRepository.AssertCacheSound(mount) > 0);
            }
        }
        finally
        {
            await Exec.RunAsync(["umount", "-l", mount]);
        }
    }
}
