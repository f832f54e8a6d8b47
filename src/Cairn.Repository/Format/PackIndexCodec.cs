using System.Buffers.Binary;
using System.Security.Cryptography;
using Cairn.Core;

namespace Cairn.Repository;

/// <summary>Where an object lies in a pack, from the pack's index (docs/format/repository.md §4).</summary>
public readonly record struct PackLocation(string Pack, long Offset, int StoredSize, int Size, Codec Codec);

/// <summary>The pack index format, written and read by every backend (directory, S3, HTTP) through this one codec.</summary>
public static class PackIndexCodec
{
    private const int Entry = 32 + 8 + 4 + 4 + 1;

    /// <summary>Encodes entries sorted by digest, with the trailing SHA-256 checksum.</summary>
    public static byte[] Encode(IEnumerable<(Digest Digest, long Offset, int StoredSize, int Size, Codec Codec)> entries)
    {
        var sorted = entries.OrderBy(e => e.Digest).ToList();
        var idx = new byte[8 + (sorted.Count * Entry) + 32];
        "CIX1"u8.CopyTo(idx);
        BinaryPrimitives.WriteUInt32BigEndian(idx.AsSpan(4), (uint)sorted.Count);
        for (var i = 0; i < sorted.Count; i++)
        {
            var e = sorted[i];
            var span = idx.AsSpan(8 + (i * Entry), Entry);
            e.Digest.WriteTo(span);
            BinaryPrimitives.WriteUInt64BigEndian(span[32..], (ulong)e.Offset);
            BinaryPrimitives.WriteUInt32BigEndian(span[40..], (uint)e.StoredSize);
            BinaryPrimitives.WriteUInt32BigEndian(span[44..], (uint)e.Size);
            span[48] = (byte)e.Codec;
        }

        SHA256.HashData(idx.AsSpan(0, idx.Length - 32), idx.AsSpan(idx.Length - 32));
        return idx;
    }

    /// <summary>Parses and checks an index: header, length, checksum, sorted unique digests, known codecs.</summary>
    public static List<(Digest Digest, PackLocation Location)> Parse(ReadOnlySpan<byte> data, string pack, string where, string hint)
    {
        if (data.Length < 8 + 32 || !data[..4].SequenceEqual("CIX1"u8))
        {
            throw Malformed(where, "bad header", hint);
        }

        var count = BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
        if (data.Length != 8 + ((long)count * Entry) + 32)
        {
            throw Malformed(where, $"length {data.Length} does not match {count} entries", hint);
        }

        if (!SHA256.HashData(data[..^32]).AsSpan().SequenceEqual(data[^32..]))
        {
            throw Malformed(where, "checksum mismatch", hint);
        }

        var result = new List<(Digest, PackLocation)>((int)count);
        Digest previous = default;
        for (var i = 0; i < count; i++)
        {
            var span = data.Slice(8 + (i * Entry), Entry);
            var digest = Digest.FromBytes(span[..32]);
            if (i > 0 && digest <= previous) throw Malformed(where, "entries are not sorted", hint);
            previous = digest;
            var codec = (Codec)span[48];
            if (codec is not (Codec.Raw or Codec.Zstd)) throw Malformed(where, $"unknown codec {span[48]}", hint);
            result.Add((digest, new PackLocation(pack,
                (long)BinaryPrimitives.ReadUInt64BigEndian(span[32..]),
                (int)BinaryPrimitives.ReadUInt32BigEndian(span[40..]),
                (int)BinaryPrimitives.ReadUInt32BigEndian(span[44..]),
                codec)));
        }

        return result;
    }

    private static CairnException Malformed(string where, string why, string hint) =>
        new(ErrorCode.PackMalformed, $"pack index {where} is malformed ({why})", hint);
}
