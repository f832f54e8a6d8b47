using Cairn.Core;
using ZstdSharp;

namespace Cairn.Repository;

public enum Codec : byte
{
    Raw = 0,
    Zstd = 1,
}

/// <summary>Compression of single objects: zstd level 3, or raw when zstd saves less than 3%.</summary>
public static class ObjectCodec
{
    public const int Level = 3;

    [ThreadStatic]
    private static Compressor? t_compressor;

    [ThreadStatic]
    private static Decompressor? t_decompressor;

    public static (Codec Codec, ReadOnlyMemory<byte> Stored) Compress(ReadOnlyMemory<byte> content)
    {
        if (content.Length < 64)
        {
            return (Codec.Raw, content);
        }

        var compressor = t_compressor ??= new Compressor(Level);
        var bound = Compressor.GetCompressBound(content.Length);
        var buffer = new byte[bound];
        var written = compressor.Wrap(content.Span, buffer);
        return written < content.Length - (content.Length / 32)
            ? (Codec.Zstd, buffer.AsMemory(0, written))
            : (Codec.Raw, content);
    }

    /// <summary>Decodes and verifies; <paramref name="expectedSize"/> bounds the output so a hostile object cannot expand without limit.</summary>
    public static byte[] Decode(Codec codec, ReadOnlySpan<byte> stored, long expectedSize, Digest digest, string where)
    {
        byte[] content;
        switch (codec)
        {
            case Codec.Raw:
                content = stored.ToArray();
                break;
            case Codec.Zstd:
                content = new byte[expectedSize];
                try
                {
                    var decompressor = t_decompressor ??= new Decompressor();
                    var n = decompressor.Unwrap(stored, content);
                    if (n != expectedSize) throw Corrupt(digest, where, $"decompressed to {n} bytes, expected {expectedSize}");
                }
                catch (ZstdException e)
                {
                    throw Corrupt(digest, where, $"zstd: {e.Message}");
                }

                break;
            default:
                throw Corrupt(digest, where, $"unknown codec {(byte)codec}");
        }

        if (content.Length != expectedSize) throw Corrupt(digest, where, $"size {content.Length}, expected {expectedSize}");
        if (Digest.Of(content) != digest) throw Corrupt(digest, where, "content does not hash to its digest");
        return content;
    }

    public static CairnException Corrupt(Digest digest, string where, string why) =>
        new(ErrorCode.ObjectCorrupt, $"object {digest} in {where} is corrupt: {why}",
            "run 'cairn verify --full' to list affected products; republish them or restore the object from a mirror");

    public static CairnException Missing(Digest digest, string where) =>
        new(ErrorCode.ObjectMissing, $"object {digest} is missing from {where}",
            "run 'cairn verify' to list affected products; republish them or restore the object from a mirror");
}
