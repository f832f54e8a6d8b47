using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;
using Cairn.Core;
using Microsoft.Extensions.Logging;

namespace Cairn.Fuse;

/// <summary>Where replies go: /dev/fuse in a mount, a list in protocol tests.</summary>
internal interface IFuseReplySink
{
    void Send(ReadOnlySpan<byte> reply);
}

/// <summary>
/// Decodes one FUSE request, answers it from <see cref="CairnFileSystem"/> and encodes the reply. Requests that
/// need objects not in memory continue asynchronously; the reply is sent when they finish, so one slow remote
/// fetch never holds a reader thread. Everything that would write answers EROFS.
/// </summary>
internal sealed partial class FuseDispatcher(CairnFileSystem fs, IFuseReplySink sink, FuseMountOptions options, ILogger logger)
{
    private readonly ConcurrentDictionary<ulong, object> _handles = new();
    private readonly ConcurrentDictionary<ulong, CancellationTokenSource> _pending = new();
    private readonly TaskCompletionSource<(uint Major, uint Minor)> _initialized = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _nextHandle;
    private long _errors;

    private sealed record FileHandle(Node Node);

    private sealed record DirHandle(Node Node, DirContents Contents);

    /// <summary>Completes with the negotiated protocol version once INIT is answered.</summary>
    public Task<(uint Major, uint Minor)> Initialized => _initialized.Task;

    public int MaxPages { get; private set; } = 32;

    public int OpenHandles => _handles.Count;

    /// <summary>
    /// Zero-message opens (FUSE_NO_OPEN_SUPPORT): the first OPEN is answered ENOSYS and the kernel never sends
    /// OPEN or RELEASE for files again, defaulting to FOPEN_KEEP_CACHE; reads then name the inode, which the kernel
    /// keeps (and so we keep) while the file is open. Saves two round trips per open of a small file.
    /// </summary>
    public bool NoOpen { get; private set; }

    /// <summary>Requests answered with EIO because of a fault (corrupt or missing object, time-out).</summary>
    public long Errors => Interlocked.Read(ref _errors);

    public bool Destroyed { get; private set; }

    private static ulong Seconds(TimeSpan t) => (ulong)Math.Max(0, t.TotalSeconds);

    public void Dispatch(ReadOnlySpan<byte> request)
    {
        var header = FuseWire.Read<FuseInHeader>(request);
        var body = request[FuseWire.InHeaderSize..Math.Min(request.Length, (int)header.Len)];
        try
        {
            Handle(header, body);
        }
        catch (Exception e)
        {
            // Every request but FORGET and INTERRUPT must be answered, or the process that made it hangs.
            if (e is FuseProtocolException) logger.LogError("{Code}: malformed {Opcode} request: {Message}", ErrorCodes.Name(ErrorCode.MountFailed), header.Opcode, e.Message);
            else Fail(header.Unique, e, interrupted: false, reply: false);
            if (header.Opcode is not (FuseOpcode.Forget or FuseOpcode.BatchForget or FuseOpcode.Interrupt)) ReplyError(header.Unique, Native.EIO);
        }
    }

