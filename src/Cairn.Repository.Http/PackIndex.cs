using System.Buffers.Binary;
using System.Security.Cryptography;
using Cairn.Core;

namespace Cairn.Repository.Http;

/// <summary>Where an object lies in a pack, from the pack's index (docs/format/repository.md §4).</summary>
public readonly record struct PackLocation(string Pack, long Offset, int StoredSize, int Size, Codec Codec);

public static class PackIndex
{
    private const int Entry = 32 + 8 + 4 + 4 + 1;

    /// <summary>Parses and checks an index: header, length, checksum, sorted unique digests, known codecs.</summary>
    public static List<(Digest Digest, PackLocation Location)> Parse(ReadOnlySpan<byte> data, string pack, string where)
    {
        if (data.Length < 8 + 32 || !data[..4].SequenceEqual("CIX1"u8))
        {
            throw Malformed(where, "bad header");
        }

        var count = BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
        if (data.Length != 8 + ((long)count * Entry) + 32)
        {
            throw Malformed(where, $"length {data.Length} does not match {count} entries");
        }

        if (!SHA256.HashData(data[..^32]).AsSpan().SequenceEqual(data[^32..]))
        {
            throw Malformed(where, "checksum mismatch");
        }

        var result = new List<(Digest, PackLocation)>((int)count);
        Digest previous = default;
        for (var i = 0; i < count; i++)
        {
            var span = data.Slice(8 + (i * Entry), Entry);
            var digest = Digest.FromBytes(span[..32]);
            if (i > 0 && digest <= previous) throw Malformed(where, "entries are not sorted");
            previous = digest;
            var codec = (Codec)span[48];
            if (codec is not (Codec.Raw or Codec.Zstd)) throw Malformed(where, $"unknown codec {span[48]}");
            result.Add((digest, new PackLocation(pack,
                (long)BinaryPrimitives.ReadUInt64BigEndian(span[32..]),
                (int)BinaryPrimitives.ReadUInt32BigEndian(span[40..]),
                (int)BinaryPrimitives.ReadUInt32BigEndian(span[44..]),
                codec)));
        }

        return result;
    }

    private static CairnException Malformed(string where, string why) =>
        new(ErrorCode.PackMalformed, $"pack index {where} is malformed ({why})", "the server's copy is damaged; another server is tried");
}
