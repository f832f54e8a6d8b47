using Cairn.Core;
using Cairn.Repository;
using Microsoft.Extensions.Logging;

namespace Cairn.Gateway;

/// <summary>
/// Collects uploaded objects into one pack instead of one pack per object. While objects are pending it holds the
/// repository's shared objects lock, so <c>cairn gc</c> (exclusive) neither deletes the pending pack nor runs
/// half-way through; the lock is let go at every flush (after <see cref="GatewayOptions.UploadFlushDelay"/>, at
/// a size threshold, or before a commit), so gc is delayed by seconds, never starved. Uploads that are never
/// committed stay unreferenced objects that the next gc removes.
/// </summary>
internal sealed class UploadSink(WritableRepository repository, GatewayOptions options, ILogger logger) : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private PublishSession? _session;
    private ITimer? _timer;
    private long _pendingBytes;

    public async Task PutAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_session is null)
            {
                // The session holds the shared objects lock and has caught up with any gc that ran while nobody held it.
                _session = await repository.BeginPublishAsync(ct).ConfigureAwait(false);
                _timer = options.WaitTime.CreateTimer(_ => _ = FlushInBackgroundAsync(), null, options.UploadFlushDelay, Timeout.InfiniteTimeSpan);
            }

            await _session.PutAsync(digest, content, ct).ConfigureAwait(false);
            _pendingBytes += content.Length;
            if (_pendingBytes >= options.UploadFlushBytes)
            {
                await FlushLockedAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Makes every pending upload durable and lets go of the objects lock.</summary>
    public async Task FlushAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await FlushLockedAsync().ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task FlushInBackgroundAsync()
    {
        try
        {
            await FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is CairnException or IOException or UnauthorizedAccessException)
        {
            // A timer has no caller to tell; the next commit flushes again and reports what is missing.
            logger.LogError(e, "flushing uploaded objects failed");
        }
    }

    private async Task FlushLockedAsync()
    {
        if (_session is null) return;
        try
        {
            await _session.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            _pendingBytes = 0;
            if (_timer is not null) await _timer.DisposeAsync().ConfigureAwait(false);
            _timer = null;
            var held = _session;
            _session = null;
            await held.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await FlushAsync(CancellationToken.None).ConfigureAwait(false);
        _gate.Dispose();
    }
}
