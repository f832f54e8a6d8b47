using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Cairn.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Repository.Http;

/// <summary>
/// Read-only object store on HTTP servers serving a repository directory (cairn serve, or any static web server).
/// It learns the packs from the head manifest's <c>packs</c> list, fetches each index once (then keeps it in the
/// client cache), and reads each object with one range request into its pack. Every object is verified against its
/// digest before it is returned or cached; a bad copy is refused and the next server asked. Concurrent reads of one
/// object share one fetch.
/// </summary>
public sealed class HttpObjectStore : IObjectReader
{
    /// <summary>A batch joins objects into one range request up to this size, bridging at most this many unneeded bytes.</summary>
    private const int MaxRangeBytes = 4 << 20;
    private const int MaxGapBytes = 64 << 10;

    /// <summary>Range requests of a batch in flight at once.</summary>
    private const int BatchParallelism = 4;

    /// <summary>Verified objects a batch keeps in memory for their readers (beyond it they are read back from the cache).</summary>
    private const long HandOffBudget = 64L << 20;

    private const string RemoteIndexHint = "the server's copy is damaged; another server is tried";

    private readonly RemoteFetcher _fetcher;
    private readonly ClientCache? _cache;
    private readonly RemoteOptions _options;
    private readonly Func<bool, CancellationToken, Task<IReadOnlyList<string>?>> _packList;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<Digest, PackLocation> _index = new();
    private readonly HashSet<string> _loadedPacks = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _indexLock = new(1, 1);
    private readonly ConcurrentDictionary<Digest, Lazy<Task<byte[]>>> _inflight = new();
    private readonly ConcurrentDictionary<Digest, byte[]> _handOff = new();
    private long _handOffBytes;
    private readonly CancellationTokenSource _disposed = new();
    private bool _indexesLoaded;
    private bool _refreshedForMiss;
    private IReadOnlyList<string>? _packs;

    /// <param name="packList">Returns the head's pack list (null for a manifest without one); true asks for a fresh manifest.</param>
    public HttpObjectStore(RemoteFetcher fetcher, ClientCache? cache, RemoteOptions options, Func<bool, CancellationToken, Task<IReadOnlyList<string>?>> packList, ILogger? logger = null)
    {
        _fetcher = fetcher;
        _cache = cache;
        _options = options;
        _packList = packList;
        _log = logger ?? NullLogger.Instance;
    }

    public RemoteFetcher Fetcher => _fetcher;

    public ClientCache? Cache => _cache;

    public async ValueTask<bool> ContainsAsync(Digest digest, CancellationToken ct)
    {
        if (_index.ContainsKey(digest)) return true;
        await EnsureIndexesAsync(fresh: false, ct).ConfigureAwait(false);
        if (_index.ContainsKey(digest)) return true;
        if (_packs is not null) return false;
        try
        {
            _ = await GetAsync(digest, ct).ConfigureAwait(false);
            return true;
        }
        catch (CairnException e) when (e.Code == ErrorCode.ObjectMissing)
        {
            return false;
        }
    }

    public async ValueTask<byte[]> GetAsync(Digest digest, CancellationToken ct)
    {
        // Verified by a batch fetch moments ago and not yet read: hand it over once, without reading it back.
        if (_handOff.TryRemove(digest, out var fresh))
        {
            Interlocked.Add(ref _handOffBytes, -fresh.Length);
            return fresh;
        }

        var hex = digest.ToString();
        if (_cache?.TryRead(ClientCache.ObjectPath(hex)) is { } cached)
        {
            if (Digest.Of(cached) == digest) return cached;
            _log.LogWarning("cached object {Digest} is corrupt; fetching it again", digest);
            _cache.Remove(ClientCache.ObjectPath(hex));
        }

        // Single flight: many readers of one object cause one fetch; a reader that gives up does not cancel it.
        var lazy = _inflight.GetOrAdd(digest, d => new Lazy<Task<byte[]>>(() => SharedFetchAsync(d)));
        var content = await lazy.Value.WaitAsync(ct).ConfigureAwait(false);
        // A batch that completed while this reader waited also left the content to hand off: it is taken now.
        if (_handOff.TryRemove(digest, out var dropped)) Interlocked.Add(ref _handOffBytes, -dropped.Length);
        return content;
    }

    private async Task<byte[]> SharedFetchAsync(Digest digest)
    {
        try
        {
            return await FetchAndCacheAsync(digest, _disposed.Token).ConfigureAwait(false);
        }
        finally
        {
            _inflight.TryRemove(digest, out _);
        }
    }

