using System.Buffers.Binary;
using System.Text;

namespace Cairn.Core;

[System.Text.Json.Serialization.JsonConverter(typeof(CamelCaseEnumConverter<EntryKind>))]
public enum EntryKind : byte
{
    File = 1,
    ChunkedFile = 2,
    Directory = 3,
    Symlink = 4,
}

/// <summary>
/// One name in a directory. For files <see cref="Size"/> is the content length; for directories it is the
/// length of the child tree object; for symlinks the target length. Symlinks carry their target instead of a digest.
/// </summary>
public sealed record TreeEntry(string Name, EntryKind Kind, bool Executable, long Size, Digest Digest, string? Target = null)
{
    public static TreeEntry File(string name, long size, Digest digest, bool executable = false) =>
        new(name, EntryKind.File, executable, size, digest);

    public static TreeEntry Chunked(string name, long size, Digest chunkList, bool executable = false) =>
        new(name, EntryKind.ChunkedFile, executable, size, chunkList);

    public static TreeEntry Dir(string name, long treeSize, Digest tree) =>
        new(name, EntryKind.Directory, false, treeSize, tree);

    public static TreeEntry Link(string name, string target) =>
        new(name, EntryKind.Symlink, false, Encoding.UTF8.GetByteCount(target), default, target);

    public bool IsFile => Kind is EntryKind.File or EntryKind.ChunkedFile;
}

/// <summary>
/// Canonical directory object (docs/format/repository.md, "Tree objects"). Encoding is byte-for-byte fixed:
/// the same directory content always yields the same digest on any machine.
/// </summary>
public static class TreeCodec
{
    public static ReadOnlySpan<byte> Magic => "CTR1"u8;

    public const int MaxNameBytes = 255;
    public const int MaxSymlinkTargetBytes = 4095;

    /// <summary>Ordinal comparison of UTF-8 bytes, which for valid strings equals ordinal UTF-16 order except surrogates; we compare bytes to be exact.</summary>
    public static int CompareNames(string a, string b)
    {
        Span<byte> ba = stackalloc byte[Encoding.UTF8.GetMaxByteCount(a.Length)];
        Span<byte> bb = stackalloc byte[Encoding.UTF8.GetMaxByteCount(b.Length)];
        var la = Encoding.UTF8.GetBytes(a, ba);
        var lb = Encoding.UTF8.GetBytes(b, bb);
        return ba[..la].SequenceCompareTo(bb[..lb]);
    }

    public static readonly Comparer<TreeEntry> EntryOrder = Comparer<TreeEntry>.Create((x, y) => CompareNames(x.Name, y.Name));

    /// <summary>Returns null when the name is acceptable, else why not.</summary>
    public static string? ValidateName(string name)
    {
        if (name.Length == 0) return "empty name";
        if (name is "." or "..") return $"'{name}' is not a file name";
        if (name.Contains('/', StringComparison.Ordinal)) return "name contains '/'";
        if (name.Contains('\0', StringComparison.Ordinal)) return "name contains NUL";
        if (Encoding.UTF8.GetByteCount(name) > MaxNameBytes) return $"name longer than {MaxNameBytes} bytes";
        return null;
    }

    public static byte[] Encode(IReadOnlyList<TreeEntry> entries)
    {
        var sorted = entries.ToArray();
        Array.Sort(sorted, EntryOrder);
        var buffer = new MemoryStream(16 + sorted.Length * 64);
        buffer.Write(Magic);
        Span<byte> scratch = stackalloc byte[32];
        BinaryPrimitives.WriteUInt32BigEndian(scratch, (uint)sorted.Length);
        buffer.Write(scratch[..4]);
        string? previous = null;
        foreach (var e in sorted)
        {
            if (ValidateName(e.Name) is { } problem)
            {
                throw new CairnException(ErrorCode.InvalidPath, $"cannot store '{e.Name}': {problem}");
            }

            if (previous is not null && CompareNames(previous, e.Name) == 0)
            {
                throw new CairnException(ErrorCode.TreeMalformed, $"duplicate entry '{e.Name}' in a directory");
            }

            previous = e.Name;
            var name = Encoding.UTF8.GetBytes(e.Name);
            buffer.WriteByte((byte)e.Kind);
            buffer.WriteByte(e.Executable && e.IsFile ? (byte)1 : (byte)0);
            BinaryPrimitives.WriteUInt16BigEndian(scratch, (ushort)name.Length);
            buffer.Write(scratch[..2]);
            buffer.Write(name);
            if (e.Kind == EntryKind.Symlink)
            {
                var target = Encoding.UTF8.GetBytes(e.Target ?? "");
                if (target.Length is 0 or > MaxSymlinkTargetBytes)
                {
                    throw new CairnException(ErrorCode.InvalidPath, $"symlink '{e.Name}' has an empty or too long target");
                }

                BinaryPrimitives.WriteUInt16BigEndian(scratch, (ushort)target.Length);
                buffer.Write(scratch[..2]);
                buffer.Write(target);
            }
            else
            {
                BinaryPrimitives.WriteUInt64BigEndian(scratch, (ulong)e.Size);
                buffer.Write(scratch[..8]);
                e.Digest.WriteTo(scratch);
                buffer.Write(scratch);
            }
        }

        return buffer.ToArray();
    }

