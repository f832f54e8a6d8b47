using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Repository;
using Microsoft.Extensions.Logging;

namespace Cairn.Gateway;

/// <summary>
/// The sites' object uploads: which objects the gateway lacks, and each upload checked (size, SHA-256) before it is
/// kept. Collects uploaded objects into one pack instead of one pack per object. While objects are pending it holds the
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

    public async Task<IReadOnlyList<Digest>> MissingAsync(IReadOnlyList<Digest> digests, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(digests);
        if (digests.Count > GatewayProtocol.MaxMissingBatch)
        {
            throw new CairnException(ErrorCode.Usage, $"{digests.Count} digests in one missing-objects request; at most {GatewayProtocol.MaxMissingBatch}",
                "ask in batches");
        }

        var missing = new List<Digest>();
        foreach (var d in digests)
        {
            if (!await repository.Objects.ContainsAsync(d, ct).ConfigureAwait(false)) missing.Add(d);
        }

        return missing;
    }

    /// <summary>Checks an uploaded object (size, digest) and collects it; nothing is stored from a bad one.</summary>
    public async Task AcceptAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct)
    {
        if (content.Length > options.MaxObjectSize)
        {
            throw TooLarge(digest, content.Length);
        }

        var actual = Digest.Of(content.Span);
        if (actual != digest)
        {
            throw new CairnException(ErrorCode.GatewayObjectMismatch,
                $"uploaded object {digest} holds {content.Length} bytes whose SHA-256 is {actual}; nothing was stored",
                "upload the object's exact uncompressed content; if the site's own store is damaged, run 'cairn verify --full' there");
        }

        await PutAsync(digest, content, ct).ConfigureAwait(false);
    }

    public CairnException TooLarge(Digest digest, long length) => new(ErrorCode.GatewayObjectTooLarge,
        $"uploaded object {digest} is {length} bytes; this gateway accepts at most {options.MaxObjectSize}",
        "store large files chunked (cairn does this for files over 1 MiB), or start the gateway with a larger --max-object-size");

    private async Task PutAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct)
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
