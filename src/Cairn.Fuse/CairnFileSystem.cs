using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Cairn.Core;
using Cairn.Repository;
using Microsoft.Extensions.Logging;

namespace Cairn.Fuse;

/// <summary>The listing of one directory, decoded once from its verified tree object.</summary>
internal sealed class DirContents
{
    public DirContents(IReadOnlyList<TreeEntry> entries)
    {
        Entries = entries;
        ByName = new Dictionary<string, TreeEntry>(entries.Count, StringComparer.Ordinal);
        NameBytes = new byte[entries.Count][];
        for (var i = 0; i < entries.Count; i++)
        {
            ByName[entries[i].Name] = entries[i];
            NameBytes[i] = Encoding.UTF8.GetBytes(entries[i].Name);
            if (entries[i].Kind == EntryKind.Directory) Subdirectories++;
        }
    }

    public IReadOnlyList<TreeEntry> Entries { get; }

    public Dictionary<string, TreeEntry> ByName { get; }

    public byte[][] NameBytes { get; }

    public int Subdirectories { get; }
}

/// <summary>Where each chunk of a chunked file starts.</summary>
internal sealed class ChunkMap(IReadOnlyList<(int Length, Digest Digest)> chunks, long[] starts)
{
    public IReadOnlyList<(int Length, Digest Digest)> Chunks => chunks;

    public long[] Starts => starts;

    /// <summary>Index of the chunk holding byte <paramref name="offset"/>.</summary>
    public int IndexOf(long offset)
    {
        var i = Array.BinarySearch(starts, offset);
        return i >= 0 ? i : ~i - 1;
    }
}

/// <summary>
/// One inode. Identity is (path, kind, executable bit, digest or target): a node is immutable, the same path with
/// the same content keeps its number (and the kernel's page cache) across revisions, changed content gets a new one,
/// and identical content at two paths gets two inodes, so nothing looks hard-linked.
/// </summary>
internal sealed class Node(ulong ino, ulong parent, string path, TreeEntry entry, Manifest revision)
{
    public ulong Ino => ino;

    public ulong Parent => parent;

    /// <summary>Path below the mount point ("" for the root), for messages.</summary>
    public string Path => path;

    public TreeEntry Entry => entry;

    /// <summary>The revision this node was first seen in (times in stat, messages).</summary>
    public Manifest Revision => revision;

    public long LookupCount;

    public bool Forgotten;

    public Task<DirContents>? Contents;

    public Task<ChunkMap>? Chunks;

    public DirContents? LoadedContents => Contents is { IsCompletedSuccessfully: true } t ? t.Result : null;

    public bool SameIdentity(string otherPath, TreeEntry other) =>
        string.Equals(path, otherPath, StringComparison.Ordinal) && entry.Kind == other.Kind && entry.Executable == other.Executable &&
        entry.Digest == other.Digest && entry.Size == other.Size && string.Equals(entry.Target, other.Target, StringComparison.Ordinal);
}

/// <summary>
/// The repository tree of one revision as inodes: lazy directory listings from tree objects, file content fetched
/// on first read, verified by the store, and kept in a bounded memory cache. Thread-safe.
/// </summary>
internal sealed class CairnFileSystem : IDisposable
{
    private readonly ProductRepository _repository;
    private readonly FuseMountOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<ulong, Node> _nodes = new();
    private readonly ConcurrentDictionary<Digest, Task<byte[]>> _inflight = new();
    private readonly ContentCache _cache;
    private readonly CancellationTokenSource _lifetime = new();
    private volatile View _view;

    /// <summary>The revision new lookups see; its root node is inode 1.</summary>
    internal sealed record View(Manifest Manifest, Node Root, long TotalBytes, long TotalFiles);

    private CairnFileSystem(ProductRepository repository, FuseMountOptions options, ILogger logger, View view)
    {
        _repository = repository;
        _options = options;
        _logger = logger;
        _view = view;
        _cache = new ContentCache(options.MemoryCacheBytes);
    }

    public static async Task<CairnFileSystem> OpenAsync(ProductRepository repository, FuseMountOptions options, ILogger logger, CancellationToken ct)
    {
        var manifest = await repository.HeadAsync(ct).ConfigureAwait(false);
        var fs = new CairnFileSystem(repository, options, logger, null!);
        fs._view = await fs.LoadViewAsync(manifest, ct).ConfigureAwait(false);
        return fs;
    }