    private byte[]? ReadCached(Digest digest)
    {
        var relative = ClientCache.ObjectPath(digest.ToString());
        if (_cache?.TryRead(relative) is not { } cached) return null;
        if (Digest.Of(cached) == digest) return cached;
        _log.LogWarning("cached object {Digest} is corrupt; fetching it again", digest);
        _cache.Remove(relative);
        return null;
    }

    private async Task<byte[]> FetchAndCacheAsync(Digest digest, CancellationToken ct)
    {
        // A reader that missed the cache just before an earlier flight stored the object and left starts a new
        // flight; look again so that it does not fetch the object a second time.
        if (ReadCached(digest) is { } cached) return cached;

        // Across processes: whoever holds the entry's fill lock fetches it; the others wait, then read the cache.
        var relative = ClientCache.ObjectPath(digest.ToString());
        using var fill = _cache is null ? null : await _cache.LockEntryAsync(relative, ct).ConfigureAwait(false);
        if (fill is not null && ReadCached(digest) is { } filled) return filled;

        var content = await FetchAsync(digest, ct).ConfigureAwait(false);
        // Only verified content reaches here (ObjectCodec.Decode and the object-URL path both hash it).
        _cache?.Store(relative, content);
        return content;
    }

    public bool PrefetchesInBatches => _cache is not null && !_options.PreferObjectUrls;

    /// <summary>
    /// Claims the objects (readers of them now wait for this batch instead of fetching one by one), then fetches
    /// them in the background: grouped by pack, adjacent or nearly adjacent objects in one range request, each
    /// object decoded and verified on its own, stored in the cache and handed to its reader. Objects another
    /// thread or process is already filling are left to it. Whatever a batch cannot deliver (a range rejected by
    /// every server, an object missing from the indexes) is fetched alone, with all the failover and re-reading
    /// of indexes of <see cref="GetAsync"/>; the returned task never faults.
    /// </summary>
    public async ValueTask<Task> PrefetchAsync(IReadOnlyList<Digest> digests, CancellationToken ct)
    {
        if (!PrefetchesInBatches) return Task.CompletedTask;
        await EnsureIndexesAsync(fresh: false, ct).ConfigureAwait(false);
        if (_packs is null) return Task.CompletedTask;

        var claimed = new List<Claim>();
        var seen = new HashSet<Digest>();
        foreach (var digest in digests)
        {
            if (!seen.Add(digest) || !_index.TryGetValue(digest, out var loc) || loc.StoredSize == 0
                || loc.StoredSize > _options.MaxObjectBytes || loc.Size > _options.MaxObjectBytes
                || _handOff.ContainsKey(digest) || _cache!.Contains(ClientCache.ObjectPath(digest.ToString())))
            {
                continue;
            }

            var claim = new Claim(digest, loc, claimed.Count);
            var mine = new Lazy<Task<byte[]>>(() => claim.Done.Task);
            if (ReferenceEquals(_inflight.GetOrAdd(digest, mine), mine)) claimed.Add(claim);
        }

        return claimed.Count == 0 ? Task.CompletedTask : Task.Run(() => RunBatchAsync(claimed), CancellationToken.None);
    }

    /// <summary>One object claimed by a batch; <see cref="Order"/> is its place in the caller's list.</summary>
    private sealed class Claim(Digest digest, PackLocation location, int order)
    {
        public Digest Digest { get; } = digest;

        public PackLocation Location { get; } = location;

        public int Order { get; } = order;

        public TaskCompletionSource<byte[]> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public EntryLock? Fill { get; set; }
    }

