using System.Buffers.Binary;
using System.Security.Cryptography;
using Cairn.Core;

namespace Cairn.Repository;

/// <summary>
/// Writes a pack (docs/format/repository.md §4) — the magic, then one record per object: digest, codec, stored and
/// uncompressed length, stored bytes — to a sink (a file, a buffer in memory), and at the end names it by the SHA-256
/// of its bytes and encodes its index. Every backend that writes packs (directory, S3) writes them through this one
/// encoder; <see cref="PackIndexCodec"/> reads the index back.
/// </summary>
public sealed class PackEncoder : IDisposable
{
    public static ReadOnlySpan<byte> Magic => "CPK1"u8;

    /// <summary>digest (32) + codec (1) + stored length (4) + uncompressed length (4), big-endian.</summary>
    public const int RecordHeaderSize = 32 + 1 + 4 + 4;

    private readonly Action<ReadOnlySpan<byte>, long> _sink;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly List<(Digest Digest, long Offset, int StoredSize, int Size, Codec Codec)> _entries = [];

    /// <param name="sink">Writes bytes at an offset of the pack; called in order, each offset the end of the last write.</param>
    public PackEncoder(Action<ReadOnlySpan<byte>, long> sink)
    {
        _sink = sink;
        Emit(Magic);
    }

    /// <summary>Bytes written so far.</summary>
    public long Length { get; private set; }

    public int Count => _entries.Count;

    private void Emit(ReadOnlySpan<byte> bytes)
    {
        _sink(bytes, Length);
        _hash.AppendData(bytes);
        Length += bytes.Length;
    }

    /// <summary>Appends one object's record; returns the offset of its stored bytes (what the index records).</summary>
    public long Append(Digest digest, Codec codec, ReadOnlySpan<byte> stored, int size)
    {
        Span<byte> header = stackalloc byte[RecordHeaderSize];
        digest.WriteTo(header);
        header[32] = (byte)codec;
        BinaryPrimitives.WriteUInt32BigEndian(header[33..], (uint)stored.Length);
        BinaryPrimitives.WriteUInt32BigEndian(header[37..], (uint)size);
        Emit(header);
        var offset = Length;
        Emit(stored);
        _entries.Add((digest, offset, stored.Length, size, codec));
        return offset;
    }

    /// <summary>The pack's name (the lowercase hex SHA-256 of its bytes) and its index.</summary>
    public (string Name, byte[] Index) Finish() =>
        (Convert.ToHexStringLower(_hash.GetHashAndReset()), PackIndexCodec.Encode(_entries));

    public void Dispose() => _hash.Dispose();
}