    // Longer than 80 lines on purpose: one case per FUSE opcode, each only decoding its request and calling its handler.
    private void Handle(in FuseInHeader header, ReadOnlySpan<byte> body)
    {
        var unique = header.Unique;
        switch (header.Opcode)
        {
            case FuseOpcode.Init:
                Init(unique, FuseWire.Read<FuseInitIn>(body));
                break;
            case FuseOpcode.Destroy:
                Destroyed = true;
                ReplyError(unique, 0);
                break;
            case FuseOpcode.Lookup:
                Lookup(unique, header.NodeId, FuseWire.ReadName(body));
                break;
            case FuseOpcode.Forget:
                fs.Forget(header.NodeId, FuseWire.Read<FuseForgetIn>(body).NLookup);
                break; // no reply
            case FuseOpcode.BatchForget:
                BatchForget(body);
                break; // no reply
            case FuseOpcode.GetAttr:
                GetAttr(unique, header.NodeId);
                break;
            case FuseOpcode.ReadLink:
                ReadLink(unique, header.NodeId);
                break;
            case FuseOpcode.Open:
                Open(unique, header.NodeId, FuseWire.Read<FuseOpenIn>(body));
                break;
            case FuseOpcode.Read:
                Read(unique, header.NodeId, FuseWire.Read<FuseReadIn>(body));
                break;
            case FuseOpcode.Release:
            case FuseOpcode.ReleaseDir:
                _handles.TryRemove(FuseWire.Read<FuseReleaseIn>(body).Fh, out _);
                ReplyError(unique, 0);
                break;
            case FuseOpcode.OpenDir:
                OpenDir(unique, header.NodeId);
                break;
            case FuseOpcode.ReadDir:
                ReadDir(unique, FuseWire.Read<FuseReadIn>(body));
                break;
            case FuseOpcode.StatFs:
                StatFs(unique);
                break;
            case FuseOpcode.Access:
                // default_permissions makes the kernel check modes itself; only writing is ours to refuse.
                ReplyError(unique, (FuseWire.Read<FuseAccessIn>(body).Mask & FuseConstants.W_OK) != 0 ? Native.EROFS : 0);
                break;
            case FuseOpcode.Flush:
                // ENOSYS: nothing to flush, and the kernel stops sending FLUSH on every close.
                ReplyError(unique, Native.ENOSYS);
                break;
            case FuseOpcode.Interrupt:
                if (_pending.TryGetValue(FuseWire.Read<FuseInterruptIn>(body).Unique, out var cts))
                {
                    try
                    {
                        cts.Cancel();
                    }
                    catch (ObjectDisposedException)
                    {
                        // finished meanwhile
                    }
                }

                break; // no reply
            case FuseOpcode.GetXAttr:
                GetXAttr(unique, header.NodeId, body);
                break;
            case FuseOpcode.ListXAttr:
                ListXAttr(unique, header.NodeId, FuseWire.Read<FuseGetXAttrIn>(body));
                break;
            case FuseOpcode.FSync:
            case FuseOpcode.FSyncDir:
            case FuseOpcode.GetLk:
            case FuseOpcode.SetLk:
            case FuseOpcode.SetLkW:
            case FuseOpcode.BMap:
            case FuseOpcode.IoCtl:
            case FuseOpcode.Poll:
            case FuseOpcode.LSeek:
            case FuseOpcode.ReadDirPlus:
            case FuseOpcode.SyncFs:
                // ENOSYS: the kernel remembers and stops asking (xattrs: EOPNOTSUPP to callers; locks: local).
                ReplyError(unique, Native.ENOSYS);
                break;
            case FuseOpcode.SetAttr:
            case FuseOpcode.Symlink:
            case FuseOpcode.MkNod:
            case FuseOpcode.MkDir:
            case FuseOpcode.Unlink:
            case FuseOpcode.RmDir:
            case FuseOpcode.Rename:
            case FuseOpcode.Link:
            case FuseOpcode.Write:
            case FuseOpcode.SetXAttr:
            case FuseOpcode.RemoveXAttr:
            case FuseOpcode.Create:
            case FuseOpcode.FAllocate:
            case FuseOpcode.Rename2:
            case FuseOpcode.CopyFileRange:
            case FuseOpcode.TmpFile:
                ReplyError(unique, Native.EROFS);
                break;
            default:
                ReplyError(unique, Native.ENOSYS);
                break;
        }
    }

