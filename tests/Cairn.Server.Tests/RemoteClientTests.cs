using System.Text.Json;
using Cairn.Server.Tests.Infrastructure;

namespace Cairn.Server.Tests;

/// <summary>One repository, served by `cairn serve` and by a real nginx, and what the local CLI reads from it.</summary>
public sealed class ServedRepository : IAsyncLifetime
{
    public TempDir Work { get; } = new("cairn-dist");

    public string Repo => Work.Sub("repo");

    public CairnServe Serve { get; private set; } = null!;

    public Nginx Nginx { get; private set; } = null!;

    public string LocalList { get; private set; } = "";

    public List<string> LocalTree { get; private set; } = [];

    public List<string> LocalExport { get; private set; } = [];

    public async Task InitializeAsync()
    {
        await TestRepository.CreateAsync(Repo, Work.Sub("trees"));
        Serve = await CairnServe.StartAsync(Repo);
        Nginx = await Nginx.StartAsync(Repo, Work);
        LocalList = (await Exec.CairnOkAsync("--repo", Repo, "--json", "list")).Stdout;
        await Exec.CairnOkAsync("--repo", Repo, "materialize", "--with-deps", "--no-cache", "data/2.0", Work.Sub("local-tree"));
        LocalTree = TestRepository.Describe(Work.Sub("local-tree"));
        await Exec.CairnOkAsync("--repo", Repo, "export", "--with-deps", "data/2.0", "-o", Work.Sub("local.tar.zst"));
        LocalExport = await RemoteClientTests.Unpack(Work.Sub("local.tar.zst"));
    }

    public string Url(string server) => server == "nginx" ? Nginx.Url : Serve.Url;

    public async Task DisposeAsync()
    {
        await Serve.DisposeAsync();
        await Nginx.DisposeAsync();
        Work.Dispose();
    }
}

public sealed class RemoteClientTests(ServedRepository served) : IClassFixture<ServedRepository>
{
    /// <summary>What a tarball unpacks to (the export's pax headers are not byte-stable from run to run, its content is).</summary>
    internal static async Task<List<string>> Unpack(string tarball)
    {
        var dir = tarball + ".d";
        Directory.CreateDirectory(dir);
        var r = await Exec.RunAsync(["tar", "--zstd", "-xf", tarball, "-C", dir]);
        Assert.True(r.ExitCode == 0, r.ToString());
        return TestRepository.Describe(dir);
    }

    private string Fresh(string name) => served.Work.Sub($"{name}-{Guid.NewGuid():N}"[..(name.Length + 9)]);

    [Theory]
    [InlineData("serve")]
    [InlineData("nginx")]
    public async Task RemoteListShowMaterializeAndExportEqualTheLocalResultByteForByte(string server)
    {
        var url = served.Url(server);
        var cache = Fresh("cache");
        Assert.Equal(served.LocalList, (await Exec.CairnOkAsync("--repo", url, "--json", "list", "--cache", cache)).Stdout);
        foreach (var product in new[] { "hello/1.0", "data/2.0" })
        {
            Assert.Equal((await Exec.CairnOkAsync("--repo", served.Repo, "--json", "show", product)).Stdout,
                (await Exec.CairnOkAsync("--repo", url, "--json", "show", product, "--cache", cache)).Stdout);
        }

        var tree = Fresh("tree");
        await Exec.CairnOkAsync("--repo", url, "materialize", "--with-deps", "data/2.0", tree, "--cache", cache);
        Assert.Equal(served.LocalTree, TestRepository.Describe(tree));

        var tarball = Fresh("export") + ".tar.zst";
        await Exec.CairnOkAsync("--repo", url, "export", "--with-deps", "data/2.0", "-o", tarball, "--cache", cache);
        Assert.Equal(served.LocalExport, await Unpack(tarball));

        Assert.Equal((await Exec.CairnOkAsync("--repo", served.Repo, "--json", "history")).Stdout,
            (await Exec.CairnOkAsync("--repo", url, "--json", "history", "--cache", cache)).Stdout);
        var verify = await Exec.CairnOkAsync("--repo", url, "--json", "verify", "--full", "--cache", cache);
        Assert.True(JsonDocument.Parse(verify.Stdout).RootElement.GetProperty("ok").GetBoolean(), verify.ToString());
        Assert.True(TestRepository.AssertCacheSound(cache) > 0);

        // A warm cache answers without the network: the same materialize with the server list pointing nowhere.
        var dead = $"http://127.0.0.1:{Exec.FreePort()}";
        var again = Fresh("tree");
        await Exec.CairnOkAsync("--repo", $"{url},{dead}", "materialize", "--with-deps", "data/2.0", again, "--cache", cache);
        Assert.Equal(served.LocalTree, TestRepository.Describe(again));
    }