    public static IReadOnlyList<TreeEntry> Decode(ReadOnlySpan<byte> data, Digest? digestForErrors = null)
    {
        string where = digestForErrors is { } d ? $"tree {d}" : "tree object";
        CairnException Bad(string why) => new(ErrorCode.TreeMalformed, $"{where} is malformed: {why}",
            "run 'cairn verify --full'; the repository may be corrupt");
        if (data.Length < 8 || !data[..4].SequenceEqual(Magic)) throw Bad("bad magic");
        var count = BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
        var pos = 8;
        var list = new List<TreeEntry>((int)Math.Min(count, 1 << 20));
        string? previous = null;
        for (var i = 0u; i < count; i++)
        {
            if (pos + 4 > data.Length) throw Bad("truncated entry");
            var kind = (EntryKind)data[pos];
            var flags = data[pos + 1];
            var nameLen = BinaryPrimitives.ReadUInt16BigEndian(data[(pos + 2)..]);
            pos += 4;
            if (kind is < EntryKind.File or > EntryKind.Symlink) throw Bad($"unknown kind {(byte)kind}");
            if (flags > 1 || (flags == 1 && kind is EntryKind.Directory or EntryKind.Symlink)) throw Bad($"bad flags {flags}");
            if (pos + nameLen > data.Length) throw Bad("truncated name");
            var name = Encoding.UTF8.GetString(data.Slice(pos, nameLen));
            pos += nameLen;
            if (ValidateName(name) is { } problem) throw Bad(problem);
            if (previous is not null && CompareNames(previous, name) >= 0) throw Bad($"entries not sorted or duplicate at '{name}'");
            previous = name;
            if (kind == EntryKind.Symlink)
            {
                if (pos + 2 > data.Length) throw Bad("truncated symlink");
                var len = BinaryPrimitives.ReadUInt16BigEndian(data[pos..]);
                pos += 2;
                if (len == 0 || pos + len > data.Length) throw Bad("bad symlink target");
                list.Add(TreeEntry.Link(name, Encoding.UTF8.GetString(data.Slice(pos, len))));
                pos += len;
            }
            else
            {
                if (pos + 40 > data.Length) throw Bad("truncated entry");
                var size = BinaryPrimitives.ReadUInt64BigEndian(data[pos..]);
                if (size > long.MaxValue) throw Bad("size out of range");
                var digest = Digest.FromBytes(data.Slice(pos + 8, 32));
                pos += 40;
                list.Add(new TreeEntry(name, kind, flags == 1, (long)size, digest));
            }
        }

        if (pos != data.Length) throw Bad("trailing bytes");
        return list;
    }
}

/// <summary>Ordered list of content chunks that make up one large file.</summary>
public static class ChunkListCodec
{
    public static ReadOnlySpan<byte> Magic => "CCL1"u8;

    public static byte[] Encode(IReadOnlyList<(int Length, Digest Digest)> chunks)
    {
        var data = new byte[8 + chunks.Count * 36];
        Magic.CopyTo(data);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(4), (uint)chunks.Count);
        var pos = 8;
        foreach (var (length, digest) in chunks)
        {
            BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(pos), (uint)length);
            digest.WriteTo(data.AsSpan(pos + 4));
            pos += 36;
        }

        return data;
    }

    public static IReadOnlyList<(int Length, Digest Digest)> Decode(ReadOnlySpan<byte> data, Digest? digestForErrors = null)
    {
        if (data.Length < 8 || !data[..4].SequenceEqual(Magic) ||
            (data.Length - 8) != BinaryPrimitives.ReadUInt32BigEndian(data[4..]) * 36L)
        {
            throw new CairnException(ErrorCode.TreeMalformed,
                $"chunk list {(digestForErrors?.ToString() ?? "")} is malformed", "run 'cairn verify --full'");
        }

        var count = (int)BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
        var list = new List<(int, Digest)>(count);
        for (var i = 0; i < count; i++)
        {
            var at = 8 + i * 36;
            var len = BinaryPrimitives.ReadUInt32BigEndian(data[at..]);
            if (len == 0 || len > Chunker.MaxSize)
            {
                throw new CairnException(ErrorCode.TreeMalformed, $"chunk list has a chunk of {len} bytes", "run 'cairn verify --full'");
            }

            list.Add(((int)len, Digest.FromBytes(data.Slice(at + 4, 32))));
        }

        return list;
    }
}