    private void Init(ulong unique, FuseInitIn init)
    {
        if (init.Major != FuseConstants.KernelVersion)
        {
            // A newer major: answer with ours and the kernel retries or gives up (fuse.h, "INIT request and reply").
            logger.LogError("{Code}: kernel speaks FUSE {Major}.{Minor}, cairn {Ours}.x", ErrorCodes.Name(ErrorCode.MountFailed), init.Major, init.Minor, FuseConstants.KernelVersion);
            if (init.Major < FuseConstants.KernelVersion)
            {
                ReplyError(unique, Native.EPROTO);
                _initialized.TrySetException(new CairnException(ErrorCode.MountFailed, $"the kernel's FUSE protocol {init.Major}.{init.Minor} is too old"));
                return;
            }
        }

        if (init.Minor < FuseConstants.MinimumMinorVersion)
        {
            ReplyError(unique, Native.EPROTO);
            _initialized.TrySetException(new CairnException(ErrorCode.MountFailed,
                $"the kernel's FUSE protocol 7.{init.Minor} is older than 7.{FuseConstants.MinimumMinorVersion}", "use Linux 5.4 or newer"));
            return;
        }

        var wanted = FuseConstants.FUSE_NO_OPEN_SUPPORT | FuseConstants.FUSE_ASYNC_READ | FuseConstants.FUSE_PARALLEL_DIROPS | FuseConstants.FUSE_MAX_PAGES | FuseConstants.FUSE_CACHE_SYMLINKS;
        var flags = init.Flags & wanted;
        var minor = Math.Min(init.Minor, FuseConstants.KernelMinorVersion);
        MaxPages = (flags & FuseConstants.FUSE_MAX_PAGES) != 0 ? 256 : 32;
        NoOpen = (flags & FuseConstants.FUSE_NO_OPEN_SUPPORT) != 0;
        var reply = new FuseInitOut
        {
            Major = FuseConstants.KernelVersion,
            Minor = minor,
            MaxReadahead = Math.Min(init.MaxReadahead, options.MaxReadahead),
            Flags = flags,
            MaxBackground = 64,
            CongestionThreshold = 48,
            MaxWrite = 128 * 1024,
            TimeGran = 1_000_000_000,
            MaxPages = (ushort)MaxPages,
        };
        Span<byte> buffer = stackalloc byte[128];
        sink.Send(buffer[..FuseWire.Reply(buffer, unique, reply)]);
        logger.LogInformation("FUSE protocol 7.{Minor} (kernel 7.{Kernel}), flags 0x{Flags:x}, max_readahead {Readahead}", minor, init.Minor, flags, reply.MaxReadahead);
        _initialized.TrySetResult((FuseConstants.KernelVersion, minor));
    }

    private void BatchForget(ReadOnlySpan<byte> body)
    {
        var count = FuseWire.Read<FuseBatchForgetIn>(body).Count;
        var items = MemoryMarshal.Cast<byte, FuseForgetOne>(body[Marshal.SizeOf<FuseBatchForgetIn>()..]);
        for (var i = 0; i < Math.Min((int)count, items.Length); i++)
        {
            fs.Forget(items[i].NodeId, items[i].NLookup);
        }
    }

    private Node? NodeOrReply(ulong unique, ulong ino)
    {
        var node = fs.Find(ino);
        if (node is null) ReplyError(unique, Native.ENOENT);
        return node;
    }

    internal FuseAttr Attr(Node node)
    {
        var e = node.Entry;
        var time = (ulong)Math.Max(0, node.Revision.Timestamp.ToUnixTimeSeconds());
        var (mode, nlink) = e.Kind switch
        {
            EntryKind.Directory => (FuseConstants.S_IFDIR | 0x16D /*0555*/, 2u + (uint)(node.LoadedContents?.Subdirectories ?? 0)),
            EntryKind.Symlink => (FuseConstants.S_IFLNK | 0x1FF /*0777*/, 1u),
            _ => (FuseConstants.S_IFREG | (e.Executable ? 0x16Du : 0x124u /*0444*/), 1u),
        };
        var size = (ulong)e.Size;
        return new FuseAttr
        {
            Ino = node.Ino,
            Size = size,
            Blocks = (size + 511) / 512,
            ATime = time,
            MTime = time,
            CTime = time,
            Mode = mode,
            NLink = nlink,
            Uid = fs.Uid,
            Gid = fs.Gid,
            BlkSize = 128 * 1024,
        };
    }

    /// <summary>Names and attributes in the root may change with --follow; everywhere else they are immutable.</summary>
    private ulong EntryTimeout(ulong parent) =>
        parent == FuseConstants.RootId && options.FollowInterval is { } f ? Seconds(f) : Seconds(options.CacheTimeout);

    private ulong AttrTimeout(ulong ino) => EntryTimeout(ino);

    private void Lookup(ulong unique, ulong parentIno, string name)
    {
        var parent = NodeOrReply(unique, parentIno);
        if (parent is null) return;
        Run(unique, async ct =>
        {
            var node = await fs.LookupAsync(parent, name, ct).ConfigureAwait(false);
            var timeout = EntryTimeout(parentIno);
            // Negative entries are cached too (nodeid 0): compilers probe many include paths that are not there.
            var entry = node is null
                ? new FuseEntryOut { NodeId = 0, EntryValid = timeout }
                : new FuseEntryOut { NodeId = node.Ino, EntryValid = timeout, AttrValid = timeout, Attr = Attr(node) };
            SendStruct(unique, entry);
        });
    }

