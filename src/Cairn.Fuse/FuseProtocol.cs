using System.Runtime.InteropServices;
using System.Text;

namespace Cairn.Fuse;

// Layouts follow linux/fuse.h (protocol 7.x, host byte order). Only what a read-only file system needs.
#pragma warning disable CA1051 // wire structs: public fields are the point

internal enum FuseOpcode : uint
{
    Lookup = 1,
    Forget = 2,
    GetAttr = 3,
    SetAttr = 4,
    ReadLink = 5,
    Symlink = 6,
    MkNod = 8,
    MkDir = 9,
    Unlink = 10,
    RmDir = 11,
    Rename = 12,
    Link = 13,
    Open = 14,
    Read = 15,
    Write = 16,
    StatFs = 17,
    Release = 18,
    FSync = 20,
    SetXAttr = 21,
    GetXAttr = 22,
    ListXAttr = 23,
    RemoveXAttr = 24,
    Flush = 25,
    Init = 26,
    OpenDir = 27,
    ReadDir = 28,
    ReleaseDir = 29,
    FSyncDir = 30,
    GetLk = 31,
    SetLk = 32,
    SetLkW = 33,
    Access = 34,
    Create = 35,
    Interrupt = 36,
    BMap = 37,
    Destroy = 38,
    IoCtl = 39,
    Poll = 40,
    NotifyReply = 41,
    BatchForget = 42,
    FAllocate = 43,
    ReadDirPlus = 44,
    Rename2 = 45,
    LSeek = 46,
    CopyFileRange = 47,
    SetupMapping = 48,
    RemoveMapping = 49,
    SyncFs = 50,
    TmpFile = 51,
}

internal static class FuseConstants
{
    public const uint KernelVersion = 7;

    /// <summary>The newest minor version whose structures this implementation knows (linux/fuse.h of Debian 12 headers).</summary>
    public const uint KernelMinorVersion = 38;

    /// <summary>Oldest minor version accepted: 7.31 (Linux 5.4) has every flag used here.</summary>
    public const uint MinimumMinorVersion = 31;

    public const uint FUSE_ASYNC_READ = 1u << 0;
    public const uint FUSE_NO_OPEN_SUPPORT = 1u << 17;
    public const uint FUSE_PARALLEL_DIROPS = 1u << 18;
    public const uint FUSE_MAX_PAGES = 1u << 22;
    public const uint FUSE_CACHE_SYMLINKS = 1u << 23;

    public const uint FOPEN_KEEP_CACHE = 1u << 1;
    public const uint FOPEN_CACHE_DIR = 1u << 3;

    public const uint S_IFDIR = 0x4000;
    public const uint S_IFREG = 0x8000;
    public const uint S_IFLNK = 0xA000;

    public const uint DT_DIR = 4;
    public const uint DT_REG = 8;
    public const uint DT_LNK = 10;

    public const int W_OK = 2;

    public const ulong RootId = 1;

