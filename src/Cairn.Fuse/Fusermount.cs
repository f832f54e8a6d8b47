using System.Diagnostics;
using System.Runtime.InteropServices;
using Cairn.Core;
using Microsoft.Extensions.Logging;

namespace Cairn.Fuse;

/// <summary>
/// Mounting without root through Debian's setuid <c>fusermount3</c> (docs/adr/0004-fuse-over-dev-fuse.md): we
/// create a Unix socket pair and start <c>fusermount3 -o OPTIONS -- MOUNTPOINT</c> with <c>_FUSE_COMMFD</c> naming
/// one end; it opens /dev/fuse, calls mount(2) with its privilege, sends the open descriptor back over the socket
/// (SCM_RIGHTS) and exits. Unmounting is <c>fusermount3 -u -z</c>.
/// </summary>
internal static partial class Fusermount
{
    public const string Program = "fusermount3";

    private const int AF_UNIX = 1;
    private const int SOCK_STREAM = 1;
    private const int SOL_SOCKET = 1;
    private const int SCM_RIGHTS = 1;
    private const int F_SETFD = 2;
    private const int FD_CLOEXEC = 1;

    /// <summary>The located helper; CAIRN-E0807 when fuse3 is not installed.</summary>
    public static string Locate()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin").Append("/bin"))
        {
            if (dir.Length == 0) continue;
            var path = Path.Combine(dir, Program);
            if (File.Exists(path)) return path;
        }

        throw new CairnException(ErrorCode.MountHelperMissing, $"mounting as a user other than root needs {Program}, which is not installed",
            "apt-get install fuse3 (it installs the setuid helper), or mount as root");
    }

    /// <summary>True when /etc/fuse.conf lets users pass allow_other.</summary>
    public static bool UserAllowOther()
    {
        try
        {
            return File.ReadLines("/etc/fuse.conf").Any(l => l.Trim() == "user_allow_other");
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Mounts through the helper; returns the /dev/fuse descriptor it passed back.</summary>
    public static async Task<int> MountAsync(string mountPoint, string options, ILogger logger, CancellationToken ct)
    {
        var helper = Locate();
        var (ours, theirs) = CreatePair();
        // Only the helper's end may reach the child; ours stays in this process.
        Fcntl(ours, F_SETFD, FD_CLOEXEC);
        try
        {
            var psi = new ProcessStartInfo(helper) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in (string[])["-o", options, "--", mountPoint]) psi.ArgumentList.Add(a);
            psi.Environment["_FUSE_COMMFD"] = theirs.ToString(System.Globalization.CultureInfo.InvariantCulture);
            using var process = Process.Start(psi) ?? throw new CairnException(ErrorCode.MountHelperMissing, $"cannot start {helper}");
            Native.Close(theirs);
            theirs = -1;
            var stderr = process.StandardError.ReadToEndAsync(ct);
            // The descriptor arrives before the helper exits; if it fails, it exits and closes its end (EOF).
            var fd = await Task.Run(() => Receive(ours), ct).ConfigureAwait(false);
            await process.WaitForExitAsync(ct).ConfigureAwait(false);
            var message = (await stderr.ConfigureAwait(false)).Trim();
            if (fd < 0 || process.ExitCode != 0)
            {
                if (fd >= 0) Native.Close(fd);
                throw new CairnException(ErrorCode.MountHelperFailed,
                    $"{Program} could not mount {mountPoint} (exit {process.ExitCode}): {(message.Length > 0 ? message : "it passed back no /dev/fuse descriptor")}",
                    "the mount point must be a directory you own (or may write); allow_other needs user_allow_other in /etc/fuse.conf");
            }

            logger.LogDebug("{Helper} mounted {MountPoint}; /dev/fuse descriptor {Fd}", helper, mountPoint, fd);
            return fd;
        }
        finally
        {
            if (theirs >= 0) Native.Close(theirs);
            Native.Close(ours);
        }
    }

    private static unsafe (int Ours, int Theirs) CreatePair()
    {
        var fds = stackalloc int[2];
        if (SocketPair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
        {
            throw new CairnException(ErrorCode.MountHelperFailed, $"socketpair for {Program} failed: {Native.Describe(Marshal.GetLastPInvokeError())}");
        }

        return (fds[0], fds[1]);
    }

    /// <summary>recvmsg with room for one SCM_RIGHTS descriptor; -1 when the helper sent none.</summary>
    private static unsafe int Receive(int socket)
    {
        byte data;
        var iov = new IoVec { Base = &data, Length = 1 };
        const int controlSize = 24; // CMSG_SPACE(sizeof(int)) on 64-bit Linux
        var control = stackalloc byte[controlSize];
        new Span<byte>(control, controlSize).Clear();
        var header = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = controlSize };
        nint n;
        do
        {
            n = RecvMsg(socket, &header, 0);
        }
        while (n < 0 && Marshal.GetLastPInvokeError() == Native.EINTR);

        if (n <= 0 || header.ControlLength < 16 + sizeof(int)) return -1;
        var cmsg = (CmsgHdr*)control;
        if (cmsg->Level != SOL_SOCKET || cmsg->Type != SCM_RIGHTS) return -1;
        return *(int*)(control + 16);
    }

    /// <summary>Detaches a mount made by the helper (as the user who made it).</summary>
    public static async Task UnmountAsync(string mountPoint, CancellationToken ct)
    {
        using var process = Process.Start(new ProcessStartInfo(Locate()) { ArgumentList = { "-u", "-z", mountPoint }, RedirectStandardError = true })
            ?? throw new CairnException(ErrorCode.UnmountFailed, $"cannot run {Program}", "install fuse3");
        var error = await process.StandardError.ReadToEndAsync(ct).ConfigureAwait(false);
        await process.WaitForExitAsync(ct).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new CairnException(ErrorCode.UnmountFailed, $"{Program} -u {mountPoint} failed: {error.Trim()}", "run as root or as the user who mounted it");
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CmsgHdr
    {
        public nuint Length;
        public int Level;
        public int Type;
    }

    [LibraryImport("libc", EntryPoint = "socketpair", SetLastError = true)]
    private static unsafe partial int SocketPair(int domain, int type, int protocol, int* fds);

    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    private static unsafe partial nint RecvMsg(int socket, MsgHdr* message, int flags);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int command, int argument);
}
