using System.Runtime.InteropServices;
using Cairn.Core;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Repository.IO;

/// <summary>
/// Direct libc calls where .NET hides what a durable store must see. FileStream.Flush(true) was observed to
/// swallow fsync(2) failures (EIO, ENOSPC), so durability goes through fsync here and every failure is fatal.
/// </summary>
public static partial class Native
{
    private const int EINTR = 4;
    private const int EIO = 5;
    private const int EXDEV = 18;
    private const int EEXIST = 17;
    private const int ENOSPC = 28;
    private const int EDQUOT = 122;
    private const int EWOULDBLOCK = 11;
    private const int O_RDONLY = 0;
    private const int O_RDWR = 2;
    private const int O_CREAT = 0x40;
    private const int O_DIRECTORY = 0x10000;
    private const int O_CLOEXEC = 0x80000;
    private const int LOCK_SH = 1;
    private const int LOCK_EX = 2;
    private const int LOCK_NB = 4;
    private const uint FICLONE = 0x40049409;

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int SysFsync(int fd);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SysOpen(string path, int flags);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SysOpenCreate(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int SysClose(int fd);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int SysFlock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int SysFcntlLock(int fd, int command, ref RecordLock record);

    /// <summary>struct flock (fcntl(2) record locks) on 64-bit Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct RecordLock
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Length;
        public int Pid;
    }

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SysLink(string existing, string newPath);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int SysIoctl(int fd, nuint request, int arg);

    public static int Fd(SafeFileHandle handle) => (int)handle.DangerousGetHandle();

    /// <summary>
    /// Opens (creating) a lock file with open(2). File.OpenHandle takes its own non-blocking flock to emulate share
    /// modes, so a second process failed with "being used by another process" instead of waiting for the lock.
    /// </summary>
    public static SafeFileHandle OpenLockFile(string path)
    {
        int fd;
        do
        {
            fd = SysOpenCreate(path, O_RDWR | O_CREAT | O_CLOEXEC, 0x1B6);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == EINTR);

        if (fd < 0)
        {
            throw new CairnException(ErrorCode.IoError, $"cannot open lock file '{path}': {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}",
                "check that the repository directory is writable");
        }

        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>fsync(2) the file; throws <see cref="CairnException"/> (DurabilityFailure/NoSpace) on any error.</summary>
    public static void Fsync(SafeFileHandle handle, string pathForErrors)
    {
        int rc;
        do
        {
            rc = SysFsync(Fd(handle));
        }
        while (rc != 0 && Marshal.GetLastPInvokeError() == EINTR);

        if (rc != 0)
        {
            throw DurabilityError(Marshal.GetLastPInvokeError(), "fsync", pathForErrors);
        }
    }

    public static void FsyncDirectory(string directory)
    {
        var fd = SysOpen(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
        {
            throw DurabilityError(Marshal.GetLastPInvokeError(), "open", directory);
        }

        try
        {
            if (SysFsync(fd) != 0)
            {
                throw DurabilityError(Marshal.GetLastPInvokeError(), "fsync", directory);
            }
        }
        finally
        {
            _ = SysClose(fd);
        }
    }

    private static CairnException DurabilityError(int errno, string call, string path)
    {
        var text = Marshal.GetPInvokeErrorMessage(errno);
        return errno is ENOSPC or EDQUOT
            ? new CairnException(ErrorCode.NoSpace, $"{call} of '{path}' failed: {text}", "free disk space and retry; the previous revision is intact")
            : new CairnException(ErrorCode.DurabilityFailure, $"{call} of '{path}' failed: {text} (errno {errno})",
                "the storage device reported a write error; check it (dmesg) before retrying; the previous revision is intact");
    }

    /// <summary>Maps an IOException from a write to a coded error, recognising a full disk.</summary>
    public static CairnException WriteError(IOException e, string path)
    {
        var errno = e.HResult & 0xFFFF;
        var full = errno is ENOSPC or EDQUOT || e.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase)
            || e.Message.Contains("quota", StringComparison.OrdinalIgnoreCase);
        return full
            ? new CairnException(ErrorCode.NoSpace, $"writing '{path}' failed: {e.Message}", "free disk space and retry; the previous revision is intact", e)
            : new CairnException(ErrorCode.IoError, $"writing '{path}' failed: {e.Message}", "check the file system and retry", e);
    }

    /// <summary>flock(2); returns false when non-blocking and the lock is held elsewhere.</summary>
    /// <summary>
    /// Takes an exclusive lock on one byte of a file without waiting (fcntl F_OFD_SETLK): false if another open file
    /// holds it. Open-file-description locks belong to the descriptor, not the process, so they go away with it —
    /// also when the process is killed — and conflict with POSIX record locks taken by other processes.
    /// </summary>
    public static bool TryLockByte(SafeFileHandle handle, long offset) => RecordLockCall(handle, offset, F_WRLCK);

    /// <summary>Releases a lock taken with <see cref="TryLockByte"/>.</summary>
    public static void UnlockByte(SafeFileHandle handle, long offset) => RecordLockCall(handle, offset, F_UNLCK);

    private static bool RecordLockCall(SafeFileHandle handle, long offset, short type)
    {
        const int F_OFD_SETLK = 37;
        const int EACCES = 13;
        var record = new RecordLock { Type = type, Whence = 0, Start = offset, Length = 1 };
        while (true)
        {
            if (SysFcntlLock(Fd(handle), F_OFD_SETLK, ref record) == 0) return true;
            var errno = Marshal.GetLastPInvokeError();
            if (errno == EINTR) continue;
            if (errno is EWOULDBLOCK or EACCES) return false;
            throw new CairnException(ErrorCode.IoError, $"fcntl(F_OFD_SETLK) failed: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
    }

    private const short F_WRLCK = 1;
    private const short F_UNLCK = 2;

    public static bool Flock(SafeFileHandle handle, bool exclusive, bool wait)
    {
        var op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
        while (true)
        {
            if (SysFlock(Fd(handle), op) == 0) return true;
            var errno = Marshal.GetLastPInvokeError();
            if (errno == EINTR) continue;
            if (errno == EWOULDBLOCK) return false;
            throw new CairnException(ErrorCode.IoError, $"flock failed: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
    }

    /// <summary><see cref="Missing"/>: the existing file is gone (ENOENT), e.g. replaced or evicted meanwhile.</summary>
    public enum LinkResult { Linked, CrossDevice, Exists, Missing }

    public static LinkResult HardLink(string existing, string newPath)
    {
        if (SysLink(existing, newPath) == 0) return LinkResult.Linked;
        var errno = Marshal.GetLastPInvokeError();
        return errno switch
        {
            EXDEV => LinkResult.CrossDevice,
            EEXIST => LinkResult.Exists,
            2 when !File.Exists(existing) => LinkResult.Missing,
            // Hardlink limits (EMLINK) or file systems without links: fall back to a copy.
            31 or 1 or 95 => LinkResult.CrossDevice,
            _ => throw new CairnException(ErrorCode.IoError,
                $"cannot link '{newPath}' to '{existing}': {Marshal.GetPInvokeErrorMessage(errno)}"),
        };
    }

    /// <summary>Reflink (FICLONE) where the file system supports it; false otherwise.</summary>
    public static bool TryReflink(SafeFileHandle source, SafeFileHandle destination) =>
        SysIoctl(Fd(destination), FICLONE, Fd(source)) == 0;

    public static bool IsIoError(int errno) => errno == EIO;
}
