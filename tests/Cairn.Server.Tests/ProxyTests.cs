using Cairn.Server.Tests.Infrastructure;

namespace Cairn.Server.Tests;

public sealed class ProxyTests : IAsyncLifetime
{
    private readonly TempDir _work = new("cairn-proxy");
    private CairnServe _serve = null!;
    private Squid _squid = null!;

    private string Repo => _work.Sub("repo");

    public async Task InitializeAsync()
    {
        await TestRepository.CreateAsync(Repo, _work.Sub("trees"));
        _serve = await CairnServe.StartAsync(Repo);
        _squid = await Squid.StartAsync(_work);
    }

    public async Task DisposeAsync()
    {
        await _serve.DisposeAsync();
        await _squid.DisposeAsync();
        _work.Dispose();
    }

    [Fact]
    public async Task ASecondClientThroughSquidIsServedByTheProxy()
    {
        await Exec.CairnOkAsync("--repo", Repo, "materialize", "--with-deps", "--no-cache", "data/2.0", _work.Sub("local"));
        var expected = TestRepository.Describe(_work.Sub("local"));

        await Exec.CairnOkAsync("--repo", _serve.Url, "--proxy", _squid.Url, "materialize", "--with-deps", "data/2.0", _work.Sub("first"), "--cache", _work.Sub("cache1"));
        Assert.Equal(expected, TestRepository.Describe(_work.Sub("first")));
        var afterFirst = await _serve.RequestCountAsync();
        Assert.True(afterFirst > 0);

        // Another host (its own empty cache) behind the same proxy: not one request reaches the server.
        var env = new Dictionary<string, string> { ["HTTP_PROXY"] = _squid.Url };
        await Exec.CairnOkAsync(env, "--repo", _serve.Url, "materialize", "--with-deps", "data/2.0", _work.Sub("second"), "--cache", _work.Sub("cache2"));
        Assert.Equal(expected, TestRepository.Describe(_work.Sub("second")));
        Assert.Equal(afterFirst, await _serve.RequestCountAsync());
        Assert.Contains("HIT", await File.ReadAllTextAsync(_squid.AccessLog), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ADeadProxyIsSkippedForTheNextOne()
    {
        var dead = $"http://127.0.0.1:{Exec.FreePort()}";

        // The dead proxy is tried first (cairn says it failed), then squid serves the request (its access log).
        var viaSquid = await Exec.CairnOkAsync("--repo", _serve.Url, "--proxy", $"{dead},{_squid.Url}", "list", "--cache", _work.Sub("cache3"));
        Assert.Contains("data", viaSquid.Stdout, StringComparison.Ordinal);
        AssertTriedAndFailed(dead, viaSquid);
        Assert.Contains($"{_serve.Url}/cairn.json", await File.ReadAllTextAsync(_squid.AccessLog), StringComparison.Ordinal);

        // DIRECT after the dead one: the server itself answers, and squid sees nothing more.
        var squidLines = (await File.ReadAllLinesAsync(_squid.AccessLog)).Length;
        var before = await _serve.RequestCountAsync();
        var direct = await Exec.CairnOkAsync("--repo", _serve.Url, "--proxy", $"{dead};DIRECT", "list", "--cache", _work.Sub("cache4"));
        Assert.Contains("data", direct.Stdout, StringComparison.Ordinal);
        AssertTriedAndFailed(dead, direct);
        Assert.True(await _serve.RequestCountAsync() > before, "the server was not asked directly");
        Assert.Equal(squidLines, (await File.ReadAllLinesAsync(_squid.AccessLog)).Length);
    }

    private static void AssertTriedAndFailed(string proxy, RunResult run)
    {
        // cairn warns "server URL via proxy HOST:PORT failed (...)" for each route that failed.
        var route = $"via proxy {new Uri(proxy).Authority} failed";
        Assert.True(run.Stderr.Contains(route, StringComparison.Ordinal), $"the dead proxy {proxy} was not tried first:\n{run}");
    }
}