    public Manifest Revision => _view.Manifest;

    public View Current => _view;

    public int NodeCount => _nodes.Count;

    public long CachedBytes => _cache.Bytes;

    public bool Following => _options.FollowInterval is not null;

    /// <summary>uid and gid of every file: whoever mounted.</summary>
    public uint Uid { get; } = Native.GetEuid();

    public uint Gid { get; } = Native.GetEgid();

    private async Task<View> LoadViewAsync(Manifest manifest, CancellationToken ct)
    {
        var rootEntry = TreeEntry.Dir("", manifest.RootSize, manifest.Root);
        var root = new Node(FuseConstants.RootId, FuseConstants.RootId, "", rootEntry, manifest);
        await ContentsAsync(root, ct).ConfigureAwait(false);
        long bytes = 0, files = 0;
        try
        {
            foreach (var p in (await _repository.CatalogAsync(manifest, ct).ConfigureAwait(false)).Products)
            {
                bytes += p.Size;
                files += p.Files;
            }
        }
        catch (CairnException e)
        {
            _logger.LogWarning("{Code}: catalog of revision {Revision} unreadable, statfs reports 0: {Message}", ErrorCodes.Name(ErrorCode.MountReadFailed), manifest.Revision, e.Message);
        }

        return new View(manifest, root, bytes, files);
    }

    /// <summary>Polls the head manifest; a new revision becomes the root for new lookups, open files keep theirs.</summary>
    public async Task FollowAsync(TimeSpan interval, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(interval);
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
        {
            try
            {
                await RefreshAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                _logger.LogWarning("{Code}: cannot check for a new revision, staying at {Revision}: {Message}", ErrorCodes.Name(ErrorCode.MountReadFailed), _view.Manifest.Revision, e.Message);
            }
        }
    }

    /// <summary>Switches to the head revision if it changed; returns true when it did.</summary>
    public async Task<bool> RefreshAsync(CancellationToken ct)
    {
        var head = await _repository.HeadAsync(ct).AsTask().WaitAsync(_options.ReadTimeout, ct).ConfigureAwait(false);
        var current = _view.Manifest;
        if (head.Revision == current.Revision && head.Root == current.Root) return false;
        var view = await LoadViewAsync(head, ct).WaitAsync(_options.ReadTimeout, ct).ConfigureAwait(false);
        _view = view;
        _logger.LogInformation("mount now shows revision {Revision} (root {Root})", head.Revision, head.Root.Abbreviated);
        return true;
    }

    public Node? Find(ulong ino) =>
        ino == FuseConstants.RootId ? _view.Root : _nodes.TryGetValue(ino, out var node) ? node : null;

