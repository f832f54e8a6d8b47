using System.Formats.Tar;
using System.IO.Compression;
using System.Text;

namespace Cairn.Cli.Tests.Infrastructure;

/// <summary>Builds tar archives entry by entry, hostile ones included (System.Formats.Tar writes what it is given).</summary>
public sealed class TarBuilder
{
    private readonly List<PaxTarEntry> _entries = [];

    public TarBuilder File(string name, string content = "data\n", UnixFileMode mode = (UnixFileMode)0x1A4)
    {
        var e = new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = mode, DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) };
        _entries.Add(e);
        return this;
    }

    public TarBuilder Dir(string name)
    {
        _entries.Add(new PaxTarEntry(TarEntryType.Directory, name) { Mode = (UnixFileMode)0x1ED });
        return this;
    }

    public TarBuilder Symlink(string name, string target)
    {
        _entries.Add(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target, Mode = (UnixFileMode)0x1FF });
        return this;
    }

    public TarBuilder Hardlink(string name, string target)
    {
        _entries.Add(new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = target, Mode = (UnixFileMode)0x1A4 });
        return this;
    }

    public TarBuilder Special(TarEntryType type, string name)
    {
        var e = new PaxTarEntry(type, name) { Mode = (UnixFileMode)0x1A4 };
        if (type is TarEntryType.CharacterDevice or TarEntryType.BlockDevice)
        {
            e.DeviceMajor = 1;
            e.DeviceMinor = 3;
        }

        _entries.Add(e);
        return this;
    }

    /// <summary>Writes the archive, gzip-compressed when the name ends in .gz.</summary>
    public string Write(string path)
    {
        using var file = System.IO.File.Create(path);
        using (Stream output = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionLevel.Fastest, leaveOpen: true) : file)
        using (var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var e in _entries) tar.WriteEntry(e);
        }

        return path;
    }
}

/// <summary>
/// Decompression bombs: one tar entry of 1 GiB of zeros, compressed as concatenated gzip members or zstd frames
/// (each member holds 1 MiB of zeros), so the file is a few hundred KB and is made in milliseconds, without ever
/// holding the 1 GiB anywhere.
/// </summary>
public static class Bombs
{
    public const long Size = 1L << 30;

    public static string Gzip(string path, string entryName) => Write(path, entryName, data =>
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.SmallestSize, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    });

    public static string Zstd(string path, string entryName) => Write(path, entryName, data =>
    {
        using var compressor = new ZstdSharp.Compressor(19);
        return compressor.Wrap(data).ToArray();
    });

    private static string Write(string path, string entryName, Func<byte[], byte[]> compress)
    {
        using var file = System.IO.File.Create(path);
        file.Write(compress(UstarHeader(entryName, Size)));
        var mib = compress(new byte[1 << 20]);
        for (var i = 0; i < Size >> 20; i++) file.Write(mib);
        file.Write(compress(new byte[1024])); // end-of-archive blocks
        return path;
    }

    /// <summary>A ustar header for a regular file; written by hand because a header alone cannot be had from TarWriter.</summary>
    public static byte[] UstarHeader(string name, long size)
    {
        var h = new byte[512];
        Encoding.ASCII.GetBytes(name).CopyTo(h, 0);
        Octal(h, 100, 8, 0x1A4);
        Octal(h, 108, 8, 0);
        Octal(h, 116, 8, 0);
        Octal(h, 124, 12, size);
        Octal(h, 136, 12, 1_600_000_000);
        h[156] = (byte)'0';
        "ustar\0"u8.CopyTo(h.AsSpan(257));
        "00"u8.CopyTo(h.AsSpan(263));
        h.AsSpan(148, 8).Fill((byte)' ');
        var sum = h.Sum(b => (int)b);
        Octal(h, 148, 7, sum);
        h[155] = (byte)' ';
        return h;
    }

    private static void Octal(byte[] h, int offset, int length, long value)
    {
        var digits = Convert.ToString(value, 8).PadLeft(length - 1, '0');
        Encoding.ASCII.GetBytes(digits).CopyTo(h, offset);
        h[offset + length - 1] = 0;
    }
}
