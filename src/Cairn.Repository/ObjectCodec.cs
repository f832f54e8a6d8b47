using Cairn.Core;
using ZstdSharp;

namespace Cairn.Repository;

public enum Codec : byte
{
    Raw = 0,
    Zstd = 1,
}

/// <summary>Compression of single objects: zstd level 3, or raw when zstd saves less than 3%. Uses the system libzstd when present.</summary>
public static class ObjectCodec
{
    public const int Level = 3;

    [ThreadStatic]
    private static Compressor? t_compressor;

    [ThreadStatic]
    private static Decompressor? t_decompressor;

    public static (Codec Codec, ReadOnlyMemory<byte> Stored) Compress(ReadOnlyMemory<byte> content)
    {
        var buffer = new byte[MaxStoredLength(content.Length)];
        var (codec, written) = Compress(content.Span, buffer);
        return codec == Codec.Zstd ? (codec, buffer.AsMemory(0, written)) : (Codec.Raw, content);
    }

    /// <summary>Size of a destination buffer that <see cref="Compress(ReadOnlySpan{byte}, Span{byte})"/> always fits into.</summary>
    public static int MaxStoredLength(int contentLength) => Compressor.GetCompressBound(contentLength);

    /// <summary>
    /// Compresses into a caller-owned buffer (at least <see cref="MaxStoredLength"/> bytes), so the hot path of
    /// publish allocates nothing per object. On <see cref="Codec.Raw"/> the caller stores <paramref name="content"/> itself.
    /// </summary>
    public static (Codec Codec, int Length) Compress(ReadOnlySpan<byte> content, Span<byte> destination)
    {
        if (content.Length < 64)
        {
            return (Codec.Raw, content.Length);
        }

        int written;
        if (NativeZstd.Available)
        {
            written = NativeZstd.Compress(content, destination, Level);
            if (written < 0) return (Codec.Raw, content.Length);
        }
        else
        {
            var compressor = t_compressor ??= new Compressor(Level);
            written = compressor.Wrap(content, destination);
        }

        return written < content.Length - (content.Length / 32)
            ? (Codec.Zstd, written)
            : (Codec.Raw, content.Length);
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
                if (NativeZstd.Available)
                {
                    var n = NativeZstd.Decompress(stored, content, out var error);
                    if (n < 0) throw Corrupt(digest, where, $"zstd: {error}");
                    if (n != expectedSize) throw Corrupt(digest, where, $"decompressed to {n} bytes, expected {expectedSize}");
                    break;
                }

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
