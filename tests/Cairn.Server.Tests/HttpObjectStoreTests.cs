using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Repository.Http;
using Cairn.Repository.Tests;
using Cairn.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;

namespace Cairn.Server.Tests;

/// <summary>The read part of the object store conformance suite, against HttpObjectStore talking to an in-process cairn serve.</summary>
public sealed class HttpObjectStoreConformance : ObjectStoreReadConformance, IAsyncLifetime
{
    private readonly TempDir _work = new("cairn-http-conf");
    private readonly List<WebApplication> _servers = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var s in _servers) await s.DisposeAsync();
        _work.Dispose();
    }

    /// <summary>
    /// Writes the objects with the file-system store, commits a revision listing the packs, serves it, opens a client
    /// with a fresh cache; returns the repository's path, the server, the client and the cache directory.
    /// </summary>
    internal static async Task<(string Repo, WebApplication Server, ProductRepository Client, string Cache)> ServeAsync(
        TempDir work, IReadOnlyList<(Digest Digest, byte[] Content)> objects, RemoteOptions? options = null)
    {
        var path = work.Sub("repo-" + Guid.NewGuid().ToString("N")[..8]);
        await using (var repo = await DirectoryRepository.InitAsync(path, "conformance", "linux-x86_64", TimeProvider.System, null, default))
        {
            foreach (var (d, bytes) in objects) await repo.Objects.PutAsync(d, bytes, default);
            await repo.Objects.FlushAsync(default);
            // Any commit records the packs in the new head (format §6); a tag is the smallest one.
            await repo.TagAsync("objects", 1, default);
        }

        var server = CairnServer.Build(new ServeOptions { RepositoryPath = path, Listen = "http://127.0.0.1:0" });
        await server.StartAsync();
        var url = new Uri(CairnServer.Addresses(server).Single());
        var cache = work.Sub("cache-" + Guid.NewGuid().ToString("N")[..8]);
        var client = await HttpRepository.OpenAsync((options ?? new RemoteOptions { Servers = [] }) with
        {
            Servers = RemoteOptions.ParseServers([url.ToString()]),
            CacheDirectory = cache,
        }, TimeProvider.System, null, default);
        return (path, server, client, cache);
    }

    protected override async Task<IObjectReader> OpenSeededAsync(IReadOnlyList<(Digest Digest, byte[] Content)> objects)
    {
        var (_, server, client, _) = await ServeAsync(_work, objects);
        _servers.Add(server);
        return client.Objects;
    }

    [Fact]
    public async Task TheStoreAndItsRepositoryCannotBeAskedToWrite()
    {
        // Writing is a different interface (IObjectStore) and repository type (WritableRepository), which the HTTP
        // backend does not implement: a write to it does not compile, rather than failing at run time.
        await using var store = await OpenSeededAsync([Blob("x")]);
        Assert.IsType<HttpObjectStore>(store);
        Assert.IsNotAssignableFrom<IObjectStore>(store);
        var (_, server, client, _) = await ServeAsync(_work, [Blob("y")]);
        _servers.Add(server);
        await using var _ = client;
        Assert.IsNotAssignableFrom<WritableRepository>(client);
    }

    [Fact]
    public async Task ObjectUrlsServeTheSameVerifiedContent()
    {
        var objects = Enumerable.Range(0, 20).Select(i => Blob($"per-object {i} " + new string('q', i * 100))).ToList();
        var (_, server, client, _) = await ServeAsync(_work, objects, new RemoteOptions { Servers = [], PreferObjectUrls = true });
        _servers.Add(server);
        await using var _ = client;
        foreach (var (d, bytes) in objects) Assert.Equal(bytes, await client.Objects.GetAsync(d, default));
    }

    [Fact]
    public async Task ManyReadersOfOneObjectCauseOneFetch()
    {
        var big = TestRepository.Random(1_000_000, 7);
        var (_, server, client, _) = await ServeAsync(_work, [(Digest.Of(big), big)]);
        _servers.Add(server);
        await using var _ = client;
        var store = (HttpObjectStore)client.Objects;
        Assert.True(await store.ContainsAsync(Digest.Of(big), default));
        var before = store.Fetcher.RequestsSent;
        await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => client.Objects.GetAsync(Digest.Of(big), default).AsTask()));
        // The pack indexes were loaded before; one range request fetched the object for all sixteen readers.
        Assert.Equal(1, store.Fetcher.RequestsSent - before);
    }
}

