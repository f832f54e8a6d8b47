using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Cairn.Core;
using Location = Cairn.Repository.PackLocation;

namespace Cairn.Repository.S3;

/// <summary>
/// Objects in packs in a bucket, byte-for-byte the directory repository's packs/&lt;sha256&gt;.pack + .idx
/// (docs/format/repository.md §4), so a bucket can be mirrored by copying and served by any HTTP frontend.
/// Packs are built in memory, uploaded in parallel as they fill (multipart above 16 MiB), index after pack.
/// </summary>
public sealed class S3PackObjectStore : IObjectStore
{
    /// <summary>Smaller than the directory store's 64 MiB: a pack is held in memory until uploaded.</summary>
    public const int TargetPackSize = 32 << 20;
    private const int ParallelUploads = 4;
    private const int MultipartThreshold = 16 << 20;
    private const int PartSize = 8 << 20;

    private readonly S3Calls _s3;
    private readonly ConcurrentDictionary<Digest, Location> _index = new();
    private readonly ConcurrentDictionary<string, byte[]> _uploading = new(StringComparer.Ordinal);
    private readonly HashSet<string> _loadedPacks = new(StringComparer.Ordinal);
    private readonly Lock _writeLock = new();
    private readonly List<Task> _uploads = [];
    private readonly SemaphoreSlim _uploadSlots = new(ParallelUploads);
    private readonly SemaphoreSlim _refresh = new(1);
    private PackBuilder? _writer;

    internal S3PackObjectStore(S3Calls s3) => _s3 = s3;

    internal static async Task<S3PackObjectStore> OpenAsync(S3Calls s3, CancellationToken ct)
    {
        var store = new S3PackObjectStore(s3);
        await store.RefreshAsync(ct).ConfigureAwait(false);
        return store;
    }

    /// <summary>Packs with both files present, sorted: the list a manifest records (format §6).</summary>
    internal static async Task<List<string>> ListPacksAsync(S3Calls s3, CancellationToken ct)
    {
        var keys = (await s3.ListAsync("packs/", ct).ConfigureAwait(false)).ToHashSet(StringComparer.Ordinal);
        return keys.Where(k => k.EndsWith(".idx", StringComparison.Ordinal) && keys.Contains(k[..^4] + ".pack"))
            .Select(k => k["packs/".Length..^4]).Order(StringComparer.Ordinal).ToList();
    }