    /// <summary>Stable inode number of an entry: the first 63 bits of SHA-256 over its identity; 0 and 1 are never used.</summary>
    public static ulong InodeOf(string path, TreeEntry entry)
    {
        var text = $"{path}\0{(int)entry.Kind}\0{(entry.Executable ? 1 : 0)}\0{entry.Size}\0{(entry.Kind == EntryKind.Symlink ? entry.Target : entry.Digest.ToString())}";
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(text), hash);
        var ino = BitConverter.ToUInt64(hash) & 0x7FFF_FFFF_FFFF_FFFFUL;
        return ino < 2 ? ino + 2 : ino;
    }

    public static string ChildPath(Node parent, string name) => parent.Path.Length == 0 ? name : parent.Path + "/" + name;

    /// <summary>Resolves a name; null when absent. The node's lookup count goes up by one: the kernel will FORGET it.</summary>
    public async ValueTask<Node?> LookupAsync(Node parent, string name, CancellationToken ct)
    {
        if (parent.Entry.Kind != EntryKind.Directory) return null;
        var contents = parent.LoadedContents ?? await ContentsAsync(parent, ct).ConfigureAwait(false);
        if (!contents.ByName.TryGetValue(name, out var entry)) return null;
        var node = Remember(parent, ChildPath(parent, name), entry);
        if (entry.Kind == EntryKind.Directory && node.LoadedContents is null)
        {
            // Loaded now so that its nlink (2 + subdirectories) is right in the reply.
            try
            {
                await ContentsAsync(node, ct).ConfigureAwait(false);
            }
            catch
            {
                Forget(node.Ino, 1);
                throw;
            }
        }

        return node;
    }

    private Node Remember(Node parent, string path, TreeEntry entry)
    {
        var ino = InodeOf(path, entry);
        while (true)
        {
            var node = _nodes.GetOrAdd(ino, static (i, a) => new Node(i, a.Parent.Ino, a.Path, a.Entry, a.View.Manifest), (Parent: parent, Path: path, Entry: entry, View: _view));
            if (!node.SameIdentity(path, entry))
            {
                ino = ino == ulong.MaxValue >> 1 ? 2 : ino + 1; // a 63-bit collision: probe the next number
                continue;
            }

            lock (node)
            {
                if (node.Forgotten) continue; // removed by a concurrent FORGET; add it again
                node.LookupCount++;
                return node;
            }
        }
    }

    public void Forget(ulong ino, ulong count)
    {
        if (ino == FuseConstants.RootId || !_nodes.TryGetValue(ino, out var node)) return;
        lock (node)
        {
            node.LookupCount -= (long)count;
            if (node.LookupCount > 0) return;
            node.Forgotten = true;
            _nodes.TryRemove(new KeyValuePair<ulong, Node>(ino, node));
        }
    }

    public Task<DirContents> ContentsAsync(Node dir, CancellationToken ct) =>
        SharedLoad(ref dir.Contents, static (fs, node) => fs.LoadContentsAsync(node), dir, ct);

    /// <summary>
    /// The one load of a node's <paramref name="slot"/> that every caller shares; started again only after it failed
    /// or was cancelled. Each caller waits for it under its own timeout and cancellation.
    /// </summary>
    private Task<T> SharedLoad<T>(ref Task<T>? slot, Func<CairnFileSystem, Node, Task<T>> load, Node node, CancellationToken ct)
    {
        var task = slot;
        if (task is { IsFaulted: false, IsCanceled: false }) return WithTimeout(task, node, node.Entry.Digest, ct);
        var started = load(this, node);
        var won = Interlocked.CompareExchange(ref slot, started, task);
        return WithTimeout(won == task ? started : won!, node, node.Entry.Digest, ct);
    }

    private async Task<DirContents> LoadContentsAsync(Node dir)
    {
        await Task.Yield();
        var data = await FetchAsync(dir.Entry.Digest).ConfigureAwait(false);
        return new DirContents(TreeCodec.Decode(data, dir.Entry.Digest));
    }

    private Task<ChunkMap> ChunkMapAsync(Node file, CancellationToken ct) =>
        SharedLoad(ref file.Chunks, static (fs, node) => fs.LoadChunkMapAsync(node), file, ct);

    private async Task<ChunkMap> LoadChunkMapAsync(Node file)
    {
        await Task.Yield();
        var digest = file.Entry.Digest;
        var chunks = ChunkListCodec.Decode(await FetchAsync(digest).ConfigureAwait(false), digest);
        var starts = new long[chunks.Count];
        long total = 0;
        for (var i = 0; i < chunks.Count; i++)
        {
            starts[i] = total;
            total += chunks[i].Length;
        }

        if (total != file.Entry.Size)
        {
            throw new CairnException(ErrorCode.ObjectSizeMismatch, $"chunks of {digest} add up to {total} bytes, the tree says {file.Entry.Size}", "run 'cairn verify --full'");
        }

        return new ChunkMap(chunks, starts);
    }

    /// <summary>Copies up to <paramref name="destination"/>.Length bytes of a file from <paramref name="offset"/>; returns the count.</summary>
    public async ValueTask<int> ReadAsync(Node file, long offset, Memory<byte> destination, CancellationToken ct)
    {
        var size = file.Entry.Size;
        if (offset >= size || destination.Length == 0) return 0;
        var count = (int)Math.Min(destination.Length, size - offset);
        if (file.Entry.Kind == EntryKind.File)
        {
            var data = await ObjectAsync(file, file.Entry.Digest, size, ct).ConfigureAwait(false);
            data.AsMemory((int)offset, count).CopyTo(destination);
            return count;
        }

        var map = await ChunkMapAsync(file, ct).ConfigureAwait(false);
        var first = map.IndexOf(offset);
        var last = map.IndexOf(offset + count - 1);
        // Fetch every chunk the range covers at once; only those.
        var fetches = new Task<byte[]>[last - first + 1];
        for (var i = first; i <= last; i++)
        {
            fetches[i - first] = ObjectAsync(file, map.Chunks[i].Digest, map.Chunks[i].Length, ct).AsTask();
        }

        // Reading on from the previous chunk (or from the start): fetch the next few chunks of this file ahead, so a
        // cold sequential read keeps several range requests in flight instead of one round trip per chunk.
        if (first == 0 || _cache.TryGet(map.Chunks[first - 1].Digest, out _))
        {
            for (var i = last + 1; i < Math.Min(map.Chunks.Count, last + 1 + ReadAheadChunks); i++) _ = FetchAsync(map.Chunks[i].Digest);
        }

        var written = 0;
        for (var i = first; i <= last; i++)
        {
            var data = await fetches[i - first].ConfigureAwait(false);
            var from = (int)(offset + written - map.Starts[i]);
            var n = Math.Min(data.Length - from, count - written);
            data.AsMemory(from, n).CopyTo(destination[written..]);
            written += n;
        }

        return written;
    }

    /// <summary>Chunks fetched ahead of a sequential reader (each is verified like any other object).</summary>
    private const int ReadAheadChunks = 4;

    private async ValueTask<byte[]> ObjectAsync(Node file, Digest digest, long expectedLength, CancellationToken ct)
    {
        if (_cache.TryGet(digest, out var cached)) return cached;
        var data = await WithTimeout(FetchAsync(digest), file, digest, ct).ConfigureAwait(false);
        if (data.Length != expectedLength)
        {
            throw new CairnException(ErrorCode.ObjectSizeMismatch, $"object {digest} holds {data.Length} bytes, {expectedLength} expected", "run 'cairn verify --full'");
        }

        return data;
    }

    /// <summary>One fetch per object however many readers want it; verified by the store; kept in the memory cache.</summary>
    private Task<byte[]> FetchAsync(Digest digest)
    {
        if (_cache.TryGet(digest, out var cached)) return Task.FromResult(cached);
        while (true)
        {
            if (_inflight.TryGetValue(digest, out var running)) return running;
            var tcs = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_inflight.TryAdd(digest, tcs.Task)) continue;
            _ = RunFetchAsync(digest, tcs);
            return tcs.Task;
        }
    }

    private async Task RunFetchAsync(Digest digest, TaskCompletionSource<byte[]> tcs)
    {
        try
        {
            var data = await _repository.Objects.GetAsync(digest, _lifetime.Token).ConfigureAwait(false);
            _cache.Add(digest, data);
            tcs.TrySetResult(data);
        }
        catch (Exception e)
        {
            tcs.TrySetException(e);
        }
        finally
        {
            _inflight.TryRemove(new KeyValuePair<Digest, Task<byte[]>>(digest, tcs.Task));
        }
    }

    /// <summary>Waits for a shared fetch no longer than the read time-out; a stuck fetch is dropped so the next read tries again.</summary>
    private async Task<T> WithTimeout<T>(Task<T> task, Node node, Digest digest, CancellationToken ct)
    {
        if (task.IsCompletedSuccessfully) return task.Result;
        try
        {
            return await task.WaitAsync(_options.ReadTimeout, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            if (_inflight.TryGetValue(digest, out var stuck) && !stuck.IsCompleted) _inflight.TryRemove(new KeyValuePair<Digest, Task<byte[]>>(digest, stuck));
            if (ReferenceEquals(node.Contents, task)) node.Contents = null;
            if (ReferenceEquals(node.Chunks, task)) node.Chunks = null;
            throw new MountReadException(node, digest, $"timed out after {_options.ReadTimeout.TotalSeconds:0.#} s fetching object {digest}");
        }
        catch (Exception e) when (e is CairnException or IOException or HttpRequestException or InvalidDataException)
        {
            throw new MountReadException(node, digest, e.Message, e);
        }
    }

    public void Dispose()
    {
        _lifetime.Cancel();
        _lifetime.Dispose();
    }
}

/// <summary>A read on the mount that failed for a reason the log must name (object, path, revision); the caller sees EIO.</summary>
internal sealed class MountReadException : Exception
{
    public MountReadException(Node node, Digest digest, string message, Exception? inner = null)
        : base($"cannot read /{node.Path} (revision {node.Revision.Revision}): {message}", inner)
    {
        Digest = digest;
    }

    public MountReadException() { }

    public MountReadException(string message) : base(message) { }

    public MountReadException(string message, Exception inner) : base(message, inner) { }

    public Digest Digest { get; }
}