public sealed class ClientCacheTests : IDisposable
{
    private readonly TempDir _dir = new("cairn-cache");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void EvictsLeastRecentlyUsedEntriesBeyondTheLimit()
    {
        var time = new ManualTime();
        using var cache = new ClientCache(_dir.Path, 100_000, time);
        var entries = Enumerable.Range(0, 30).Select(i => (Path: ClientCache.ObjectPath(Digest.Of(BitConverter.GetBytes(i)).ToString()), Bytes: TestRepository.Random(10_000, i))).ToList();
        for (var i = 0; i < entries.Count; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            Assert.True(cache.Store(entries[i].Path, entries[i].Bytes));
            // Entry 0 is read after every store: it stays the most recently used and is never evicted.
            time.Advance(TimeSpan.FromSeconds(1));
            Assert.NotNull(cache.TryRead(entries[0].Path));
        }

        Assert.InRange(TestRepository.CacheBytes(_dir.Path), 1, 100_000);
        Assert.Equal(TestRepository.CacheBytes(_dir.Path), cache.Usage);
        Assert.NotNull(cache.TryRead(entries[0].Path));
        Assert.NotNull(cache.TryRead(entries[^1].Path));
        Assert.Null(cache.TryRead(entries[1].Path));
    }

    [Fact]
    public void AnEntryTooLargeForTheCacheIsNotStoredAndStoringTwiceCountsOnce()
    {
        using var cache = new ClientCache(_dir.Path, 100_000, TimeProvider.System);
        Assert.False(cache.Store(ClientCache.ObjectPath(new string('a', 64)), new byte[90_000]));
        Assert.True(cache.Store(ClientCache.ObjectPath(new string('b', 64)), new byte[1000]));
        Assert.True(cache.Store(ClientCache.ObjectPath(new string('b', 64)), new byte[1000]));
        Assert.Equal(1000, cache.Usage);
    }

    private sealed class ManualTime : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public void Advance(TimeSpan by) => _now += by;

        public override DateTimeOffset GetUtcNow() => _now;
    }
}

public sealed class GcTests : IDisposable
{
    private readonly TempDir _work = new("cairn-gc-remote");

    public void Dispose() => _work.Dispose();

    [Fact]
    public async Task AfterGcRepacksTheHeadListsTheNewPacksAndRemoteReadsStillWork()
    {
        var repo = _work.Sub("repo");
        await TestRepository.CreateAsync(repo, _work.Sub("trees"));
        var replacement = _work.Sub("hello2");
        Directory.CreateDirectory(replacement);
        File.WriteAllText(Path.Combine(replacement, "README"), "replaced\n");
        await Exec.CairnOkAsync("--repo", repo, "publish", "hello/1.0", replacement, "--replace", "--reason", "test");
        var before = CairnJson.Deserialize(File.ReadAllBytes(Path.Combine(repo, "manifest.json")), CoreJson.Default.Manifest, "m");
        await Exec.CairnOkAsync("--repo", repo, "gc", "--keep", "1");
        var after = CairnJson.Deserialize(File.ReadAllBytes(Path.Combine(repo, "manifest.json")), CoreJson.Default.Manifest, "m");
        Assert.Equal(before.Revision + 1, after.Revision);
        Assert.Equal(before.Root, after.Root);
        Assert.Equal(Directory.GetFiles(Path.Combine(repo, "packs"), "*.idx").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal), after.Packs);
        Assert.NotEqual(before.Packs, after.Packs);

        await using var nginx = await Nginx.StartAsync(repo, _work);
        await Exec.CairnOkAsync("--repo", nginx.Url, "materialize", "--with-deps", "data/2.0", _work.Sub("out"), "--cache", _work.Sub("cache"));
        Assert.Equal("replaced\n", File.ReadAllText(Path.Combine(_work.Sub("out"), "linux-x86_64", "hello", "1.0", "README")));
    }
}