    [Fact]
    public async Task ServersAreTriedInOrderAndADownServerIsSkipped()
    {
        var dead = $"http://127.0.0.1:{Exec.FreePort()}";
        var tree = Fresh("tree");
        // Comma-separated and repeated --repo both add servers.
        var r = await Exec.CairnOkAsync("--repo", $"{dead},{served.Nginx.Url}", "--repo", served.Serve.Url,
            "materialize", "--with-deps", "data/2.0", tree, "--cache", Fresh("cache"));
        Assert.Equal(served.LocalTree, TestRepository.Describe(tree));
        Assert.Contains(dead, r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoServerReachableIsACodedErrorListingWhatWasTried()
    {
        var dead1 = $"http://127.0.0.1:{Exec.FreePort()}";
        var dead2 = $"http://127.0.0.1:{Exec.FreePort()}";
        var r = await Exec.CairnAsync("--repo", $"{dead1},{dead2}", "list", "--cache", Fresh("cache"));
        Assert.Equal(6, r.ExitCode);
        Assert.Contains("CAIRN-E0700", r.Stderr, StringComparison.Ordinal);
        Assert.Contains(dead1, r.Stderr, StringComparison.Ordinal);
        Assert.Contains(dead2, r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WritingToARemoteRepositoryIsRefused()
    {
        var dir = Fresh("src");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "f"), "x");
        var r = await Exec.CairnAsync("--repo", served.Serve.Url, "publish", "x/1", dir);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("CAIRN-E0701", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ACorruptObjectOnOneServerIsRejectedAndFetchedFromTheNext()
    {
        var bad = Fresh("bad-repo");
        TestRepository.CopyDirectory(served.Repo, bad);
        var corrupted = TestRepository.CorruptLargestObject(bad);
        await using var badServer = await Nginx.StartAsync(bad, served.Work);
        var cache = Fresh("cache");
        var tree = Fresh("tree");
        var r = await Exec.CairnOkAsync("--repo", $"{badServer.Url},{served.Serve.Url}", "materialize", "--with-deps", "data/2.0", tree, "--cache", cache);
        Assert.Equal(served.LocalTree, TestRepository.Describe(tree));
        Assert.Contains("rejected", r.Stderr, StringComparison.Ordinal);
        Assert.Contains(corrupted.ToString(), r.Stderr, StringComparison.Ordinal);
        TestRepository.AssertCacheSound(cache);

        // With only the bad server, the read fails with a coded error, and nothing unverified is kept or laid out.
        var onlyBadCache = Fresh("cache");
        var onlyBadTree = Fresh("tree");
        var failed = await Exec.CairnAsync("--repo", badServer.Url, "materialize", "--with-deps", "data/2.0", onlyBadTree, "--cache", onlyBadCache);
        Assert.Equal(4, failed.ExitCode);
        Assert.Contains("CAIRN-E0703", failed.Stderr, StringComparison.Ordinal);
        TestRepository.AssertCacheSound(onlyBadCache);
        Assert.False(File.Exists(Path.Combine(onlyBadCache, "objects", corrupted.ToString()[..2], corrupted.ToString())));
        Assert.DoesNotContain(Directory.Exists(onlyBadTree) ? Directory.GetFiles(onlyBadTree, "*", SearchOption.AllDirectories) : [],
            f => Path.GetFileName(f) is "big" or "blob.bin");
    }

    [Fact]
    public async Task AFullCacheEvictsAndNeverFailsTheRead()
    {
        var cache = Fresh("cache");
        const long limit = 400_000;
        var env = new Dictionary<string, string> { ["CAIRN_CACHE_SIZE"] = limit.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        foreach (var i in Enumerable.Range(0, 2))
        {
            var tree = Fresh("tree");
            await Exec.CairnOkAsync(env, "--repo", served.Serve.Url, "materialize", "--with-deps", "data/2.0", tree, "--cache", cache);
            Assert.Equal(served.LocalTree, TestRepository.Describe(tree));
            Assert.InRange(TestRepository.CacheBytes(cache), 1, limit);
            TestRepository.AssertCacheSound(cache);
        }
    }

    [Fact]
    public async Task TwoProcessesShareOneCache()
    {
        foreach (var size in new[] { "10G", "300K" })
        {
            var cache = Fresh("cache");
            var env = new Dictionary<string, string> { ["CAIRN_CACHE"] = cache, ["CAIRN_CACHE_SIZE"] = size };
            var trees = Enumerable.Range(0, 2).Select(_ => Fresh("tree")).ToList();
            var runs = await Task.WhenAll(trees.Select(t => Exec.CairnAsync(env, "--repo", served.Serve.Url, "materialize", "--with-deps", "data/2.0", t)));
            foreach (var (run, tree) in runs.Zip(trees))
            {
                Assert.True(run.ExitCode == 0, run.ToString());
                Assert.Equal(served.LocalTree, TestRepository.Describe(tree));
            }

            TestRepository.AssertCacheSound(cache);
            if (size == "300K") Assert.InRange(TestRepository.CacheBytes(cache), 1, 300 * 1024);
        }
    }
}
