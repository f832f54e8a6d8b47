using Cairn.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Coordination;

/// <summary>
/// Renews a lease every third of its TTL until disposed, so a commit that runs longer than the TTL (the object
/// check of a very large product, a slow store) keeps its paths. Renewal never decides anything by itself: a
/// lease that could not be renewed lapses, and the holder's own <see cref="ICoordinationStore.ValidateLeaseAsync"/>
/// before it writes refuses the commit.
/// </summary>
public sealed class LeaseKeeper : IAsyncDisposable
{
    private readonly ICoordinationStore _store;
    private readonly string _site;
    private readonly TimeSpan _ttl;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly long _leaseId;
    private int _renewals;

    private LeaseKeeper(ICoordinationStore store, Lease lease, TimeSpan ttl, TimeProvider time, ILogger? log)
    {
        _store = store;
        _site = lease.Site;
        _leaseId = lease.Id;
        _ttl = ttl;
        _time = time;
        _log = log ?? NullLogger.Instance;
        _loop = RunAsync();
    }

    /// <summary>How many renewals succeeded so far.</summary>
    public int Renewals => Volatile.Read(ref _renewals);

    public static LeaseKeeper Start(ICoordinationStore store, Lease lease, TimeSpan ttl, TimeProvider time, ILogger? log = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(time);
        if (ttl <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(ttl), ttl, "a lease TTL is positive");
        return new LeaseKeeper(store, lease, ttl, time, log);
    }

    private async Task RunAsync()
    {
        // Leave the constructor before the first await on any provider (a fake one may complete delays inline).
        await Task.Yield();
        while (true)
        {
            try
            {
                await Task.Delay(_ttl / 3, _time, _stop.Token).ConfigureAwait(false);
                await _store.RenewLeaseAsync(_leaseId, _site, _ttl, _stop.Token).ConfigureAwait(false);
                Interlocked.Increment(ref _renewals);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (CairnException e) when (e.Code == ErrorCode.LeaseLost)
            {
                _log.LogWarning("lease {Lease} of {Site} lapsed before it could be renewed: {Message}", _leaseId, _site, e.Message);
                return;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A database hiccup: try again at the next tick; the lease has two more thirds of its TTL.
                _log.LogWarning("renewing lease {Lease} of {Site} failed: {Message}", _leaseId, _site, e.Message);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
