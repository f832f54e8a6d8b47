using System.Globalization;
using System.Text.RegularExpressions;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.Http;
using Cairn.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;

namespace Cairn.Server.Tests;

/// <summary>
/// Batch fetches (<see cref="HttpObjectStore.PrefetchAsync"/>): neighbouring objects of a pack in one range request,
/// each verified on its own; a bad copy fails only its own object; processes sharing a client cache fetch each
/// object once (fill locks: bytes of shared files, see ClientCache.FillLock).
/// </summary>
public sealed partial class BatchFetchTests(ServedRepository served) : IClassFixture<ServedRepository>, IDisposable
{
    private readonly TempDir _work = new("cairn-batch");

    public void Dispose() => _work.Dispose();

    private static List<(Digest Digest, byte[] Content)> Objects(int count, int seed) =>
        Enumerable.Range(0, count).Select(i => TestRepository.Random(500 + (i * 37 % 3000), seed + i)).Select(b => (Digest.Of(b), b)).ToList();

    /// <summary>A repository holding the objects in one pack, served in-process, and a client with a fresh cache that does not retry.</summary>
    private Task<(string Repo, WebApplication Server, ProductRepository Client, string Cache)> ServeAsync(IReadOnlyList<(Digest Digest, byte[] Content)> objects) =>
        HttpObjectStoreConformance.ServeAsync(_work, objects, new RemoteOptions { Servers = [], Retries = 0 });

    [Fact]
    public async Task APrefetchFetchesNeighbouringObjectsInFewRequestsAndEveryReaderGetsVerifiedContent()
    {
        var objects = Objects(300, 100);
        var (_, server, client, cache) = await ServeAsync(objects);
        await using var s = server;
        await using var c = client;
        var store = (HttpObjectStore)client.Objects;
        Assert.True(store.PrefetchesInBatches);
        Assert.True(await store.ContainsAsync(objects[0].Digest, default)); // loads the indexes
        var before = store.Fetcher.RequestsSent;

        var batch = await store.PrefetchAsync(objects.Select(o => o.Digest).ToList(), default);
        // Readers that ask while the batch runs wait for it rather than fetching alone.
        var readers = objects.Select(o => store.GetAsync(o.Digest, default).AsTask()).ToList();
        await batch;
        var contents = await Task.WhenAll(readers);

        Assert.Equal(objects.Select(o => Convert.ToHexString(o.Content)), contents.Select(Convert.ToHexString));
        // 300 objects of ~2 KB lie next to each other in one pack: one range request, not 300.
        Assert.InRange(store.Fetcher.RequestsSent - before, 1, 2);
        Assert.Equal(objects.Count, TestRepository.AssertCacheSound(cache));

        // Everything is cached now: reading again costs no request, and prefetching again claims nothing.
        var again = await store.PrefetchAsync(objects.Select(o => o.Digest).ToList(), default);
        await again;
        foreach (var (d, bytes) in objects) Assert.Equal(bytes, await store.GetAsync(d, default));
        Assert.InRange(store.Fetcher.RequestsSent - before, 1, 2);
    }

    [Fact]
    public async Task ACorruptObjectInABatchFailsOnlyItsOwnReaderAndNothingUnverifiedIsCached()
    {
        var objects = Objects(60, 500);
        var (repo, server, client, cache) = await ServeAsync(objects);
        await using var s = server;
        await using var c = client;
        var bad = TestRepository.CorruptLargestObject(repo);
        var store = (HttpObjectStore)client.Objects;

        var batch = await store.PrefetchAsync(objects.Select(o => o.Digest).ToList(), default);
        await batch; // never faults: the failure belongs to the object's reader

        foreach (var (d, bytes) in objects)
        {
            if (d == bad)
            {
                var e = await Assert.ThrowsAsync<CairnException>(() => store.GetAsync(d, default).AsTask());
                Assert.Equal(ErrorCode.RemoteContentRejected, e.Code);
            }
            else
            {
                Assert.Equal(bytes, await store.GetAsync(d, default));
            }
        }

        Assert.Equal(objects.Count - 1, TestRepository.AssertCacheSound(cache));
        Assert.False(File.Exists(Path.Combine(cache, ClientCache.ObjectPath(bad.ToString()))));
    }

    [GeneratedRegex("^cairn_http_response_bytes_total\\{kind=\"pack\"\\} (?<n>\\d+)$", RegexOptions.Multiline)]
    private static partial Regex PackBytesLine();