    private void GetAttr(ulong unique, ulong ino)
    {
        var node = NodeOrReply(unique, ino);
        if (node is null) return;
        if (node.Entry.Kind == EntryKind.Directory && node.LoadedContents is null)
        {
            Run(unique, async ct =>
            {
                await fs.ContentsAsync(node, ct).ConfigureAwait(false);
                SendStruct(unique, new FuseAttrOut { AttrValid = AttrTimeout(ino), Attr = Attr(node) });
            });
            return;
        }

        SendStruct(unique, new FuseAttrOut { AttrValid = AttrTimeout(ino), Attr = Attr(node) });
    }

    private void ReadLink(ulong unique, ulong ino)
    {
        var node = NodeOrReply(unique, ino);
        if (node is null) return;
        if (node.Entry.Kind != EntryKind.Symlink)
        {
            ReplyError(unique, Native.EINVAL);
            return;
        }

        var target = Encoding.UTF8.GetBytes(node.Entry.Target ?? "");
        var buffer = new byte[FuseWire.OutHeaderSize + target.Length];
        target.CopyTo(buffer.AsSpan(FuseWire.OutHeaderSize));
        sink.Send(buffer.AsSpan(0, FuseWire.Header(buffer, unique, target.Length)));
    }

    private void Open(ulong unique, ulong ino, FuseOpenIn open)
    {
        var node = NodeOrReply(unique, ino);
        if (node is null) return;
        if ((open.Flags & 3) != 0)
        {
            ReplyError(unique, Native.EROFS);
            return;
        }

        if (!node.Entry.IsFile)
        {
            ReplyError(unique, node.Entry.Kind == EntryKind.Directory ? Native.EISDIR : Native.EINVAL);
            return;
        }

        if (NoOpen)
        {
            ReplyError(unique, Native.ENOSYS);
            return;
        }

        var fh = (ulong)Interlocked.Increment(ref _nextHandle);
        _handles[fh] = new FileHandle(node);
        SendStruct(unique, new FuseOpenOut { Fh = fh, OpenFlags = FuseConstants.FOPEN_KEEP_CACHE });
    }

