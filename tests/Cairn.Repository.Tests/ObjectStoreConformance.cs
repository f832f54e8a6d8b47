using Cairn.Core;

namespace Cairn.Repository.Tests;

/// <summary>
/// What every object store must do. Each backend gets a concrete subclass; a new backend is done when its
/// subclass passes.
/// </summary>
public abstract class ObjectStoreConformance : ObjectStoreReadConformance, IAsyncLifetime
{
    protected abstract Task<IObjectStore> CreateAsync();

    /// <summary>Opens a second view of the same store, as another process would.</summary>
    protected abstract Task<IObjectStore> ReopenAsync();

    private IObjectStore _store = null!;

    public async Task InitializeAsync() => _store = await CreateAsync();

    public async Task DisposeAsync() => await _store.DisposeAsync();

    /// <summary>The read suite on this backend: put and flush through the store, then read through a second view.</summary>
    protected override async Task<IObjectReader> OpenSeededAsync(IReadOnlyList<(Digest Digest, byte[] Content)> objects)
    {
        foreach (var (d, bytes) in objects) await _store.PutAsync(d, bytes, default);
        await _store.FlushAsync(default);
        return await ReopenAsync();
    }

    [Fact]
    public async Task PutThenGetReturnsTheSameBytes()
    {
        var (d, bytes) = Blob("hello, repository");
        await _store.PutAsync(d, bytes, default);
        Assert.Equal(bytes, await _store.GetAsync(d, default));
        Assert.True(await _store.ContainsAsync(d, default));
    }

    [Fact]
    public async Task FlushedObjectsAreVisibleToANewReader()
    {
        var compressible = new byte[300_000];
        var random = new byte[300_000];
        new Random(3).NextBytes(random);
        await _store.PutAsync(Digest.Of(compressible), compressible, default);
        await _store.PutAsync(Digest.Of(random), random, default);
        await _store.FlushAsync(default);
        await using var other = await ReopenAsync();
        Assert.Equal(compressible, await other.GetAsync(Digest.Of(compressible), default));
        Assert.Equal(random, await other.GetAsync(Digest.Of(random), default));
    }

    [Fact]
    public async Task MissingObjectIsACodedError()
    {
        var e = await Assert.ThrowsAsync<CairnException>(async () => await _store.GetAsync(Digest.Of("absent"u8), default));
        Assert.Equal(ErrorCode.ObjectMissing, e.Code);
        Assert.False(await _store.ContainsAsync(Digest.Of("absent"u8), default));
    }

    [Fact]
    public async Task PuttingTwiceStoresOnce()
    {
        var (d, bytes) = Blob(new string('x', 10_000));
        await _store.PutAsync(d, bytes, default);
        await _store.PutAsync(d, bytes, default);
        await _store.FlushAsync(default);
        var listed = new List<ObjectInfo>();
        await foreach (var o in _store.ListAsync(default)) listed.Add(o);
        Assert.Single(listed, o => o.Digest == d);
        Assert.Equal(bytes.Length, listed.Single(o => o.Digest == d).Size);
    }

    [Fact]
    public async Task AbortDropsUnflushedObjects()
    {
        var (kept, keptBytes) = Blob("kept");
        var (dropped, droppedBytes) = Blob("dropped");
        await _store.PutAsync(kept, keptBytes, default);
        await _store.FlushAsync(default);
        await _store.PutAsync(dropped, droppedBytes, default);
        await _store.AbortAsync(default);
        Assert.True(await _store.ContainsAsync(kept, default));
        Assert.False(await _store.ContainsAsync(dropped, default));
    }

    [Fact]
    public async Task RetainDeletesOnlyDeadObjects()
    {
        var live = Enumerable.Range(0, 20).Select(i => Blob($"live {i}")).ToList();
        var dead = Enumerable.Range(0, 20).Select(i => Blob($"dead {i}")).ToList();
        foreach (var (d, b) in live.Concat(dead)) await _store.PutAsync(d, b, default);
        await _store.FlushAsync(default);
        var liveSet = live.Select(l => l.Item1).ToHashSet();

        var dry = await _store.RetainAsync(liveSet.Contains, dryRun: true, default);
        Assert.Equal(20, dry.ObjectsDeleted);
        Assert.True(await _store.ContainsAsync(dead[0].Item1, default));

        var result = await _store.RetainAsync(liveSet.Contains, dryRun: false, default);
        Assert.Equal(20, result.ObjectsDeleted);
        await using var other = await ReopenAsync();
        foreach (var (d, b) in live) Assert.Equal(b, await other.GetAsync(d, default));
        foreach (var (d, _) in dead) Assert.False(await other.ContainsAsync(d, default));
    }

    [Fact]
    public async Task ConcurrentPutsFromManyThreadsAllLand()
    {
        var blobs = Enumerable.Range(0, 400).Select(i => Blob($"object {i} " + new string('y', i * 10))).ToList();
        await Parallel.ForEachAsync(blobs, async (b, ct) => await _store.PutAsync(b.Item1, b.Item2, ct));
        await _store.FlushAsync(default);
        await using var other = await ReopenAsync();
        foreach (var (d, b) in blobs) Assert.Equal(b, await other.GetAsync(d, default));
    }
}
