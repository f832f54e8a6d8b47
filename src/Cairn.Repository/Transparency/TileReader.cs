using System.Collections.Concurrent;
using Cairn.Core;
using Cairn.Core.Transparency;

namespace Cairn.Repository.Transparency;

/// <summary>
/// Reads the hashes of a tree of <see cref="Size"/> leaves from its tiles (docs/format/transparency-log.md §3) and
/// computes roots and proofs from them: the tiles a computation needs are fetched once each, in parallel, and every
/// one is checked for its exact length. Counts requests and hashes so the catch-up cost can be asserted.
/// </summary>
public sealed class TileReader(ILogSource source, long size)
{
    private readonly ConcurrentDictionary<TileId, byte[][]> _tiles = new();
    private long _requests;
    private long _hashes;

    public long Size { get; } = size;

    public ILogSource Source => source;

    /// <summary>Tile and entry-bundle requests made so far.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Hashes read from tiles (each 32 bytes) so far.</summary>
    public long HashesRead => Interlocked.Read(ref _hashes);

    /// <summary>Puts a tile's hashes in the cache (the writer, which has just written them).</summary>
    public void Seed(TileId tile, byte[][] hashes) => _tiles[tile] = hashes;

    public async Task<byte[]> RootAsync(CancellationToken ct)
    {
        if (Size == 0) return Merkle.EmptyRoot();
        await LoadAsync(Merkle.RangeNodes(0, Size), ct).ConfigureAwait(false);
        return Merkle.Root(Size, Stored);
    }

    /// <summary>The inclusion proof of leaf <paramref name="index"/>, bottom first.</summary>
    public Task<IReadOnlyList<byte[]>> InclusionProofAsync(long index, CancellationToken ct) => ProofAsync(Merkle.InclusionRanges(index, Size), ct);

    /// <summary>The consistency proof from the tree of <paramref name="oldSize"/> leaves to this one.</summary>
    public Task<IReadOnlyList<byte[]>> ConsistencyProofAsync(long oldSize, CancellationToken ct) => ProofAsync(Merkle.ConsistencyRanges(oldSize, Size), ct);

    private async Task<IReadOnlyList<byte[]>> ProofAsync(IReadOnlyList<(long Start, long End)> ranges, CancellationToken ct)
    {
        await LoadAsync(ranges.SelectMany(r => Merkle.RangeNodes(r.Start, r.End)), ct).ConfigureAwait(false);
        return ranges.Select(r => Merkle.RangeHash(r.Start, r.End, Stored)).ToList();
    }

    /// <summary>The leaf hashes of level-0 tile <paramref name="index"/> (to check an entry bundle against).</summary>
    public async Task<byte[][]> LeafTileAsync(long index, CancellationToken ct)
    {
        var width = (int)Math.Min(Tiles.Width, Size - index * Tiles.Width);
        var tile = new TileId(0, index, width);
        await LoadAsync([new SubtreeNode(0, index * Tiles.Width)], ct).ConfigureAwait(false);
        return _tiles[tile];
    }

    /// <summary>The records of entry bundle <paramref name="index"/>, each checked against its leaf hash in the level-0 tile.</summary>
    public async Task<List<byte[]>> EntriesAsync(long index, CancellationToken ct)
    {
        var leaves = await LeafTileAsync(index, ct).ConfigureAwait(false);
        var path = LogFiles.Entries(index, leaves.Length);
        Interlocked.Increment(ref _requests);
        var bytes = await source.ReadAsync(path, LogFiles.MaxBundleBytes, ct).ConfigureAwait(false) ?? throw Invalid(path, "it is missing");
        var entries = Tiles.DecodeBundle(bytes, leaves.Length) ?? throw Invalid(path, $"it is truncated or does not hold {leaves.Length} entries");
        for (var i = 0; i < entries.Count; i++)
        {
            if (!Merkle.LeafHash(entries[i]).AsSpan().SequenceEqual(leaves[i])) throw Invalid(path, $"entry {index * Tiles.Width + i} does not hash to its leaf");
        }

        return entries;
    }

    private byte[] Stored(SubtreeNode node)
    {
        var (tile, offset, count) = Tiles.Locate(node, Size);
        var hashes = _tiles[tile];
        Interlocked.Add(ref _hashes, count);
        return count == 1 ? hashes[offset] : Merkle.PerfectRoot(hashes, offset, count);
    }

    private async Task LoadAsync(IEnumerable<SubtreeNode> nodes, CancellationToken ct)
    {
        var missing = nodes.Select(n => Tiles.Locate(n, Size).Tile).Distinct().Where(t => !_tiles.ContainsKey(t)).ToList();
        await Parallel.ForEachAsync(missing, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (tile, token) =>
            await TileAsync(tile, token).ConfigureAwait(false)).ConfigureAwait(false);
    }

    /// <summary>A tile's hashes, fetched once and checked for its exact length.</summary>
    public async Task<byte[][]> TileAsync(TileId tile, CancellationToken ct)
    {
        if (_tiles.TryGetValue(tile, out var known)) return known;
        var path = LogFiles.Tile(tile);
        Interlocked.Increment(ref _requests);
        var bytes = await source.ReadAsync(path, LogFiles.MaxTileBytes, ct).ConfigureAwait(false) ?? throw Invalid(path, "it is missing");
        var hashes = Tiles.Split(tile, bytes) ?? throw Invalid(path, $"it is {bytes.Length} bytes, not {tile.Width} hashes of 32 bytes");
        _tiles[tile] = hashes;
        return hashes;
    }

    /// <summary>
    /// Checks the whole tree (cairn log verify): every entry bundle against its leaf hashes, every hash of a higher
    /// tile against the full tile below it, and the root. Returns the entries in order.
    /// </summary>
    public async Task<List<byte[]>> VerifyAllAsync(byte[] root, CancellationToken ct)
    {
        var entries = new List<byte[]>();
        for (long b = 0; b * Tiles.Width < Size; b++) entries.AddRange(await EntriesAsync(b, ct).ConfigureAwait(false));
        foreach (var tile in Tiles.All(Size).Where(t => t.Level > 0))
        {
            var hashes = await TileAsync(tile, ct).ConfigureAwait(false);
            for (var i = 0; i < hashes.Length; i++)
            {
                var below = await TileAsync(new TileId(tile.Level - 1, tile.Index * Tiles.Width + i, Tiles.Width), ct).ConfigureAwait(false);
                if (!Merkle.PerfectRoot(below, 0, below.Length).AsSpan().SequenceEqual(hashes[i]))
                {
                    throw Invalid(LogFiles.Tile(tile), $"hash {i} is not the root of tile {LogFiles.Tile(new TileId(tile.Level - 1, tile.Index * Tiles.Width + i, Tiles.Width))}");
                }
            }
        }

        var computed = await RootAsync(ct).ConfigureAwait(false);
        if (!computed.AsSpan().SequenceEqual(root))
        {
            throw new CairnException(ErrorCode.LogTileInvalid, $"the tiles give root {Convert.ToBase64String(computed)} for {Size} entries, not the checkpoint's {Convert.ToBase64String(root)}",
                "a tile was changed after the checkpoint was signed: restore log/ from a mirror");
        }

        return entries;
    }

    private CairnException Invalid(string path, string why) =>
        new(ErrorCode.LogTileInvalid, $"log tile '{source.Where(path)}' of the tree of {Size} entries is unusable: {why}",
            "retry (a proxy may hold a damaged copy) or use another server; the publisher can check the log with 'cairn log verify'");
}