    private async Task RunBatchAsync(List<Claim> claimed)
    {
        var ct = _disposed.Token;
        try
        {
            var alone = new List<Claim>();
            var runs = PlanRuns(claimed, LockOrHeldElsewhere(claimed), alone);
            var waiting = alone.Select(c => Deliver(c, ct)).ToList();
            var failed = await FetchRunsAsync(runs, ct).ConfigureAwait(false);

            // Objects of failed runs are fetched alone, a few at a time (like the readers that would fetch them).
            await Parallel.ForEachAsync(failed.OrderBy(c => c.Order), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct },
                async (c, token) => await Deliver(c, token).ConfigureAwait(false)).ConfigureAwait(false);
            await Task.WhenAll(waiting).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Cancelled (the store is closing) or a bug: no reader may be left waiting on a claim.
            foreach (var c in claimed)
            {
                if (c.Done.TrySetException(e)) _inflight.TryRemove(c.Digest, out _);
                c.Fill?.Dispose();
            }
        }
    }

    /// <summary>
    /// Takes each claim's cache entry lock; returns the objects another process is filling (or has filled), which
    /// are waited for and read from the cache (the one-by-one path), so that no process fetches bytes another is fetching.
    /// </summary>
    private HashSet<Digest> LockOrHeldElsewhere(List<Claim> claimed)
    {
        var elsewhere = new HashSet<Digest>();
        foreach (var c in claimed)
        {
            c.Fill = _cache!.TryLockEntry(ClientCache.ObjectPath(c.Digest.ToString()), out var held);
            if (held) elsewhere.Add(c.Digest);
            else if (c.Fill is not null && _cache.Contains(ClientCache.ObjectPath(c.Digest.ToString()))) elsewhere.Add(c.Digest);
        }

        return elsewhere;
    }

    /// <summary>
    /// Groups claims into runs of nearby objects of one pack, each fetched with one range request, in the caller's
    /// order; objects held elsewhere go to <paramref name="alone"/> and break runs.
    /// </summary>
    private static List<List<Claim>> PlanRuns(List<Claim> claimed, HashSet<Digest> elsewhere, List<Claim> alone)
    {
        var runs = new List<List<Claim>>();
        foreach (var pack in claimed.GroupBy(c => c.Location.Pack))
        {
            List<Claim>? run = null;
            foreach (var c in pack.OrderBy(c => c.Location.Offset))
            {
                if (elsewhere.Contains(c.Digest))
                {
                    alone.Add(c);
                    run = null;
                    continue;
                }

                if (run is not null)
                {
                    var start = run[0].Location.Offset;
                    var end = run[^1].Location.Offset + run[^1].Location.StoredSize;
                    var gap = c.Location.Offset - end;
                    if (gap >= 0 && gap <= MaxGapBytes && c.Location.Offset + c.Location.StoredSize - start <= MaxRangeBytes)
                    {
                        run.Add(c);
                        continue;
                    }
                }

                run = [c];
                runs.Add(run);
            }
        }

        // In the caller's order, so that the first files it writes are the first to arrive.
        runs.Sort((a, b) => a.Min(c => c.Order).CompareTo(b.Min(c => c.Order)));
        return runs;
    }

    /// <summary>Fetches the runs a few at a time; returns the claims of runs that failed, to be fetched one by one.</summary>
    private async Task<System.Collections.Concurrent.ConcurrentBag<Claim>> FetchRunsAsync(List<List<Claim>> runs, CancellationToken ct)
    {
        var failed = new System.Collections.Concurrent.ConcurrentBag<Claim>();
        await Parallel.ForEachAsync(runs, new ParallelOptions { MaxDegreeOfParallelism = BatchParallelism, CancellationToken = ct }, async (run, token) =>
        {
            byte[][] contents;
            try
            {
                contents = await FetchRunAsync(run, token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is CairnException or HttpRequestException or IOException)
            {
                _log.LogInformation("batch of {Count} objects from pack {Pack} failed ({Message}); fetching them one by one", run.Count, run[0].Location.Pack, e.Message);
                foreach (var c in run) failed.Add(c);
                return;
            }

            _cache!.StoreAll(run.Select((c, i) => (ClientCache.ObjectPath(c.Digest.ToString()), contents[i])));
            for (var i = 0; i < run.Count; i++) Complete(run[i], contents[i]);
        }).ConfigureAwait(false);
        return failed;
    }

    /// <summary>Fetches one run of objects with one range request; every object is decoded and verified, or the whole response is rejected.</summary>
    private async Task<byte[][]> FetchRunAsync(List<Claim> run, CancellationToken ct)
    {
        var start = run[0].Location.Offset;
        var length = run[^1].Location.Offset + run[^1].Location.StoredSize - start;
        var pack = run[0].Location.Pack;
        var request = new FetchRequest(RepositoryFiles.Pack(pack), length) { Range = (start, length) };
        return (await _fetcher.FetchAsync(request, (body, where) =>
        {
            var contents = new byte[run.Count][];
            for (var i = 0; i < run.Count; i++)
            {
                var loc = run[i].Location;
                contents[i] = ObjectCodec.Decode(loc.Codec, body.AsSpan((int)(loc.Offset - start), loc.StoredSize), loc.Size, run[i].Digest, where);
            }

            return contents;
        }, notFoundIsNull: false, ct).ConfigureAwait(false))!;
    }

    /// <summary>Fetches (or waits for another process to fill) one claimed object alone and completes its claim.</summary>
    private async Task Deliver(Claim c, CancellationToken ct)
    {
        // Our fill lock (if any) is released first: the one-by-one path takes it again and waits when another holds it.
        c.Fill?.Dispose();
        c.Fill = null;
        try
        {
            Complete(c, await FetchAndCacheAsync(c.Digest, ct).ConfigureAwait(false));
        }
        catch (Exception e)
        {
            c.Done.TrySetException(e);
            _inflight.TryRemove(c.Digest, out _);
        }
    }

    private void Complete(Claim c, byte[] content)
    {
        // Hand the content to its reader if it has not asked yet and memory allows; it is in the cache either way.
        if (Interlocked.Add(ref _handOffBytes, content.Length) > HandOffBudget || !_handOff.TryAdd(c.Digest, content))
        {
            Interlocked.Add(ref _handOffBytes, -content.Length);
        }

        c.Done.TrySetResult(content);
        _inflight.TryRemove(c.Digest, out _);
        c.Fill?.Dispose();
        c.Fill = null;
    }

    private async Task<byte[]> FetchAsync(Digest digest, CancellationToken ct)
    {
        await EnsureIndexesAsync(fresh: false, ct).ConfigureAwait(false);
        if (!_index.ContainsKey(digest) && _packs is not null && !_refreshedForMiss)
        {
            // A manifest read earlier may predate the pack: look once at the current one.
            _refreshedForMiss = true;
            await EnsureIndexesAsync(fresh: true, ct).ConfigureAwait(false);
        }

        if (_options.PreferObjectUrls || _packs is null)
        {
            return await FetchObjectUrlAsync(digest, ct).ConfigureAwait(false);
        }

        if (!_index.TryGetValue(digest, out var loc))
        {
            throw ObjectCodec.Missing(digest, $"the packs listed by the manifest on {string.Join(", ", _fetcher.Servers)}");
        }

        if (loc.Size > _options.MaxObjectBytes || loc.StoredSize > _options.MaxObjectBytes)
        {
            throw new CairnException(ErrorCode.RemoteContentRejected,
                $"the index of pack {loc.Pack} declares object {digest} as {loc.Size} bytes, above the limit of {_options.MaxObjectBytes}",
                "the server's index is damaged or hostile");
        }

        try
        {
            return await FetchFromPackAsync(digest, loc, ct).ConfigureAwait(false);
        }
        catch (CairnException e) when (e.Code == ErrorCode.RemoteContentRejected)
        {
            // Every server sent bytes that do not hash right at this offset: the index we hold may be the bad
            // copy. Fetch it again (never trusting the cached one) and retry once.
            _log.LogWarning("object {Digest} failed verification on every server; re-reading the index of pack {Pack}", digest, loc.Pack);
            await ReloadIndexAsync(loc.Pack, ct).ConfigureAwait(false);
            if (!_index.TryGetValue(digest, out var again) || again == loc) throw;
            return await FetchFromPackAsync(digest, again, ct).ConfigureAwait(false);
        }
    }

    private async Task<byte[]> FetchFromPackAsync(Digest digest, PackLocation loc, CancellationToken ct)
    {
        if (loc.StoredSize == 0)
        {
            // An empty record has no bytes to ask for (and "bytes=N-(N-1)" is not a range).
            return ObjectCodec.Decode(loc.Codec, [], loc.Size, digest, $"pack {loc.Pack}");
        }

        var request = new FetchRequest(RepositoryFiles.Pack(loc.Pack), loc.StoredSize) { Range = (loc.Offset, loc.StoredSize) };
        return (await _fetcher.FetchAsync(request, (stored, where) => ObjectCodec.Decode(loc.Codec, stored, loc.Size, digest, where), notFoundIsNull: false, ct)
            .ConfigureAwait(false))!;
    }

    private async Task<byte[]> FetchObjectUrlAsync(Digest digest, CancellationToken ct)
    {
        var request = new FetchRequest($"objects/{digest}", _options.MaxObjectBytes);
        var content = await _fetcher.FetchAsync(request, (bytes, where) =>
            Digest.Of(bytes) == digest ? bytes : throw ObjectCodec.Corrupt(digest, where, "content does not hash to its digest"), notFoundIsNull: true, ct).ConfigureAwait(false);
        if (content is not null) return content;
        if (_packs is null)
        {
            throw new CairnException(ErrorCode.RemoteNoPackList,
                $"object {digest} is not served at /objects/ and the manifest lists no packs (written by an older cairn)",
                "serve the repository with 'cairn serve', or publish (or gc) once with this cairn so the manifest lists its packs");
        }

        throw ObjectCodec.Missing(digest, $"{string.Join(", ", _fetcher.Servers)}");
    }

    private async Task EnsureIndexesAsync(bool fresh, CancellationToken ct)
    {
        if (_indexesLoaded && !fresh) return;
        await _indexLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_indexesLoaded && !fresh) return;
            _packs = await _packList(fresh, ct).ConfigureAwait(false);
            if (_packs is not null && !_options.PreferObjectUrls)
            {
                var missing = _packs.Where(p => !_loadedPacks.Contains(p)).ToList();
                await Parallel.ForEachAsync(missing, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct },
                    async (pack, token) => await LoadIndexAsync(pack, useCache: true, token).ConfigureAwait(false)).ConfigureAwait(false);
            }

            _indexesLoaded = true;
        }
        finally
        {
            _indexLock.Release();
        }
    }

    private async Task ReloadIndexAsync(string pack, CancellationToken ct)
    {
        await _indexLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            _cache?.Remove(ClientCache.IndexPath(pack));
            // Replace entries in place (and only then drop the pack's vanished ones): concurrent readers of other
            // objects of this pack must not find them missing while the index is re-read.
            var before = _index.Where(kv => kv.Value.Pack == pack).Select(kv => kv.Key).ToList();
            var now = await LoadIndexAsync(pack, useCache: false, ct).ConfigureAwait(false);
            foreach (var digest in before)
            {
                if (!now.Contains(digest) && _index.TryGetValue(digest, out var loc) && loc.Pack == pack) _index.TryRemove(new KeyValuePair<Digest, PackLocation>(digest, loc));
            }
        }
        finally
        {
            _indexLock.Release();
        }
    }

    /// <summary>Loads a pack's index into the lookup table (a fresh read replaces what it says); returns its digests.</summary>
    private async Task<HashSet<Digest>> LoadIndexAsync(string pack, bool useCache, CancellationToken ct)
    {
        if (!Digest.TryParse(pack, out _))
        {
            throw new CairnException(ErrorCode.ManifestMalformed, $"the manifest lists '{pack}', which is not a pack name", "the server's manifest is damaged");
        }

        var relative = ClientCache.IndexPath(pack);
        List<(Digest Digest, PackLocation Location)>? entries = null;
        if (useCache && _cache?.TryRead(relative) is { } cached)
        {
            try
            {
                entries = PackIndexCodec.Parse(cached, pack, $"cache '{relative}'", RemoteIndexHint);
            }
            catch (CairnException)
            {
                _cache.Remove(relative);
            }
        }

        if (entries is null)
        {
            byte[]? raw = null;
            entries = await _fetcher.FetchAsync(new FetchRequest(RepositoryFiles.PackIndex(pack), _options.MaxIndexBytes), (bytes, where) =>
            {
                var parsed = PackIndexCodec.Parse(bytes, pack, where, RemoteIndexHint);
                raw = bytes;
                return parsed;
            }, notFoundIsNull: false, ct).ConfigureAwait(false);
            _cache?.Store(relative, raw);
        }

        foreach (var (digest, location) in entries!)
        {
            if (useCache) _index.TryAdd(digest, location);
            else _index[digest] = location;
        }

        lock (_loadedPacks) _loadedPacks.Add(pack);
        return entries.Select(e => e.Digest).ToHashSet();
    }

    public async IAsyncEnumerable<ObjectInfo> ListAsync([EnumeratorCancellation] CancellationToken ct)
    {
        await EnsureIndexesAsync(fresh: false, ct).ConfigureAwait(false);
        if (_packs is null)
        {
            throw new CairnException(ErrorCode.RemoteNoPackList, "the manifest lists no packs (written by an older cairn), so the objects cannot be listed",
                "publish (or gc) once with this cairn so the manifest lists its packs");
        }

        foreach (var (digest, loc) in _index)
        {
            ct.ThrowIfCancellationRequested();
            yield return new ObjectInfo(digest, loc.StoredSize, loc.Size);
        }
    }

    public async ValueTask RefreshAsync(CancellationToken ct)
    {
        _refreshedForMiss = false;
        await EnsureIndexesAsync(fresh: true, ct).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync()
    {
        _disposed.Cancel();
        _disposed.Dispose();
        _fetcher.Dispose();
        _cache?.Dispose();
        _indexLock.Dispose();
        return ValueTask.CompletedTask;
    }
}