    public async ValueTask RefreshAsync(CancellationToken ct)
    {
        await _refresh.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var present = (await ListPacksAsync(_s3, ct).ConfigureAwait(false)).ToHashSet(StringComparer.Ordinal);
            List<string> added;
            lock (_loadedPacks)
            {
                var gone = _loadedPacks.Where(p => !present.Contains(p)).ToHashSet(StringComparer.Ordinal);
                if (gone.Count > 0)
                {
                    foreach (var kv in _index.Where(kv => gone.Contains(kv.Value.Pack)).ToList()) _index.TryRemove(kv.Key, out _);
                    // gc moved live objects of the gone packs into new ones; reload all so none is missed.
                    _loadedPacks.Clear();
                }

                added = present.Where(p => !_loadedPacks.Contains(p)).ToList();
            }

            var loaded = new ConcurrentBag<(string, List<(Digest, Location)>)>();
            await Parallel.ForEachAsync(added, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (pack, c) =>
            {
                if (await _s3.GetAsync(RepositoryFiles.PackIndex(pack), c).ConfigureAwait(false) is { } idx) loaded.Add((pack, ParseIndex(idx.Bytes, pack)));
            }).ConfigureAwait(false);
            lock (_loadedPacks)
            {
                foreach (var (pack, entries) in loaded)
                {
                    _loadedPacks.Add(pack);
                    foreach (var (d, loc) in entries) _index.TryAdd(d, loc);
                }
            }
        }
        finally
        {
            _refresh.Release();
        }
    }

    private List<(Digest Digest, Location Location)> ParseIndex(byte[] data, string pack) =>
        PackIndexCodec.Parse(data, pack, $"'{_s3.Location.Display}{RepositoryFiles.PackIndex(pack)}'", "run 'cairn verify'; delete the .idx and its .pack if the pack is unrecoverable");

    public ValueTask<bool> ContainsAsync(Digest digest, CancellationToken ct) => ValueTask.FromResult(_index.ContainsKey(digest));

    public async ValueTask<byte[]> GetAsync(Digest digest, CancellationToken ct)
    {
        if (!_index.TryGetValue(digest, out var loc))
        {
            await RefreshAsync(ct).ConfigureAwait(false);
            if (!_index.TryGetValue(digest, out loc)) throw ObjectCodec.Missing(digest, $"repository packs '{_s3.Location.Display}packs/'");
        }

        var where = $"pack '{_s3.Location.Display}{RepositoryFiles.Pack(loc.Pack)}'";
        byte[] stored;
        PackBuilder? pending;
        lock (_writeLock)
        {
            pending = _writer is { } w && w.Name == loc.Pack ? w : null;
            stored = pending?.Read(loc.Offset, loc.StoredSize) ?? [];
        }

        if (pending is null)
        {
            stored = _uploading.TryGetValue(loc.Pack, out var bytes)
                ? bytes.AsSpan((int)loc.Offset, loc.StoredSize).ToArray()
                : await _s3.GetRangeAsync(RepositoryFiles.Pack(loc.Pack), loc.Offset, loc.StoredSize, ct).ConfigureAwait(false);
        }

        if (stored.Length != loc.StoredSize) throw ObjectCodec.Corrupt(digest, where, $"truncated: read {stored.Length} of {loc.StoredSize} bytes at offset {loc.Offset}");
        return ObjectCodec.Decode(loc.Codec, stored, loc.Size, digest, where);
    }

    public ValueTask PutAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct)
    {
        if (_index.ContainsKey(digest)) return ValueTask.CompletedTask;
        var buffer = ArrayPool<byte>.Shared.Rent(ObjectCodec.MaxStoredLength(content.Length));
        try
        {
            var (codec, length) = ObjectCodec.Compress(content.Span, buffer);
            var stored = codec == Codec.Raw ? content.Span : buffer.AsSpan(0, length);
            lock (_writeLock)
            {
                if (_index.ContainsKey(digest)) return ValueTask.CompletedTask;
                _writer ??= new PackBuilder();
                var offset = _writer.Append(digest, codec, stored, content.Length);
                _index[digest] = new Location(_writer.Name, offset, stored.Length, content.Length, codec);
                if (_writer.Length >= TargetPackSize) SealLocked();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Names the pack by its hash and starts its upload; reads are served from memory until it lands.</summary>
    private void SealLocked()
    {
        if (_writer is not { } writer) return;
        _writer = null;
        var (name, pack, idx) = writer.Finish();
        _uploading[name] = pack;
        foreach (var kv in _index.Where(kv => kv.Value.Pack == writer.Name).ToList()) _index[kv.Key] = kv.Value with { Pack = name };
        _uploads.Add(UploadAsync(name, pack, idx, writer.Name));
    }

    private async Task UploadAsync(string name, byte[] pack, byte[] idx, string pendingName)
    {
        await _uploadSlots.WaitAsync().ConfigureAwait(false);
        try
        {
            await UploadPackAsync(_s3, name, pack, idx, CancellationToken.None).ConfigureAwait(false);
            lock (_loadedPacks) _loadedPacks.Add(name);
        }
        catch
        {
            foreach (var kv in _index.Where(kv => kv.Value.Pack == name).ToList()) _index.TryRemove(kv.Key, out _);
            throw;
        }
        finally
        {
            _uploading.TryRemove(name, out _);
            _uploadSlots.Release();
            _ = pendingName;
        }
    }

    /// <summary>Pack first, index last: an index is only ever visible beside its complete pack (as on disk).</summary>
    internal static async Task UploadPackAsync(S3Calls s3, string name, byte[] pack, byte[] idx, CancellationToken ct)
    {
        if (pack.Length <= MultipartThreshold)
        {
            await s3.PutAsync(RepositoryFiles.Pack(name), pack, ct).ConfigureAwait(false);
        }
        else
        {
            await s3.PutMultipartAsync(RepositoryFiles.Pack(name), pack, PartSize, ct).ConfigureAwait(false);
        }

        await s3.PutAsync(RepositoryFiles.PackIndex(name), idx, ct).ConfigureAwait(false);
    }

    public async ValueTask FlushAsync(CancellationToken ct)
    {
        Task[] pending;
        lock (_writeLock)
        {
            SealLocked();
            pending = [.. _uploads];
            _uploads.Clear();
        }

        await Task.WhenAll(pending).ConfigureAwait(false);
    }

    public ValueTask AbortAsync(CancellationToken ct)
    {
        lock (_writeLock)
        {
            if (_writer is { } w)
            {
                foreach (var key in _index.Where(kv => kv.Value.Pack == w.Name).Select(kv => kv.Key).ToList()) _index.TryRemove(key, out _);
                _writer = null;
            }
        }

        return ValueTask.CompletedTask;
    }

    public async IAsyncEnumerable<ObjectInfo> ListAsync([EnumeratorCancellation] CancellationToken ct)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        foreach (var (digest, loc) in _index)
        {
            ct.ThrowIfCancellationRequested();
            yield return new ObjectInfo(digest, loc.StoredSize, loc.Size);
        }
    }

    public async ValueTask<RetainResult> RetainAsync(Func<Digest, bool> isLive, bool dryRun, CancellationToken ct)
    {
        await FlushAsync(ct).ConfigureAwait(false);
        await RefreshAsync(ct).ConfigureAwait(false);
        var planner = new RetentionPlanner(isLive, d => _index.TryGetValue(d, out var current) ? current.Pack : null, dryRun);
        foreach (var pack in await ListPacksAsync(_s3, ct).ConfigureAwait(false))
        {
            if (await _s3.GetAsync(RepositoryFiles.PackIndex(pack), ct).ConfigureAwait(false) is not { } idx) continue;
            var plan = planner.Plan(pack, ParseIndex(idx.Bytes, pack));
            if (plan.Untouched || dryRun) continue;
            if (plan.NeedsRewrite) await RewriteAsync(plan, ct).ConfigureAwait(false);
            foreach (var (d, _) in plan.Dead)
            {
                if (_index.TryGetValue(d, out var cur) && cur.Pack == pack) _index.TryRemove(d, out _);
            }

            // Index first: a crash in between leaves an unindexed pack (garbage), never a dangling index.
            await _s3.DeleteAsync(RepositoryFiles.PackIndex(pack), ct).ConfigureAwait(false);
            await _s3.DeleteAsync(RepositoryFiles.Pack(pack), ct).ConfigureAwait(false);
            lock (_loadedPacks) _loadedPacks.Remove(pack);
        }

        if (!dryRun)
        {
            // Packs without an index: uploads that died before their index. Safe only under the exclusive lease.
            var keys = (await _s3.ListAsync(RepositoryFiles.PacksFolder + "/", ct).ConfigureAwait(false)).ToHashSet(StringComparer.Ordinal);
            foreach (var k in keys.Where(k => k.EndsWith(RepositoryFiles.PackExtension, StringComparison.Ordinal) && !keys.Contains(k[..^5] + RepositoryFiles.IndexExtension)))
            {
                await _s3.DeleteAsync(k, ct).ConfigureAwait(false);
            }
        }

        return planner.Result;
    }

    /// <summary>Copies a pack's live objects into a new pack, uploads it and points the index at it.</summary>
    private async Task RewriteAsync(PackRetention plan, CancellationToken ct)
    {
        var whole = await _s3.GetAsync(RepositoryFiles.Pack(plan.Pack), ct).ConfigureAwait(false)
            ?? throw ObjectCodec.Missing(plan.Live[0].Digest, $"pack '{_s3.Location.Display}{RepositoryFiles.Pack(plan.Pack)}' (the pack file is gone)");
        var builder = new PackBuilder();
        var moved = plan.Live.Select(o => (o.Digest, Loc: o.Location with
        {
            Offset = builder.Append(o.Digest, o.Location.Codec, whole.Bytes.AsSpan((int)o.Location.Offset, o.Location.StoredSize), o.Location.Size),
        })).ToList();
        var (name, packBytes, idxBytes) = builder.Finish();
        await UploadPackAsync(_s3, name, packBytes, idxBytes, ct).ConfigureAwait(false);
        foreach (var (d, loc) in moved) _index[d] = loc with { Pack = name };
        lock (_loadedPacks) _loadedPacks.Add(name);
    }

    public async ValueTask DisposeAsync()
    {
        Task[] pending;
        lock (_writeLock)
        {
            _writer = null;
            pending = [.. _uploads];
            _uploads.Clear();
        }

        try
        {
            await Task.WhenAll(pending).ConfigureAwait(false);
        }
        catch (CairnException)
        {
            // Unflushed work of a failed publish; it reported its error where it flushed.
        }

        _s3.Client.Dispose();
        _uploadSlots.Dispose();
        _refresh.Dispose();
    }

    /// <summary>One pack being assembled in memory through the shared <see cref="PackEncoder"/>.</summary>
    private sealed class PackBuilder
    {
        private readonly MemoryStream _bytes = new();
        private readonly PackEncoder _encoder;

        public PackBuilder() => _encoder = new PackEncoder((bytes, _) => _bytes.Write(bytes));

        public string Name { get; } = "pending-" + Guid.NewGuid().ToString("N");

        public long Length => _encoder.Length;

        public long Append(Digest digest, Codec codec, ReadOnlySpan<byte> stored, int size) => _encoder.Append(digest, codec, stored, size);

        public byte[] Read(long offset, int length) => _bytes.GetBuffer().AsSpan((int)offset, length).ToArray();

        public (string Name, byte[] Pack, byte[] Index) Finish()
        {
            var (name, idx) = _encoder.Finish();
            _encoder.Dispose();
            return (name, _bytes.ToArray(), idx);
        }
    }
}
