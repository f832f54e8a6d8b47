using System.Diagnostics;
using System.Globalization;
using Cairn.Core;
using Cairn.Repository;
using Microsoft.Extensions.Logging;

namespace Cairn.Fuse;

/// <summary>
/// A repository mounted read-only at a directory: /dev/fuse opened, mount(2) called as root with fstype
/// fuse.cairn, or as any other user through fusermount3 (docs/adr/0004-fuse-over-dev-fuse.md), reader threads
/// answering the kernel.
/// </summary>
public sealed class FuseMount : IAsyncDisposable
{
    public const string FsType = "fuse.cairn";

    private readonly CairnFileSystem _fs;
    private readonly FuseDispatcher _dispatcher;
    private readonly FuseSession _session;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _follow;
    private int _fd;
    private bool _helper;

    private FuseMount(string mountPoint, int fd, CairnFileSystem fs, FuseDispatcher dispatcher, FuseSession session, ILogger logger, FuseMountOptions options)
    {
        MountPoint = mountPoint;
        _fd = fd;
        _fs = fs;
        _dispatcher = dispatcher;
        _session = session;
        _logger = logger;
        _follow = options.FollowInterval is { } interval ? FollowLoopAsync(interval) : Task.CompletedTask;
    }

    public string MountPoint { get; }

    /// <summary>The revision new lookups see.</summary>
    public Manifest Revision => _fs.Revision;

    /// <summary>Completes when the kernel has ended the connection: unmounted (and the last open file closed) or aborted.</summary>
    public Task Completion => _session.Ended;

    /// <summary>Requests answered EIO because of a corrupt or missing object or a time-out.</summary>
    public long Errors => _dispatcher.Errors;

    /// <summary>Inodes the kernel currently holds (diagnostics, tests).</summary>
    public int Inodes => _fs.NodeCount;

    public static async Task<FuseMount> MountAsync(ProductRepository repository, string mountPoint, FuseMountOptions options, ILogger logger, CancellationToken ct)
    {
        mountPoint = Path.GetFullPath(mountPoint);
        if (!Directory.Exists(mountPoint))
        {
            throw new CairnException(ErrorCode.MountPointInvalid, $"mount point {mountPoint} is not a directory", "create it first (mkdir -p)");
        }

        if (MountTable.Find(mountPoint) is { } existing)
        {
            throw new CairnException(ErrorCode.MountPointInvalid, $"{mountPoint} is already a mount point ({existing.FsType} from {existing.Source})",
                existing.FsType == FsType ? $"cairn unmount {mountPoint}" : "choose another directory");
        }

        var fs = await CairnFileSystem.OpenAsync(repository, options, logger, ct).ConfigureAwait(false);
        if (Native.GetEuid() != 0)
        {
            // Not root: Debian's setuid fusermount3 opens /dev/fuse and mounts for us.
            var allowOther = options.AllowOther && Fusermount.UserAllowOther();
            if (options.AllowOther && !allowOther) logger.LogInformation("/etc/fuse.conf has no user_allow_other: only this user (uid {Uid}) sees the mount", Native.GetEuid());
            int helperFd;
            try
            {
                helperFd = await Fusermount.MountAsync(mountPoint,
                    $"ro,nosuid,nodev,default_permissions,subtype=cairn,fsname={options.FsName.Replace(',', ';')}{(allowOther ? ",allow_other" : "")}", logger, ct).ConfigureAwait(false);
            }
            catch
            {
                fs.Dispose();
                throw;
            }

            return await StartAsync(mountPoint, helperFd, fs, options, logger, helper: true, ct).ConfigureAwait(false);
        }

        var fd = Native.Open("/dev/fuse", Native.O_RDWR | Native.O_CLOEXEC);
        if (fd < 0)
        {
            var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            fs.Dispose();
            throw new CairnException(ErrorCode.MountUnavailable, $"cannot open /dev/fuse: {Native.Describe(errno)}",
                "load the fuse module (modprobe fuse) or give the container the device (--device /dev/fuse)");
        }

        var data = string.Create(CultureInfo.InvariantCulture,
            $"fd={fd},rootmode=40000,user_id={Native.GetEuid()},group_id={Native.GetEgid()},default_permissions{(options.AllowOther ? ",allow_other" : "")}");
        if (Native.Mount(options.FsName, mountPoint, FsType, Native.MS_RDONLY | Native.MS_NOSUID | Native.MS_NODEV, data) != 0)
        {
            var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            Native.Close(fd);
            fs.Dispose();
            throw errno switch
            {
                Native.EPERM or Native.EACCES => new CairnException(ErrorCode.MountPermissionDenied, $"mount({mountPoint}) refused: {Native.Describe(errno)}",
                    "run as root with CAP_SYS_ADMIN (a container needs it too)"),
                Native.ENOENT or Native.ENOTDIR => new CairnException(ErrorCode.MountPointInvalid, $"mount point {mountPoint}: {Native.Describe(errno)}", "create it first"),
                Native.ENODEV => new CairnException(ErrorCode.MountUnavailable, "the kernel has no FUSE file system type", "modprobe fuse"),
                _ => new CairnException(ErrorCode.MountFailed, $"mount({mountPoint}) failed: {Native.Describe(errno)}"),
            };
        }

        return await StartAsync(mountPoint, fd, fs, options, logger, helper: false, ct).ConfigureAwait(false);
    }

