using Cairn.Core;

namespace Cairn.Repository.Tests;

/// <summary>
/// What every object store must do for a reader. Read-only backends (the HTTP client store) subclass this alone;
/// writable backends get it through <see cref="ObjectStoreConformance"/>. The file is linked into the test
/// projects of other backends.
/// </summary>
public abstract class ObjectStoreReadConformance
{
    /// <summary>Makes the objects durable in the backend (by whatever writer it has) and opens a reader on them.</summary>
    protected abstract Task<IObjectReader> OpenSeededAsync(IReadOnlyList<(Digest Digest, byte[] Content)> objects);

    protected static (Digest Digest, byte[] Content) Blob(string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        return (Digest.Of(bytes), bytes);
    }

    private static List<(Digest, byte[])> Mixed()
    {
        var random = new byte[300_000];
        new Random(5).NextBytes(random);
        var zeros = new byte[300_000];
        return [(Digest.Of(random), random), (Digest.Of(zeros), zeros), Blob("small"), (Digest.Of([]), [])];
    }

    [Fact]
    public async Task EveryStoredObjectReadsBackExactly()
    {
        var objects = Mixed();
        await using var store = await OpenSeededAsync(objects);
        foreach (var (d, bytes) in objects) Assert.Equal(bytes, await store.GetAsync(d, default));
    }

    [Fact]
    public async Task ReadingAnAbsentObjectIsACodedError()
    {
        await using var store = await OpenSeededAsync([Blob("present")]);
        var e = await Assert.ThrowsAsync<CairnException>(async () => await store.GetAsync(Digest.Of("absent"u8), default));
        Assert.Equal(ErrorCode.ObjectMissing, e.Code);
    }

    [Fact]
    public async Task ContainsTellsPresentFromAbsent()
    {
        var present = Blob("present");
        await using var store = await OpenSeededAsync([present]);
        Assert.True(await store.ContainsAsync(present.Digest, default));
        Assert.False(await store.ContainsAsync(Digest.Of("absent"u8), default));
    }

    [Fact]
    public async Task ListNamesEveryObjectOnceWithItsSize()
    {
        var objects = Mixed();
        await using var store = await OpenSeededAsync(objects);
        var listed = new List<ObjectInfo>();
        await foreach (var o in store.ListAsync(default)) listed.Add(o);
        foreach (var (d, bytes) in objects)
        {
            Assert.Equal(bytes.Length, Assert.Single(listed, o => o.Digest == d).Size);
        }
    }

    [Fact]
    public async Task ManyConcurrentReadersAllGetTheirBytes()
    {
        var objects = Enumerable.Range(0, 200).Select(i => Blob($"object {i} " + new string('z', i * 37))).ToList();
        await using var store = await OpenSeededAsync(objects);
        await Parallel.ForEachAsync(Enumerable.Range(0, 8), async (reader, ct) =>
        {
            foreach (var (d, bytes) in objects.Skip(reader * 7).Concat(objects.Take(reader * 7)))
            {
                Assert.Equal(bytes, await store.GetAsync(d, ct));
            }
        });
    }
}