    /// <summary>Smallest read buffer the kernel accepts (FUSE_MIN_READ_BUFFER).</summary>
    public const int MinReadBuffer = 8192;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseInHeader
{
    public uint Len;
    public FuseOpcode Opcode;
    public ulong Unique;
    public ulong NodeId;
    public uint Uid;
    public uint Gid;
    public uint Pid;
    public ushort TotalExtLen;
    public ushort Padding;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseOutHeader
{
    public uint Len;
    public int Error;
    public ulong Unique;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseInitIn
{
    public uint Major;
    public uint Minor;
    public uint MaxReadahead;
    public uint Flags;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct FuseInitOut
{
    public uint Major;
    public uint Minor;
    public uint MaxReadahead;
    public uint Flags;
    public ushort MaxBackground;
    public ushort CongestionThreshold;
    public uint MaxWrite;
    public uint TimeGran;
    public ushort MaxPages;
    public ushort MapAlignment;
    public uint Flags2;
    public fixed uint Unused[7];
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseAttr
{
    public ulong Ino;
    public ulong Size;
    public ulong Blocks;
    public ulong ATime;
    public ulong MTime;
    public ulong CTime;
    public uint ATimeNsec;
    public uint MTimeNsec;
    public uint CTimeNsec;
    public uint Mode;
    public uint NLink;
    public uint Uid;
    public uint Gid;
    public uint RDev;
    public uint BlkSize;
    public uint Flags;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseEntryOut
{
    public ulong NodeId;
    public ulong Generation;
    public ulong EntryValid;
    public ulong AttrValid;
    public uint EntryValidNsec;
    public uint AttrValidNsec;
    public FuseAttr Attr;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseAttrOut
{
    public ulong AttrValid;
    public uint AttrValidNsec;
    public uint Dummy;
    public FuseAttr Attr;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseForgetIn
{
    public ulong NLookup;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseForgetOne
{
    public ulong NodeId;
    public ulong NLookup;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseBatchForgetIn
{
    public uint Count;
    public uint Dummy;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseOpenIn
{
    public uint Flags;
    public uint OpenFlags;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseOpenOut
{
    public ulong Fh;
    public uint OpenFlags;
    public uint Padding;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseReleaseIn
{
    public ulong Fh;
    public uint Flags;
    public uint ReleaseFlags;
    public ulong LockOwner;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseReadIn
{
    public ulong Fh;
    public ulong Offset;
    public uint Size;
    public uint ReadFlags;
    public ulong LockOwner;
    public uint Flags;
    public uint Padding;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct FuseKStatFs
{
    public ulong Blocks;
    public ulong BFree;
    public ulong BAvail;
    public ulong Files;
    public ulong FFree;
    public uint BSize;
    public uint NameLen;
    public uint FrSize;
    public uint Padding;
    public fixed uint Spare[6];
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseAccessIn
{
    public uint Mask;
    public uint Padding;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseInterruptIn
{
    public ulong Unique;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseDirentHeader
{
    public ulong Ino;
    public ulong Off;
    public uint NameLen;
    public uint Type;
}

#pragma warning restore CA1051

/// <summary>Encoding and decoding of FUSE messages, free of I/O so that tests can check them byte by byte.</summary>
internal static class FuseWire
{
    public static readonly int InHeaderSize = Marshal.SizeOf<FuseInHeader>();
    public static readonly int OutHeaderSize = Marshal.SizeOf<FuseOutHeader>();

    public static T Read<T>(ReadOnlySpan<byte> data) where T : unmanaged =>
        data.Length < Marshal.SizeOf<T>()
            ? throw new FuseProtocolException($"{typeof(T).Name} needs {Marshal.SizeOf<T>()} bytes, the request has {data.Length}")
            : MemoryMarshal.Read<T>(data);

    /// <summary>A NUL-terminated name from a request body.</summary>
    public static string ReadName(ReadOnlySpan<byte> data)
    {
        var end = data.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? data : data[..end]);
    }

    /// <summary>Writes an error (or empty success) reply into <paramref name="buffer"/>; returns its length.</summary>
    public static int Error(Span<byte> buffer, ulong unique, int errno)
    {
        var header = new FuseOutHeader { Len = (uint)OutHeaderSize, Error = -errno, Unique = unique };
        MemoryMarshal.Write(buffer, in header);
        return OutHeaderSize;
    }

    /// <summary>Writes a success reply whose body is one structure.</summary>
    public static int Reply<T>(Span<byte> buffer, ulong unique, in T body) where T : unmanaged
    {
        var size = Marshal.SizeOf<T>();
        MemoryMarshal.Write(buffer[OutHeaderSize..], in body);
        return Header(buffer, unique, size);
    }

    /// <summary>Writes the header of a success reply whose <paramref name="bodyLength"/> bytes are already in place.</summary>
    public static int Header(Span<byte> buffer, ulong unique, int bodyLength)
    {
        var header = new FuseOutHeader { Len = (uint)(OutHeaderSize + bodyLength), Error = 0, Unique = unique };
        MemoryMarshal.Write(buffer, in header);
        return OutHeaderSize + bodyLength;
    }

    public static int DirentSize(int nameLength) => (Marshal.SizeOf<FuseDirentHeader>() + nameLength + 7) & ~7;

    /// <summary>Appends one fuse_dirent; returns the bytes used, or 0 when it does not fit.</summary>
    public static int Dirent(Span<byte> buffer, ulong ino, ulong nextOffset, uint type, ReadOnlySpan<byte> name)
    {
        var size = DirentSize(name.Length);
        if (size > buffer.Length) return 0;
        var header = new FuseDirentHeader { Ino = ino, Off = nextOffset, NameLen = (uint)name.Length, Type = type };
        MemoryMarshal.Write(buffer, in header);
        var at = Marshal.SizeOf<FuseDirentHeader>();
        name.CopyTo(buffer[at..]);
        buffer[(at + name.Length)..size].Clear();
        return size;
    }
}

/// <summary>A request the kernel should never send (too short, unknown layout): answered with EIO and logged.</summary>
public sealed class FuseProtocolException(string message) : Exception(message)
{
    public FuseProtocolException() : this("FUSE protocol error") { }

    public FuseProtocolException(string message, Exception inner) : this(message + ": " + inner.Message) { }
}