    /// <summary>Answers the kernel on the mounted /dev/fuse descriptor once INIT has arrived.</summary>
    private static async Task<FuseMount> StartAsync(string mountPoint, int fd, CairnFileSystem fs, FuseMountOptions options, ILogger logger, bool helper, CancellationToken ct)
    {
        var device = new FuseDevice(fd, logger);
        var dispatcher = new FuseDispatcher(fs, device, options, logger);
        var session = new FuseSession(device, dispatcher, logger);
        session.Start(Math.Max(1, options.Threads));
        var mount = new FuseMount(mountPoint, fd, fs, dispatcher, session, logger, options) { _helper = helper };
        try
        {
            // mount(2) returns before INIT; the first access would block until it is answered.
            await dispatcher.Initialized.WaitAsync(options.InitTimeout, ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await mount.UnmountAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            throw e as CairnException ?? new CairnException(ErrorCode.MountFailed, $"the kernel did not initialise the mount at {mountPoint}: {e.Message}");
        }

        logger.LogInformation("mounted revision {Revision} (root {Root}) at {MountPoint}", fs.Revision.Revision, fs.Revision.Root.Abbreviated, mountPoint);
        return mount;
    }

    private async Task FollowLoopAsync(TimeSpan interval)
    {
        try
        {
            await _fs.FollowAsync(interval, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Switches to the head revision now (what --follow does every interval); true when it changed.</summary>
    public Task<bool> RefreshAsync(CancellationToken ct) => _fs.RefreshAsync(ct);

    /// <summary>
    /// Detaches the mount (umount2 MNT_DETACH: open files keep working), waits up to <paramref name="grace"/> for the
    /// kernel to end the connection once they are closed, then aborts it.
    /// </summary>
    public async Task UnmountAsync(TimeSpan grace)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        var connection = MountTable.Find(MountPoint) is { FsType: FsType } entry ? entry.Device : null;
        if (_helper)
        {
            try
            {
                await Fusermount.UnmountAsync(MountPoint, CancellationToken.None).ConfigureAwait(false);
            }
            catch (CairnException e)
            {
                _logger.LogWarning("{Code}: {Message}", e.CodeName, e.Message);
            }
        }
        else if (Native.Umount2(MountPoint, Native.MNT_DETACH) != 0)
        {
            var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if (errno != Native.EINVAL) _logger.LogWarning("{Code}: umount2({MountPoint}) failed: {Error}", ErrorCodes.Name(ErrorCode.UnmountFailed), MountPoint, Native.Describe(errno));
        }

        if (await Task.WhenAny(Completion, Task.Delay(grace)).ConfigureAwait(false) != Completion)
        {
            _logger.LogWarning("files on {MountPoint} still open after {Grace} s; aborting the FUSE connection", MountPoint, grace.TotalSeconds);
            Abort(connection);
            await Task.WhenAny(Completion, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
        }

        await _follow.ConfigureAwait(false);
    }

    /// <summary>Ends the connection through fusectl; readers of a detached mount then get ENOTCONN.</summary>
    private void Abort(string? device)
    {
        if (device is null || !device.StartsWith("0:", StringComparison.Ordinal)) return;
        var abort = $"/sys/fs/fuse/connections/{device[2..]}/abort";
        try
        {
            if (!File.Exists(abort) && Directory.Exists("/sys/fs/fuse/connections"))
            {
                Native.Mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, "");
            }

            File.WriteAllText(abort, "1");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("cannot abort FUSE connection {Device}: {Message}", device, e.Message);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!Completion.IsCompleted) await UnmountAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        if (Completion.IsCompleted)
        {
            var fd = Interlocked.Exchange(ref _fd, -1);
            if (fd >= 0) Native.Close(fd);
        }

        _fs.Dispose();
        _stop.Dispose();
    }

    /// <summary>
    /// `cairn unmount`: detaches a cairn mount (open files keep working until closed); as non-root through
    /// fusermount3 -u -z.
    /// </summary>
    public static async Task UnmountAsync(string mountPoint, CancellationToken ct)
    {
        mountPoint = Path.GetFullPath(mountPoint);
        var entry = MountTable.Find(mountPoint);
        if (entry is null || !entry.FsType.StartsWith("fuse", StringComparison.Ordinal))
        {
            throw new CairnException(ErrorCode.NotMounted, $"{mountPoint} is not a cairn mount", "cat /proc/self/mountinfo shows what is mounted");
        }

        if (Native.GetEuid() == 0)
        {
            if (Native.Umount2(mountPoint, Native.MNT_DETACH) != 0)
            {
                var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
                throw new CairnException(ErrorCode.UnmountFailed, $"umount2({mountPoint}) failed: {Native.Describe(errno)}");
            }

            return;
        }

        await Fusermount.UnmountAsync(mountPoint, ct).ConfigureAwait(false);
    }
}

/// <summary>/proc/self/mountinfo, read to tell whether a directory is a mount point and of what.</summary>
public static class MountTable
{
    public sealed record Entry(string MountPoint, string FsType, string Source, string Device);

    public static Entry? Find(string mountPoint)
    {
        mountPoint = Path.GetFullPath(mountPoint).TrimEnd('/');
        if (mountPoint.Length == 0) mountPoint = "/";
        Entry? found = null;
        foreach (var e in Read())
        {
            if (e.MountPoint == mountPoint) found = e; // the last one is on top
        }

        return found;
    }

    public static IEnumerable<Entry> Read()
    {
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
            var fields = line.Split(' ');
            var dash = Array.IndexOf(fields, "-");
            if (fields.Length < 5 || dash < 0 || dash + 2 >= fields.Length) continue;
            yield return new Entry(Unescape(fields[4]), fields[dash + 1], Unescape(fields[dash + 2]), fields[2]);
        }
    }

    private static string Unescape(string s)
    {
        if (!s.Contains('\\', StringComparison.Ordinal)) return s;
        var sb = new System.Text.StringBuilder();
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && i + 3 < s.Length)
            {
                sb.Append((char)Convert.ToInt32(s.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                sb.Append(s[i]);
            }
        }

        return sb.ToString();
    }
}
