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
public sealed class HttpObjectStore : IObjectStore
{
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

    private static CairnException ReadOnly(string what) =>
        new(ErrorCode.RemoteReadOnly, $"a remote repository is read-only: cannot {what}",
            "publish, tag, rollback and gc on the repository directory itself (the server's --repo)");

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
        var hex = digest.ToString();
        if (_cache?.TryRead(ClientCache.ObjectPath(hex)) is { } cached)
        {
            if (Digest.Of(cached) == digest) return cached;
            _log.LogWarning("cached object {Digest} is corrupt; fetching it again", digest);
            _cache.Remove(ClientCache.ObjectPath(hex));
        }

        // Single flight: many readers of one object cause one fetch; a reader that gives up does not cancel it.
        var lazy = _inflight.GetOrAdd(digest, d => new Lazy<Task<byte[]>>(() => SharedFetchAsync(d)));
        return await lazy.Value.WaitAsync(ct).ConfigureAwait(false);
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

    private async Task<byte[]> FetchAndCacheAsync(Digest digest, CancellationToken ct)
    {
        // A reader that missed the cache just before an earlier flight stored the object and left starts a new
        // flight; look again so that it does not fetch the object a second time.
        if (_cache?.TryRead(ClientCache.ObjectPath(digest.ToString())) is { } cached && Digest.Of(cached) == digest)
        {
            return cached;
        }

        var content = await FetchAsync(digest, ct).ConfigureAwait(false);
        // Only verified content reaches here (ObjectCodec.Decode and the object-URL path both hash it).
        _cache?.Store(ClientCache.ObjectPath(digest.ToString()), content);
        return content;
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

        var request = new FetchRequest($"packs/{loc.Pack}.pack", loc.StoredSize) { Range = (loc.Offset, loc.StoredSize) };
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
            foreach (var kv in _index.Where(kv => kv.Value.Pack == pack).ToList()) _index.TryRemove(kv);
            await LoadIndexAsync(pack, useCache: false, ct).ConfigureAwait(false);
        }
        finally
        {
            _indexLock.Release();
        }
    }

    private async Task LoadIndexAsync(string pack, bool useCache, CancellationToken ct)
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
            entries = await _fetcher.FetchAsync(new FetchRequest($"packs/{pack}.idx", _options.MaxIndexBytes), (bytes, where) =>
            {
                var parsed = PackIndexCodec.Parse(bytes, pack, where, RemoteIndexHint);
                raw = bytes;
                return parsed;
            }, notFoundIsNull: false, ct).ConfigureAwait(false);
            _cache?.Store(relative, raw);
        }

        foreach (var (digest, location) in entries!) _index.TryAdd(digest, location);
        lock (_loadedPacks) _loadedPacks.Add(pack);
    }

    public ValueTask PutAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct) => throw ReadOnly("store objects");

    public ValueTask FlushAsync(CancellationToken ct) => throw ReadOnly("store objects");

    public ValueTask AbortAsync(CancellationToken ct) => ValueTask.CompletedTask;

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

    public ValueTask<RetainResult> RetainAsync(Func<Digest, bool> isLive, bool dryRun, CancellationToken ct) => throw ReadOnly("collect garbage");

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
