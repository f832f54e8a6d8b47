using System.Numerics;
using System.Security.Cryptography;

namespace Cairn.Core.Transparency;

/// <summary>A complete (perfect, aligned) subtree: the 2^Level leaves from Index·2^Level (docs/format/transparency-log.md §2).</summary>
public readonly record struct SubtreeNode(int Level, long Index);

/// <summary>
/// RFC 6962 Merkle tree hashing (§2.1) and the proofs over it (RFC 9162 §2.1.3–2.1.4 for verification). Proofs are
/// described as leaf ranges [start, end) whose hashes a caller reads from wherever it stores the tree (tiles).
/// </summary>
public static class Merkle
{
    public const int HashSize = 32;

    /// <summary>The root of the empty tree: SHA-256 of nothing.</summary>
    public static byte[] EmptyRoot() => SHA256.HashData([]);

    /// <summary>SHA-256(0x00 || data).</summary>
    public static byte[] LeafHash(ReadOnlySpan<byte> data)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData([0]);
        h.AppendData(data);
        return h.GetHashAndReset();
    }

    /// <summary>SHA-256(0x01 || left || right).</summary>
    public static byte[] NodeHash(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right)
    {
        Span<byte> buffer = stackalloc byte[1 + 2 * HashSize];
        buffer[0] = 1;
        left.CopyTo(buffer[1..]);
        right.CopyTo(buffer[(1 + HashSize)..]);
        return SHA256.HashData(buffer);
    }

    /// <summary>The largest power of two strictly below <paramref name="n"/> (n ≥ 2): where RFC 6962 splits a range.</summary>
    public static long Split(long n) => 1L << (63 - BitOperations.LeadingZeroCount((ulong)(n - 1)));

    /// <summary>The root of a perfect tree over 2^k hashes (a level of a tile).</summary>
    public static byte[] PerfectRoot(IReadOnlyList<byte[]> hashes, int start, int count)
    {
        if (count == 1) return hashes[start];
        var half = count / 2;
        return NodeHash(PerfectRoot(hashes, start, half), PerfectRoot(hashes, start + half, half));
    }

    /// <summary>MTH of the leaves [start, end), from the stored hashes of complete subtrees.</summary>
    public static byte[] RangeHash(long start, long end, Func<SubtreeNode, byte[]> stored)
    {
        ArgumentNullException.ThrowIfNull(stored);
        if (end <= start) throw new ArgumentOutOfRangeException(nameof(end), "empty range");
        var n = end - start;
        if (BitOperations.IsPow2(n) && start % n == 0) return stored(new SubtreeNode(BitOperations.Log2((ulong)n), start / n));
        var k = Split(n);
        return NodeHash(RangeHash(start, start + k, stored), RangeHash(start + k, end, stored));
    }

    /// <summary>The complete subtrees whose hashes <see cref="RangeHash"/> reads for [start, end).</summary>
    public static IEnumerable<SubtreeNode> RangeNodes(long start, long end)
    {
        while (start < end)
        {
            var n = end - start;
            if (BitOperations.IsPow2(n) && start % n == 0)
            {
                yield return new SubtreeNode(BitOperations.Log2((ulong)n), start / n);
                yield break;
            }

            var k = Split(n);
            foreach (var node in RangeNodes(start, start + k)) yield return node;
            start += k;
        }
    }

    /// <summary>The root of the tree of <paramref name="size"/> leaves.</summary>
    public static byte[] Root(long size, Func<SubtreeNode, byte[]> stored) => size == 0 ? EmptyRoot() : RangeHash(0, size, stored);

    /// <summary>The leaf ranges whose hashes form the inclusion proof of leaf <paramref name="index"/> in a tree of <paramref name="size"/> (RFC 6962 PATH), bottom first.</summary>
    public static IReadOnlyList<(long Start, long End)> InclusionRanges(long index, long size)
    {
        if (index < 0 || index >= size) throw new ArgumentOutOfRangeException(nameof(index), $"leaf {index} is not in a tree of {size}");
        var path = new List<(long, long)>();
        long start = 0, end = size;
        while (end - start > 1)
        {
            var k = Split(end - start);
            if (index < start + k)
            {
                path.Add((start + k, end));
                end = start + k;
            }
            else
            {
                path.Add((start, start + k));
                start += k;
            }
        }

        path.Reverse();
        return path;
    }

    /// <summary>The leaf ranges whose hashes form the consistency proof from <paramref name="size1"/> to <paramref name="size2"/> (RFC 6962 PROOF), bottom first.</summary>
    public static IReadOnlyList<(long Start, long End)> ConsistencyRanges(long size1, long size2)
    {
        if (size1 < 0 || size2 < size1) throw new ArgumentOutOfRangeException(nameof(size2), $"no consistency proof from {size1} to {size2}");
        var path = new List<(long, long)>();
        if (size1 == 0 || size1 == size2) return path;
        long start = 0, end = size2, m = size1;
        var complete = true;
        while (true)
        {
            var n = end - start;
            if (m == n)
            {
                if (!complete) path.Add((start, end));
                break;
            }

            var k = Split(n);
            if (m <= k)
            {
                path.Add((start + k, end));
                end = start + k;
            }
            else
            {
                path.Add((start, start + k));
                start += k;
                m -= k;
                complete = false;
            }
        }

        path.Reverse();
        return path;
    }

    /// <summary>RFC 9162 §2.1.3.2: whether <paramref name="proof"/> proves leaf <paramref name="index"/> with hash <paramref name="leafHash"/> in the tree of <paramref name="size"/> with <paramref name="root"/>.</summary>
    public static bool VerifyInclusion(long index, long size, ReadOnlySpan<byte> leafHash, IReadOnlyList<byte[]> proof, ReadOnlySpan<byte> root)
    {
        ArgumentNullException.ThrowIfNull(proof);
        if (index < 0 || index >= size || leafHash.Length != HashSize || root.Length != HashSize) return false;
        var fn = index;
        var sn = size - 1;
        var r = leafHash.ToArray();
        foreach (var p in proof)
        {
            if (sn == 0 || p.Length != HashSize) return false;
            if ((fn & 1) == 1 || fn == sn)
            {
                r = NodeHash(p, r);
                SkipRightEdge(ref fn, ref sn);
            }
            else
            {
                r = NodeHash(r, p);
            }

            fn >>= 1;
            sn >>= 1;
        }

        return sn == 0 && r.AsSpan().SequenceEqual(root);
    }

    /// <summary>RFC 9162 §2.1.4.2: whether <paramref name="proof"/> proves the tree (size1, root1) is a prefix of (size2, root2).</summary>
    public static bool VerifyConsistency(long size1, long size2, ReadOnlySpan<byte> root1, ReadOnlySpan<byte> root2, IReadOnlyList<byte[]> proof)
    {
        ArgumentNullException.ThrowIfNull(proof);
        // From the empty tree nothing is proved (every tree extends it): callers skip the check instead.
        if (size1 <= 0 || size2 < size1) return false;
        if (size1 == size2) return proof.Count == 0 && root1.SequenceEqual(root2);
        if (proof.Count == 0 || root1.Length != HashSize || root2.Length != HashSize) return false;
        var path = BitOperations.IsPow2(size1) ? [root1.ToArray(), .. proof] : proof.ToList();
        var fn = size1 - 1;
        var sn = size2 - 1;
        while ((fn & 1) == 1)
        {
            fn >>= 1;
            sn >>= 1;
        }

        if (path[0].Length != HashSize) return false;
        var fr = path[0];
        var sr = path[0];
        foreach (var c in path.Skip(1))
        {
            if (sn == 0 || c.Length != HashSize) return false;
            if ((fn & 1) == 1 || fn == sn)
            {
                fr = NodeHash(c, fr);
                sr = NodeHash(c, sr);
                SkipRightEdge(ref fn, ref sn);
            }
            else
            {
                sr = NodeHash(sr, c);
            }

            fn >>= 1;
            sn >>= 1;
        }

        return sn == 0 && fr.AsSpan().SequenceEqual(root1) && sr.AsSpan().SequenceEqual(root2);
    }

    /// <summary>RFC 9162's step for a node on the right edge: shift both indexes until the first is odd or 0.</summary>
    private static void SkipRightEdge(ref long fn, ref long sn)
    {
        while ((fn & 1) == 0 && fn != 0)
        {
            fn >>= 1;
            sn >>= 1;
        }
    }
}