    private void Read(ulong unique, ulong ino, FuseReadIn read)
    {
        Node? node;
        if (_handles.TryGetValue(read.Fh, out var h) && h is FileHandle handle) node = handle.Node;
        else if (NoOpen && read.Fh == 0 && fs.Find(ino) is { Entry.IsFile: true } found) node = found;
        else
        {
            ReplyError(unique, Native.EBADF);
            return;
        }

        var size = (int)Math.Min(read.Size, (uint)(MaxPages * 4096));
        var buffer = ArrayPool<byte>.Shared.Rent(FuseWire.OutHeaderSize + size);
        Run(unique, async ct =>
        {
            try
            {
                var n = await fs.ReadAsync(node, (long)read.Offset, buffer.AsMemory(FuseWire.OutHeaderSize, size), ct).ConfigureAwait(false);
                sink.Send(buffer.AsSpan(0, FuseWire.Header(buffer, unique, n)));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        });
    }

    private void OpenDir(ulong unique, ulong ino)
    {
        var node = NodeOrReply(unique, ino);
        if (node is null) return;
        if (node.Entry.Kind != EntryKind.Directory)
        {
            ReplyError(unique, Native.ENOTDIR);
            return;
        }

        Run(unique, async ct =>
        {
            var contents = node.LoadedContents ?? await fs.ContentsAsync(node, ct).ConfigureAwait(false);
            var fh = (ulong)Interlocked.Increment(ref _nextHandle);
            _handles[fh] = new DirHandle(node, contents);
            // The kernel may keep listings in its page cache; not the root's when following (it changes).
            var flags = ino == FuseConstants.RootId && fs.Following ? 0 : FuseConstants.FOPEN_KEEP_CACHE | FuseConstants.FOPEN_CACHE_DIR;
            SendStruct(unique, new FuseOpenOut { Fh = fh, OpenFlags = flags });
        });
    }

    private void ReadDir(ulong unique, FuseReadIn read)
    {
        if (!_handles.TryGetValue(read.Fh, out var h) || h is not DirHandle handle)
        {
            ReplyError(unique, Native.EBADF);
            return;
        }

        var size = (int)Math.Min(read.Size, 1u << 20);
        var buffer = ArrayPool<byte>.Shared.Rent(FuseWire.OutHeaderSize + size);
        try
        {
            var body = buffer.AsSpan(FuseWire.OutHeaderSize, size);
            var used = 0;
            var contents = handle.Contents;
            // Offsets: 1 is ".", 2 is "..", 3 + i is entry i; a dirent's off is where the next read starts.
            for (var off = (long)read.Offset; off < contents.Entries.Count + 2; off++)
            {
                int n;
                if (off == 0) n = FuseWire.Dirent(body[used..], handle.Node.Ino, 1, FuseConstants.DT_DIR, "."u8);
                else if (off == 1) n = FuseWire.Dirent(body[used..], handle.Node.Parent, 2, FuseConstants.DT_DIR, ".."u8);
                else
                {
                    var i = (int)(off - 2);
                    var e = contents.Entries[i];
                    var type = e.Kind switch
                    {
                        EntryKind.Directory => FuseConstants.DT_DIR,
                        EntryKind.Symlink => FuseConstants.DT_LNK,
                        _ => FuseConstants.DT_REG,
                    };
                    n = FuseWire.Dirent(body[used..], CairnFileSystem.InodeOf(CairnFileSystem.ChildPath(handle.Node, e.Name), e), (ulong)off + 1, type, contents.NameBytes[i]);
                }

                if (n == 0) break;
                used += n;
            }

            sink.Send(buffer.AsSpan(0, FuseWire.Header(buffer, unique, used)));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void StatFs(ulong unique)
    {
        var view = fs.Current;
        var st = new FuseKStatFs
        {
            Blocks = (ulong)((view.TotalBytes + 4095) / 4096),
            Files = (ulong)view.TotalFiles,
            BSize = 4096,
            FrSize = 4096,
            NameLen = TreeCodec.MaxNameBytes,
        };
        SendStruct(unique, st);
    }

    /// <summary>Runs a request that may wait for objects; INTERRUPT cancels it; faults become EIO and a log line naming the object.</summary>
    private void Run(ulong unique, Func<CancellationToken, Task> body)
    {
        var cts = new CancellationTokenSource();
        _pending[unique] = cts;
        Task task;
        try
        {
            task = body(cts.Token);
        }
        catch (Exception e)
        {
            task = Task.FromException(e);
        }

        if (task.IsCompletedSuccessfully)
        {
            Done(unique, cts);
            return;
        }

        _ = task.ContinueWith(t =>
        {
            Done(unique, cts);
            if (t.Exception is { } ex) Fail(unique, ex.InnerException ?? ex, cts.IsCancellationRequested);
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void Done(ulong unique, CancellationTokenSource cts)
    {
        _pending.TryRemove(new KeyValuePair<ulong, CancellationTokenSource>(unique, cts));
        cts.Dispose();
    }

    private void Fail(ulong unique, Exception e, bool interrupted, bool reply = true)
    {
        switch (e)
        {
            case OperationCanceledException when interrupted:
                ReplyError(unique, Native.EINTR);
                return;
            case MountReadException m:
                Interlocked.Increment(ref _errors);
                logger.LogError("{Code}: {Message}", ErrorCodes.Name(ErrorCode.MountReadFailed), m.Message);
                break;
            default:
                Interlocked.Increment(ref _errors);
                logger.LogError(e, "{Code}: request failed: {Message}", ErrorCodes.Name(ErrorCode.MountReadFailed), e.Message);
                break;
        }

        if (reply) ReplyError(unique, Native.EIO);
    }

    private void SendStruct<T>(ulong unique, in T body) where T : unmanaged
    {
        Span<byte> buffer = stackalloc byte[FuseWire.OutHeaderSize + Marshal.SizeOf<T>()];
        sink.Send(buffer[..FuseWire.Reply(buffer, unique, body)]);
    }

    private void ReplyError(ulong unique, int errno)
    {
        Span<byte> buffer = stackalloc byte[FuseWire.OutHeaderSize];
        sink.Send(buffer[..FuseWire.Error(buffer, unique, errno)]);
    }
}
