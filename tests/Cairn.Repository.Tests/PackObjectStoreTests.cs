using Cairn.Core;
using Cairn.Repository.FileSystem;

namespace Cairn.Repository.Tests;

public sealed class PackObjectStoreTests : ObjectStoreConformance, IDisposable
{
    private readonly TempDirectory _dir = new();

    protected override Task<IObjectStore> CreateAsync() => ReopenAsync();

    protected override Task<IObjectStore> ReopenAsync() =>
        Task.FromResult<IObjectStore>(new PackObjectStore(_dir.Sub("packs"), _dir.Sub("tmp")));

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task AFlippedByteIsDetectedOnRead()
    {
        var data = new byte[100_000];
        new Random(9).NextBytes(data);
        var digest = Digest.Of(data);
        await using (var store = await CreateAsync())
        {
            await store.PutAsync(digest, data, default);
            await store.FlushAsync(default);
        }

        var pack = Directory.GetFiles(_dir.Sub("packs"), "*.pack").Single();
        var bytes = await File.ReadAllBytesAsync(pack);
        bytes[^10] ^= 0xFF;
        await File.WriteAllBytesAsync(pack, bytes);
        await using var reopened = await ReopenAsync();
        var e = await Assert.ThrowsAsync<CairnException>(async () => await reopened.GetAsync(digest, default));
        Assert.Equal(ErrorCode.ObjectCorrupt, e.Code);
        Assert.Contains(digest.ToString(), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ManySmallObjectsMakeOnePack()
    {
        await using var store = await CreateAsync();
        for (var i = 0; i < 5000; i++)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes($"small file {i}");
            await store.PutAsync(Digest.Of(bytes), bytes, default);
        }

        await store.FlushAsync(default);
        Assert.Single(Directory.GetFiles(_dir.Sub("packs"), "*.pack"));
        Assert.Empty(Directory.GetFiles(_dir.Sub("tmp")));
    }

    [Fact]
    public async Task IncompressibleDataIsStoredRawAndCompressibleDataShrinks()
    {
        var random = new byte[1 << 20];
        new Random(1).NextBytes(random);
        var zeros = new byte[1 << 20];
        await using var store = await CreateAsync();
        await store.PutAsync(Digest.Of(random), random, default);
        await store.FlushAsync(default);
        var afterRandom = Directory.GetFiles(_dir.Sub("packs"), "*.pack").Sum(f => new FileInfo(f).Length);
        Assert.InRange(afterRandom, random.Length, random.Length + 200);
        await store.PutAsync(Digest.Of(zeros), zeros, default);
        await store.FlushAsync(default);
        var afterZeros = Directory.GetFiles(_dir.Sub("packs"), "*.pack").Sum(f => new FileInfo(f).Length);
        Assert.True(afterZeros - afterRandom < 1000, $"1 MiB of zeros took {afterZeros - afterRandom} bytes");
    }
}
