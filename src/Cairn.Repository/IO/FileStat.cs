using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Cairn.Core;

namespace Cairn.Repository.IO;

public enum FileType { Regular, Directory, Symlink, Other }

public readonly record struct FileStat(FileType Type, int Mode, long Size, ulong Device)
{
    public bool Executable => (Mode & 0x40) != 0;
}

/// <summary>
/// lstat via statx(2): its struct layout is the same on every architecture, and it tells FIFOs, devices and
/// sockets apart from regular files, which .NET's FileSystemInfo does not.
/// </summary>
public static partial class Stat
{
    private const int AT_FDCWD = -100;
    private const int AT_SYMLINK_NOFOLLOW = 0x100;
    private const uint STATX_BASIC = 0x7ff;

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int SysStatx(int dirfd, string path, int flags, uint mask, byte* buffer);

    public static unsafe FileStat Lstat(string path)
    {
        var buffer = stackalloc byte[256];
        if (SysStatx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            var code = errno == 2 ? ErrorCode.SourceNotFound : ErrorCode.IoError;
            throw new CairnException(code, $"cannot stat '{path}': {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        var span = new ReadOnlySpan<byte>(buffer, 256);
        var mode = BinaryPrimitives.ReadUInt16LittleEndian(span[28..]);
        var size = BinaryPrimitives.ReadInt64LittleEndian(span[40..]);
        var devMajor = BinaryPrimitives.ReadUInt32LittleEndian(span[136..]);
        var devMinor = BinaryPrimitives.ReadUInt32LittleEndian(span[140..]);
        var type = (mode & 0xF000) switch
        {
            0x8000 => FileType.Regular,
            0x4000 => FileType.Directory,
            0xA000 => FileType.Symlink,
            _ => FileType.Other,
        };
        return new FileStat(type, mode & 0xFFF, size, ((ulong)devMajor << 32) | devMinor);
    }
}