    private static async Task<long> PackBytesAsync(CairnServe serve)
    {
        using var http = new HttpClient();
        var m = PackBytesLine().Match(await http.GetStringAsync($"{serve.Url}/metrics"));
        return m.Success ? long.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture) : 0;
    }

    [Fact]
    public async Task ProcessesSharingACacheFetchEachObjectOnce()
    {
        // One client alone: the pack bytes one cold materialize needs.
        long alone;
        await using (var serve = await CairnServe.StartAsync(served.Repo))
        {
            var tree = _work.Sub("alone");
            await Exec.CairnOkAsync("--repo", serve.Url, "materialize", "--with-deps", "data/2.0", tree, "--cache", _work.Sub("cache-alone"));
            Assert.Equal(served.LocalTree, TestRepository.Describe(tree));
            alone = await PackBytesAsync(serve);
            Assert.True(alone > 4_000_000, $"the test product holds ~4.5 MB of random data; the server sent {alone} pack bytes");
        }

        // Six clients at once on one fresh cache, behind slow pack reads so that their fetches overlap: each object
        // crosses the network once. Without cross-process single flight each would fetch most of it (~6×).
        await using (var serve = await CairnServe.StartAsync(served.Repo))
        await using (var proxy = new FaultProxy(serve.Url) { DelayTime = TimeSpan.FromMilliseconds(200) }.Rule("/packs/", Fault.Delay))
        {
            var cache = _work.Sub("cache-shared");
            var trees = Enumerable.Range(0, 6).Select(i => _work.Sub($"shared-{i}")).ToList();
            var runs = await Task.WhenAll(trees.Select(t => Exec.CairnAsync("--repo", proxy.Url, "materialize", "--with-deps", "data/2.0", t, "--cache", cache)));
            foreach (var (run, tree) in runs.Zip(trees))
            {
                Assert.True(run.ExitCode == 0, run.ToString());
                Assert.Equal(served.LocalTree, TestRepository.Describe(tree));
            }

            TestRepository.AssertCacheSound(cache);
            var shared = await PackBytesAsync(serve);
            // Different processes split the ranges differently, so a few bridged gaps may differ: allow 25 %.
            Assert.True(shared <= alone * 5 / 4, $"six processes made the server send {shared} pack bytes; one alone needed {alone}");
            // Fill locks are bytes of a bounded set of shared files: filling creates no file per entry.
            Assert.False(Directory.Exists(Path.Combine(cache, "locks")));
            Assert.InRange(Directory.GetFiles(Path.Combine(cache, "fill-locks")).Length, 1, 256);
        }
    }
}

public sealed class EntryLockTests : IDisposable
{
    private readonly TempDir _dir = new("cairn-entry-lock");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task OneFillerAtATimeAndAWaiterGetsTheLockWhenItIsReleased()
    {
        using var cache = new ClientCache(_dir.Path, 1 << 20, TimeProvider.System);
        var entry = ClientCache.ObjectPath(new string('c', 64));
        var first = cache.TryLockEntry(entry, out var held);
        Assert.NotNull(first);
        Assert.False(held);

        // Another thread of the same process is excluded too, as another process is.
        Assert.Null(cache.TryLockEntry(entry, out held));
        Assert.True(held);

        var waiter = cache.LockEntryAsync(entry, default).AsTask();
        await Task.Delay(100);
        Assert.False(waiter.IsCompleted);
        Assert.True(cache.Store(entry, new byte[10]));
        first!.Dispose();

        using var second = await waiter.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotNull(second);
        Assert.True(cache.Contains(entry));
    }

    [Fact]
    public async Task ALockHeldByAnotherProcessIsWaitedForAndTakenOverWhenThatProcessIsKilled()
    {
        using var cache = new ClientCache(_dir.Path, 1 << 20, TimeProvider.System);
        var entry = ClientCache.ObjectPath(new string('d', 64));
        var (file, offset) = ClientCache.FillLock(entry);
        var other = ClientCache.ObjectPath(new string('e', 64));
        Assert.NotEqual((file, offset), ClientCache.FillLock(other));

        // Another process holds the entry's byte with a POSIX record lock (which open-file-description locks
        // honour) and is then killed: the kernel releases the lock with the process.
        var ready = _dir.Sub("ready");
        const string Holder = "import fcntl, os, sys, time\n" +
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n" +
            "fcntl.lockf(fd, fcntl.LOCK_EX, 1, int(sys.argv[2]), 0)\n" +
            "open(sys.argv[3], 'w').close()\n" +
            "time.sleep(60)\n";
        using var holder = Exec.Start(["python3", "-c", Holder, Path.Combine(_dir.Path, file), offset.ToString(System.Globalization.CultureInfo.InvariantCulture), ready]);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && !File.Exists(ready) && !holder.HasExited) await Task.Delay(20);
        if (!File.Exists(ready)) Assert.Fail($"the lock holder did not start: {await holder.StandardError.ReadToEndAsync()}");

        Assert.Null(cache.TryLockEntry(entry, out var heldNow));
        Assert.True(heldNow);
        using (var unrelated = cache.TryLockEntry(other, out _))
        {
            Assert.NotNull(unrelated);
        }

        var waiter = cache.LockEntryAsync(entry, default).AsTask();
        await Task.Delay(100);
        Assert.False(waiter.IsCompleted);
        holder.Kill(entireProcessTree: true);
        await holder.WaitForExitAsync();

        using var taken = await waiter.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotNull(taken);
    }
}
