using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Cairn.Core;

/// <summary>
/// FastCDC-style content-defined chunking with normalized chunking (two masks). Boundaries depend only on
/// content, so an edit in a large file changes only the chunks around it. Parameters are part of the
/// repository format (docs/format/repository.md): changing them changes digests of large files.
/// </summary>
public static class Chunker
{
    /// <summary>Files larger than this are chunked; smaller ones are a single object.</summary>
    public const int Threshold = 1 << 20;
    public const int MinSize = 128 << 10;
    public const int AverageSize = 512 << 10;
    public const int MaxSize = 2 << 20;

    // 21 and 17 one-bits: harder to cut before the average size, easier after ("normalization level 2").
    private const ulong MaskSmall = ((1UL << 21) - 1) << (64 - 21);
    private const ulong MaskLarge = ((1UL << 17) - 1) << (64 - 17);

    /// <summary>gear[i] = first 8 bytes (big-endian) of SHA-256("cairn-gear" || i).</summary>
    private static readonly ulong[] Gear = BuildGear();

    private static ulong[] BuildGear()
    {
        var table = new ulong[256];
        Span<byte> input = stackalloc byte[11];
        "cairn-gear"u8.CopyTo(input);
        Span<byte> hash = stackalloc byte[32];
        for (var i = 0; i < 256; i++)
        {
            input[10] = (byte)i;
            SHA256.HashData(input, hash);
            table[i] = BinaryPrimitives.ReadUInt64BigEndian(hash);
        }

        return table;
    }

    /// <summary>Length of the next chunk at the start of <paramref name="data"/>; the whole span if it is the tail.</summary>
    public static int NextBoundary(ReadOnlySpan<byte> data)
    {
        var n = data.Length;
        if (n <= MinSize) return n;
        if (n > MaxSize) n = MaxSize;
        var normal = Math.Min(AverageSize, n);
        ulong hash = 0;
        var gear = Gear;
        var i = MinSize;
        for (; i < normal; i++)
        {
            hash = (hash << 1) + gear[data[i]];
            if ((hash & MaskSmall) == 0) return i + 1;
        }

        for (; i < n; i++)
        {
            hash = (hash << 1) + gear[data[i]];
            if ((hash & MaskLarge) == 0) return i + 1;
        }

        return n;
    }

    /// <summary>Splits a whole buffer; used for tests and by callers that hold the file in memory.</summary>
    public static List<(int Offset, int Length)> Split(ReadOnlySpan<byte> data)
    {
        var result = new List<(int, int)>();
        var offset = 0;
        while (offset < data.Length)
        {
            var len = NextBoundary(data[offset..]);
            result.Add((offset, len));
            offset += len;
        }

        return result;
    }
}
