using System.Buffers.Binary;

namespace Cairn.Core.Transparency;

/// <summary>A tile of the C2SP tlog-tiles layout: level, index, and width (256 when full).</summary>
public readonly record struct TileId(int Level, long Index, int Width)
{
    public bool IsFull => Width == Tiles.Width;
}

/// <summary>
/// The arithmetic of the C2SP tlog-tiles layout (docs/format/transparency-log.md §3): a tile at level L holds up to
/// 256 consecutive hashes of complete subtrees of height 8·L; higher subtrees are rebuilt by hashing within a tile.
/// </summary>
public static class Tiles
{
    public const int Height = 8;
    public const int Width = 1 << Height;

    /// <summary>How many hashes at tile level <paramref name="level"/> a tree of <paramref name="size"/> has (complete subtrees of height 8·level).</summary>
    public static long HashCount(int level, long size) => level * Height >= 63 ? 0 : size >> (level * Height);

    /// <summary>The tile of a tree of <paramref name="size"/> holding the hashes <paramref name="node"/> is built from, and where in it they lie.</summary>
    public static (TileId Tile, int Offset, int Count) Locate(SubtreeNode node, long size)
    {
        var level = node.Level / Height;
        var rise = node.Level % Height;
        var first = node.Index << rise;
        var index = first / Width;
        var width = (int)Math.Min(Width, HashCount(level, size) - index * Width);
        if (width <= 0 || first + (1L << rise) > HashCount(level, size))
        {
            throw new ArgumentOutOfRangeException(nameof(node), $"subtree {node} is not complete in a tree of {size}");
        }

        return (new TileId(level, index, width), (int)(first % Width), 1 << rise);
    }

    /// <summary>The tiles a tree of <paramref name="size"/> is made of, at every level (what <c>cairn log verify</c> reads).</summary>
    public static IEnumerable<TileId> All(long size)
    {
        for (var level = 0; HashCount(level, size) > 0; level++)
        {
            var count = HashCount(level, size);
            for (long i = 0; i * Width < count; i++) yield return new TileId(level, i, (int)Math.Min(Width, count - i * Width));
        }
    }

    /// <summary>A tile's hashes; null when the bytes are not exactly <paramref name="tile"/>'s width of 32-byte hashes.</summary>
    public static byte[][]? Split(TileId tile, ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != tile.Width * Merkle.HashSize) return null;
        var hashes = new byte[tile.Width][];
        for (var i = 0; i < tile.Width; i++) hashes[i] = bytes.Slice(i * Merkle.HashSize, Merkle.HashSize).ToArray();
        return hashes;
    }

    /// <summary>An entry bundle: each entry as a big-endian uint16 length and its bytes.</summary>
    public static byte[] EncodeBundle(IEnumerable<byte[]> entries)
    {
        var buffer = new List<byte>();
        Span<byte> length = stackalloc byte[2];
        foreach (var e in entries)
        {
            if (e.Length > ushort.MaxValue) throw new ArgumentException($"a log entry is at most {ushort.MaxValue} bytes, not {e.Length}", nameof(entries));
            BinaryPrimitives.WriteUInt16BigEndian(length, (ushort)e.Length);
            buffer.AddRange(length);
            buffer.AddRange(e);
        }

        return [.. buffer];
    }

    /// <summary>An entry bundle's entries; null when it is truncated, has trailing bytes, or holds another count than <paramref name="count"/>.</summary>
    public static List<byte[]>? DecodeBundle(ReadOnlySpan<byte> bytes, int count)
    {
        var entries = new List<byte[]>(count);
        while (bytes.Length > 0)
        {
            if (bytes.Length < 2) return null;
            var length = BinaryPrimitives.ReadUInt16BigEndian(bytes);
            if (bytes.Length < 2 + length) return null;
            entries.Add(bytes.Slice(2, length).ToArray());
            bytes = bytes[(2 + length)..];
        }

        return entries.Count == count ? entries : null;
    }
}
