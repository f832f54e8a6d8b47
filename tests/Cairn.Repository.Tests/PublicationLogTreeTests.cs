using System.Numerics;
using Cairn.Core;
using Cairn.Core.Transparency;
using Cairn.Repository.FileSystem;
using Cairn.Repository.Transparency;

namespace Cairn.Repository.Tests;

/// <summary>
/// The log's tiles as <see cref="LogAppender"/> writes them, checked against an independent computation of the
/// RFC 6962 tree from the leaves; and the cost of a client catching up, counted (not timed).
/// </summary>
public sealed class PublicationLogTreeTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static byte[] Entry(long i) => System.Text.Encoding.UTF8.GetBytes($"{{\"entry\":{i}}}");

    /// <summary>MTH over leaf hashes, straight from RFC 6962's definition (no tiles, no stored hashes).</summary>
    private static byte[] Mth(IReadOnlyList<byte[]> leaves, int start, int end)
    {
        if (end - start == 1) return leaves[start];
        var k = 1;
        while (k * 2 < end - start) k *= 2;
        return Merkle.NodeHash(Mth(leaves, start, start + k), Mth(leaves, start + k, end));
    }

    private async Task<WritableRepository> RepositoryAsync() =>
        await DirectoryRepository.InitAsync(_dir.Sub("repo"), "log-test", "linux-x86_64", TimeProvider.System, null, default);

    [Fact]
    public async Task AppendingOneByOneAcrossTileBoundariesKeepsTheTree()
    {
        await using var repo = await RepositoryAsync();
        var log = new LogAppender(repo.Store, null!);
        var leaves = new List<byte[]>();
        long size = 0;
        // Batches of odd sizes cross the 256 boundary at level 0 and complete a level-1 hash on the way.
        foreach (var batch in new[] { 1, 1, 3, 250, 1, 7, 256, 1, 300 })
        {
            var records = Enumerable.Range(0, batch).Select(i => Entry(size + i)).ToList();
            var checkpoint = await log.AppendAsync(size, records, default);
            leaves.AddRange(records.Select(r => Merkle.LeafHash(r)));
            size += batch;
            Assert.Equal(size, checkpoint.Size);
            Assert.Equal(Convert.ToBase64String(Mth(leaves, 0, leaves.Count)), checkpoint.RootBase64);
        }

        // Every entry can be proved against the final root, and every earlier tree is a prefix of it.
        var tiles = new TileReader(repo.Store.LogSource, size);
        var root = await tiles.RootAsync(default);
        foreach (var i in new long[] { 0, 255, 256, 511, 512, size - 1 })
        {
            var proof = await tiles.InclusionProofAsync(i, default);
            Assert.True(Merkle.VerifyInclusion(i, size, leaves[(int)i], proof, root), $"entry {i}");
        }

        foreach (var m in new long[] { 1, 2, 5, 255, 256, 257, 519, 520 })
        {
            var proof = await tiles.ConsistencyProofAsync(m, default);
            Assert.True(Merkle.VerifyConsistency(m, size, Mth(leaves, 0, (int)m), root, proof), $"{m} -> {size}");
        }

        Assert.Equal(size, (await tiles.VerifyAllAsync(root, default)).Count);
    }

    [Fact]
    public async Task CatchingUpFromACheckpoint100000EntriesOldIsCheap()
    {
        await using var repo = await RepositoryAsync();
        var log = new LogAppender(repo.Store, null!);
        const long old = 1_234;
        await log.AppendAsync(0, Enumerable.Range(0, (int)old).Select(i => Entry(i)).ToList(), default);
        var oldRoot = await new TileReader(repo.Store.LogSource, old).RootAsync(default);
        long size = old;
        while (size < old + 100_000)
        {
            var batch = (int)Math.Min(20_000, old + 100_000 - size);
            await log.AppendAsync(size, Enumerable.Range(0, batch).Select(i => Entry(size + i)).ToList(), default);
            size += batch;
        }

        // What a client does (LogVerifier): the new tree's root from its tiles, then the consistency proof.
        var tiles = new TileReader(repo.Store.LogSource, size);
        var root = await tiles.RootAsync(default);
        var proof = await tiles.ConsistencyProofAsync(old, default);
        Assert.True(Merkle.VerifyConsistency(old, size, oldRoot, root, proof));
        var bound = 2 * BitOperations.Log2((ulong)size) + 2;
        Assert.True(proof.Count <= 2 * Math.Log2(size), $"{proof.Count} proof hashes, bound {bound}");
        Assert.True(tiles.Requests <= 20, $"{tiles.Requests} tile requests");
        // The last entry's inclusion adds a bundle and no more than a few tiles.
        var inclusion = await tiles.InclusionProofAsync(size - 1, default);
        await tiles.EntriesAsync((size - 1) / Tiles.Width, default);
        Assert.True(Merkle.VerifyInclusion(size - 1, size, Merkle.LeafHash(Entry(size - 1)), inclusion, root));
        Assert.True(tiles.Requests <= 20, $"{tiles.Requests} requests with the inclusion proof");
    }

    [Fact]
    public async Task ADamagedTileIsNamed()
    {
        await using var repo = await RepositoryAsync();
        var log = new LogAppender(repo.Store, null!);
        var checkpoint = await log.AppendAsync(0, Enumerable.Range(0, 300).Select(i => Entry(i)).ToList(), default);
        var path = Path.Combine(_dir.Sub("repo"), "log/tile/0/000");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^32]);
        var e = await Assert.ThrowsAsync<CairnException>(() => new TileReader(repo.Store.LogSource, 300).VerifyAllAsync(checkpoint.Root, default));
        Assert.Equal(ErrorCode.LogTileInvalid, e.Code);
        Assert.Contains("log/tile/0/000", e.Message, StringComparison.Ordinal);
        bytes[5] ^= 4;
        File.WriteAllBytes(path, bytes);
        // The root does not read this full tile (the level-1 hash stands for it); the whole-tree check does.
        Assert.Equal(checkpoint.RootBase64, Convert.ToBase64String(await new TileReader(repo.Store.LogSource, 300).RootAsync(default)));
        var flipped = await Assert.ThrowsAsync<CairnException>(() => new TileReader(repo.Store.LogSource, 300).VerifyAllAsync(checkpoint.Root, default));
        Assert.Equal(ErrorCode.LogTileInvalid, flipped.Code);
    }
}
