using System.Runtime.InteropServices;

namespace Cairn.Repository;

/// <summary>
/// The system's libzstd (Debian's libzstd1, which apt and systemd already depend on). Same zstd frames as the
/// managed ZstdSharp port, which stays the fallback when the library is absent or CAIRN_ZSTD=managed; but 2-3×
/// faster to decompress and free of JIT warm-up, which dominated short runs (docs/performance.md).
/// Contexts are per thread and live as long as the thread; one-shot calls only, bounded by the destination size.
/// </summary>
internal static unsafe partial class NativeZstd
{
    private const string Library = "libzstd.so.1";

    public static bool Available { get; } = Probe();

    [ThreadStatic]
    private static nint t_cctx;

    [ThreadStatic]
    private static nint t_dctx;

    [LibraryImport(Library)]
    private static partial uint ZSTD_versionNumber();

    [LibraryImport(Library)]
    private static partial nint ZSTD_createCCtx();

    [LibraryImport(Library)]
    private static partial nint ZSTD_createDCtx();

    [LibraryImport(Library)]
    private static partial nuint ZSTD_compressCCtx(nint cctx, byte* dst, nuint dstCapacity, byte* src, nuint srcSize, int level);

    [LibraryImport(Library)]
    private static partial nuint ZSTD_decompressDCtx(nint dctx, byte* dst, nuint dstCapacity, byte* src, nuint srcSize);

    [LibraryImport(Library)]
    private static partial uint ZSTD_isError(nuint code);

    [LibraryImport(Library)]
    private static partial nint ZSTD_getErrorName(nuint code);

    /// <summary>A context libzstd just made; zero means it could not allocate one.</summary>
    private static nint Created(nint context, string function) =>
        context != 0 ? context : throw new InvalidOperationException($"{function} failed (out of memory)");

    private static bool Probe()
    {
        if (string.Equals(Environment.GetEnvironmentVariable("CAIRN_ZSTD"), "managed", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        try
        {
            return ZSTD_versionNumber() >= 10400;
        }
        catch (DllNotFoundException)
        {
            return false;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Compresses into <paramref name="destination"/>; returns the length, or -1 when it does not fit.</summary>
    public static int Compress(ReadOnlySpan<byte> source, Span<byte> destination, int level)
    {
        var cctx = t_cctx != 0 ? t_cctx : t_cctx = Created(ZSTD_createCCtx(), nameof(ZSTD_createCCtx));
        nuint n;
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            n = ZSTD_compressCCtx(cctx, dst, (nuint)destination.Length, src, (nuint)source.Length, level);
        }

        return ZSTD_isError(n) != 0 ? -1 : (int)n;
    }

    /// <summary>Decompresses all frames of <paramref name="source"/> into <paramref name="destination"/>, never past its end.</summary>
    public static int Decompress(ReadOnlySpan<byte> source, Span<byte> destination, out string? error)
    {
        var dctx = t_dctx != 0 ? t_dctx : t_dctx = Created(ZSTD_createDCtx(), nameof(ZSTD_createDCtx));
        nuint n;
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            n = ZSTD_decompressDCtx(dctx, dst, (nuint)destination.Length, src, (nuint)source.Length);
        }

        if (ZSTD_isError(n) != 0)
        {
            error = Marshal.PtrToStringUTF8(ZSTD_getErrorName(n)) ?? "unknown error";
            return -1;
        }

        error = null;
        return (int)n;
    }
}
