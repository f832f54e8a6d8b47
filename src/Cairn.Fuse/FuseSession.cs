using Microsoft.Extensions.Logging;

namespace Cairn.Fuse;

/// <summary>An open /dev/fuse: reader threads feed the dispatcher; replies are single write(2)s.</summary>
internal sealed unsafe class FuseDevice(int fd, ILogger logger) : IFuseReplySink
{
    public int Fd => fd;

    public void Send(ReadOnlySpan<byte> reply)
    {
        fixed (byte* p = reply)
        {
            if (Native.Write(fd, p, reply.Length) >= 0) return;
        }

        var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        // ENOENT: the request was interrupted or aborted meanwhile; ENODEV: unmounted. Neither is a fault.
        if (errno is not (Native.ENOENT or Native.ENODEV))
        {
            logger.LogWarning("writing a FUSE reply failed: {Error}", Native.Describe(errno));
        }
    }
}

/// <summary>Reader threads on one /dev/fuse descriptor (the kernel hands each request to exactly one reader).</summary>
internal sealed unsafe class FuseSession
{
    private readonly FuseDevice _device;
    private readonly FuseDispatcher _dispatcher;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _running;

    /// <summary>Large enough for any request: a WRITE of max_write plus headers (never sent on a read-only mount) and the kernel's minimum.</summary>
    public const int BufferSize = (128 * 1024) + 4096;

    public FuseSession(FuseDevice device, FuseDispatcher dispatcher, ILogger logger)
    {
        _device = device;
        _dispatcher = dispatcher;
        _logger = logger;
    }

    /// <summary>Completes when the kernel ends the connection (unmounted or aborted).</summary>
    public Task Ended => _ended.Task;

    public void Start(int threads)
    {
        _running = threads;
        for (var i = 0; i < threads; i++)
        {
            var thread = new Thread(Loop) { IsBackground = true, Name = $"fuse-{i}" };
            thread.Start();
        }
    }

    private void Loop()
    {
        var buffer = GC.AllocateUninitializedArray<byte>(BufferSize, pinned: true);
        try
        {
            fixed (byte* p = buffer)
            {
                while (true)
                {
                    var n = Native.Read(_device.Fd, p, buffer.Length);
                    if (n < 0)
                    {
                        var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
                        if (errno is Native.EINTR or Native.EAGAIN or Native.ENOENT) continue;
                        if (errno != Native.ENODEV) _logger.LogError("reading /dev/fuse failed: {Error}", Native.Describe(errno));
                        return;
                    }

                    if (n == 0) return;
                    try
                    {
                        _dispatcher.Dispatch(buffer.AsSpan(0, (int)n));
                    }
                    catch (Exception e)
                    {
                        _logger.LogError(e, "FUSE request failed unexpectedly");
                    }

                    if (_dispatcher.Destroyed) return;
                }
            }
        }
        finally
        {
            if (Interlocked.Decrement(ref _running) == 0) _ended.TrySetResult();
        }
    }
}
