using Cairn.Core;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Repository.IO;

/// <summary>
/// An flock(2) held for the lifetime of the object. The kernel drops it when the process dies, so a killed
/// publisher never leaves a stale lock behind.
/// </summary>
public sealed class FileLock : IAsyncDisposable, IDisposable
{
    private readonly SafeFileHandle _handle;

    private FileLock(SafeFileHandle handle) => _handle = handle;

    public static async Task<FileLock> AcquireAsync(string path, bool exclusive, TimeSpan timeout, TimeProvider time, CancellationToken ct)
    {
        var handle = Native.OpenLockFile(path);
        try
        {
            var deadline = time.GetUtcNow() + timeout;
            var delay = TimeSpan.FromMilliseconds(5);
            while (!Native.Flock(handle, exclusive, wait: false))
            {
                if (time.GetUtcNow() >= deadline)
                {
                    throw new CairnException(ErrorCode.LockTimeout,
                        $"timed out after {timeout.TotalSeconds:0}s waiting for the {(exclusive ? "exclusive" : "shared")} lock '{path}'",
                        "another cairn process (publish or gc) holds it; wait for it to finish, or raise --lock-timeout");
                }

                await Task.Delay(delay, time, ct).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 200));
            }

            return new FileLock(handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public void Dispose() => _handle.Dispose();

    public ValueTask DisposeAsync()
    {
        _handle.Dispose();
        return ValueTask.CompletedTask;
    }
}
