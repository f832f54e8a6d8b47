using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Cairn.Core;
using Cairn.Repository.IO;
using Microsoft.Win32.SafeHandles;
using Location = Cairn.Repository.PackLocation;

namespace Cairn.Repository.FileSystem;

/// <summary>
/// Objects packed into append-only pack files with a sorted index beside each (docs/format/repository.md, "Packs").
/// One file creation per pack instead of per object keeps publishing many small files cheap, while a pack stays a
/// plain immutable file a static web server can serve with range requests.
/// </summary>
public sealed class PackObjectStore : IObjectStore
{
    public const long TargetPackSize = 64L << 20;

    private readonly string _packDir;
    private readonly string _tmpDir;
    private readonly ConcurrentDictionary<Digest, Location> _index = new();
    private readonly ConcurrentDictionary<string, SafeFileHandle> _readers = new(StringComparer.Ordinal);
    private readonly Lock _writeLock = new();
    private PackWriter? _writer;
    private readonly HashSet<string> _loadedPacks = new(StringComparer.Ordinal);

    public PackObjectStore(string packDirectory, string tempDirectory)
    {
        _packDir = packDirectory;
        _tmpDir = tempDirectory;
        Directory.CreateDirectory(_packDir);
        Directory.CreateDirectory(_tmpDir);
        LoadIndexes();
    }

    /// <summary>Loads the indexes of packs not seen yet; other processes add packs while this one runs.</summary>
    private void LoadIndexes()
    {
        foreach (var idx in Directory.EnumerateFiles(_packDir, "*.idx"))
        {
            var pack = Path.GetFileNameWithoutExtension(idx);
            // An index whose pack is gone names objects that are not there: leave them out, so verify reports them
            // missing and the next publish of the same content stores them again.
            if (!File.Exists(Path.Combine(_packDir, pack + ".pack")) || _loadedPacks.Contains(pack)) continue;
            List<(Digest, Location)> entries;
            try
            {
                entries = ReadIndex(idx, pack);
            }
            catch (FileNotFoundException)
            {
                // A gc in another process removed the pack between the listing and the read (this runs before
                // the repository lock is taken when a command opens the repository): it is gone, like above.
                continue;
            }

            _loadedPacks.Add(pack);
            foreach (var (digest, location) in entries)
            {
                _index.TryAdd(digest, location);
            }
        }
    }

    /// <summary>Called after taking a repository lock: loads packs other processes added and forgets packs a gc removed.</summary>
    public ValueTask RefreshAsync(CancellationToken ct)
    {
        lock (_writeLock)
        {
            lock (_loadedPacks)
            {
                var gone = _loadedPacks.Where(p => !File.Exists(Path.Combine(_packDir, p + ".idx")) || !File.Exists(Path.Combine(_packDir, p + ".pack")))
                    .ToHashSet(StringComparer.Ordinal);
                if (gone.Count > 0)
                {
                    foreach (var kv in _index.Where(kv => gone.Contains(kv.Value.Pack)).ToList()) _index.TryRemove(kv.Key, out _);
                    foreach (var pack in gone)
                    {
                        if (_readers.TryRemove(pack, out var h)) h.Dispose();
                    }

                    // gc moved the live objects of those packs into new ones; re-read every index so none is missed.
                    _loadedPacks.Clear();
                }

                LoadIndexes();
            }
        }

        return ValueTask.CompletedTask;
    }

    private static List<(Digest Digest, Location Location)> ReadIndex(string path, string pack) =>
        PackIndexCodec.Parse(File.ReadAllBytes(path), pack, $"'{path}'", "run 'cairn verify'; delete the .idx and its .pack if the pack is unrecoverable");

    public int Count => _index.Count;

    public ValueTask<bool> ContainsAsync(Digest digest, CancellationToken ct) => ValueTask.FromResult(_index.ContainsKey(digest));

    public ValueTask<byte[]> GetAsync(Digest digest, CancellationToken ct)
    {
        if (!_index.TryGetValue(digest, out var loc))
        {
            lock (_loadedPacks)
            {
                LoadIndexes();
            }

            if (!_index.TryGetValue(digest, out loc))
            {
                throw ObjectCodec.Missing(digest, $"repository packs '{_packDir}'");
            }
        }

        return ValueTask.FromResult(Read(digest, loc));
    }

    private string PackPath(string pack) =>
        pack.StartsWith(PackWriter.PendingPrefix, StringComparison.Ordinal) ? Path.Combine(_tmpDir, pack + ".pack") : Path.Combine(_packDir, pack + ".pack");

    private byte[] Read(Digest digest, Location loc)
    {
        var packPath = PackPath(loc.Pack);
        SafeFileHandle handle;
        try
        {
            handle = _readers.GetOrAdd(loc.Pack, _ => File.OpenHandle(packPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete));
        }
        catch (FileNotFoundException)
        {
            // An index whose pack is gone: the object is missing, not corrupt.
            throw ObjectCodec.Missing(digest, $"pack '{packPath}' (the pack file is gone)");
        }

        var stored = new byte[loc.StoredSize];
        var n = RandomAccess.Read(handle, stored, loc.Offset);
        if (n != stored.Length)
        {
            throw ObjectCodec.Corrupt(digest, $"pack '{packPath}'", $"truncated: read {n} of {stored.Length} bytes at offset {loc.Offset}");
        }

        return ObjectCodec.Decode(loc.Codec, stored, loc.Size, digest, $"pack '{packPath}'");
    }

    public ValueTask PutAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct)
    {
        if (_index.ContainsKey(digest))
        {
            return ValueTask.CompletedTask;
        }

        // Compress outside the lock so that callers on several threads use several cores; into a pooled buffer,
        // because a fresh array per chunk (up to 2 MiB, on the large-object heap) kept the GC busy.
        var buffer = ArrayPool<byte>.Shared.Rent(ObjectCodec.MaxStoredLength(content.Length));
        try
        {
            var (codec, length) = ObjectCodec.Compress(content.Span, buffer);
            var stored = codec == Codec.Raw ? content.Span : buffer.AsSpan(0, length);
            lock (_writeLock)
            {
                if (_index.ContainsKey(digest))
                {
                    return ValueTask.CompletedTask;
                }

                _writer ??= new PackWriter(_tmpDir);
                var offset = _writer.Append(digest, codec, stored, content.Length);
                _index[digest] = new Location(_writer.PendingName, offset, stored.Length, content.Length, codec);
                if (_writer.Length >= TargetPackSize)
                {
                    FinishPackLocked();
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask FlushAsync(CancellationToken ct)
    {
        lock (_writeLock)
        {
            FinishPackLocked();
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask AbortAsync(CancellationToken ct)
    {
        lock (_writeLock)
        {
            if (_writer is { } w)
            {
                foreach (var key in _index.Where(kv => kv.Value.Pack == w.PendingName).Select(kv => kv.Key).ToList())
                {
                    _index.TryRemove(key, out _);
                }

                w.Abort();
                _writer = null;
            }
        }

        return ValueTask.CompletedTask;
    }

    private void FinishPackLocked()
    {
        if (_writer is not { } writer) return;
        _writer = null;
        var pending = writer.PendingName;
        string name;
        try
        {
            name = writer.Finish(_packDir);
        }
        catch
        {
            foreach (var key in _index.Where(kv => kv.Value.Pack == pending).Select(kv => kv.Key).ToList())
            {
                _index.TryRemove(key, out _);
            }

            throw;
        }

        foreach (var kv in _index.Where(kv => kv.Value.Pack == pending).ToList())
        {
            _index[kv.Key] = kv.Value with { Pack = name };
        }

        lock (_loadedPacks)
        {
            _loadedPacks.Add(name);
        }
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

    /// <summary>Reads a pack's raw bytes at the recorded location; used by verify to check a pack without the index cache.</summary>
    public IReadOnlyList<string> PackNames() =>
        Directory.EnumerateFiles(_packDir, "*.idx").Select(Path.GetFileNameWithoutExtension).OfType<string>().Order(StringComparer.Ordinal).ToList();

    public ValueTask<RetainResult> RetainAsync(Func<Digest, bool> isLive, bool dryRun, CancellationToken ct)
    {
        var planner = new RetentionPlanner(isLive, d => _index.TryGetValue(d, out var current) ? current.Pack : null, dryRun);
        lock (_writeLock)
        {
            FinishPackLocked();
            var plans = PackNames().Select(pack => planner.Plan(pack, ReadIndex(Path.Combine(_packDir, pack + RepositoryFiles.IndexExtension), pack))).ToList();
            foreach (var plan in plans)
            {
                ct.ThrowIfCancellationRequested();
                if (plan.Untouched || dryRun) continue;
                if (plan.NeedsRewrite) RewriteLocked(plan.Live);
                foreach (var (digest, _) in plan.Dead)
                {
                    if (_index.TryGetValue(digest, out var current) && current.Pack == plan.Pack) _index.TryRemove(digest, out _);
                }

                // The index goes first: a crash in between leaves an unindexed pack, which is garbage, never a dangling index.
                File.Delete(Path.Combine(_packDir, plan.Pack + RepositoryFiles.IndexExtension));
                if (_readers.TryRemove(plan.Pack, out var h)) h.Dispose();
                File.Delete(Path.Combine(_packDir, plan.Pack + RepositoryFiles.PackExtension));
            }

            if (!dryRun)
            {
                RemoveOrphans();
            }
        }

        return ValueTask.FromResult(planner.Result);
    }

    /// <summary>Copies live objects into a new pack and points the index at it.</summary>
    private void RewriteLocked(IReadOnlyList<(Digest Digest, Location Location)> live)
    {
        var writer = new PackWriter(_tmpDir);
        var moved = new List<(Digest Digest, Location Loc)>(live.Count);
        try
        {
            foreach (var (digest, loc) in live)
            {
                var offset = writer.Append(digest, loc.Codec, ReadStored(loc), loc.Size);
                moved.Add((digest, loc with { Offset = offset }));
            }
        }
        catch
        {
            writer.Abort();
            throw;
        }

        var name = writer.Finish(_packDir);
        foreach (var (digest, loc) in moved)
        {
            _index[digest] = loc with { Pack = name };
        }
    }

    private byte[] ReadStored(Location loc)
    {
        var handle = _readers.GetOrAdd(loc.Pack, p => File.OpenHandle(Path.Combine(_packDir, p + ".pack"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete));
        var stored = new byte[loc.StoredSize];
        RandomAccess.Read(handle, stored, loc.Offset);
        return stored;
    }

    /// <summary>Packs without an index (a crash between the two renames) and stale temporaries. Only safe under the exclusive gc lock.</summary>
    private void RemoveOrphans()
    {
        foreach (var pack in Directory.EnumerateFiles(_packDir, "*.pack"))
        {
            if (!File.Exists(Path.ChangeExtension(pack, ".idx"))) File.Delete(pack);
        }

        foreach (var temp in Directory.EnumerateFiles(_tmpDir))
        {
            DurableFile.TryDelete(temp);
        }
    }

    public ValueTask DisposeAsync()
    {
        lock (_writeLock)
        {
            _writer?.Abort();
            _writer = null;
        }

        foreach (var h in _readers.Values) h.Dispose();
        _readers.Clear();
        return ValueTask.CompletedTask;
    }

    /// <summary>One pack being written in tmp/ through the shared <see cref="PackEncoder"/>; named by the SHA-256 of its bytes when finished.</summary>
    private sealed class PackWriter
    {
        public const string PendingPrefix = "pending-";

        private readonly string _tempPath;
        private readonly SafeFileHandle _handle;
        private readonly PackEncoder _encoder;

        public PackWriter(string tmpDir)
        {
            PendingName = PendingPrefix + Guid.NewGuid().ToString("N");
            _tempPath = Path.Combine(tmpDir, PendingName + RepositoryFiles.PackExtension);
            _handle = File.OpenHandle(_tempPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read);
            _encoder = new PackEncoder(Write);
        }

        public string PendingName { get; }

        public long Length => _encoder.Length;

        private void Write(ReadOnlySpan<byte> bytes, long offset)
        {
            try
            {
                RandomAccess.Write(_handle, bytes, offset);
            }
            catch (IOException e)
            {
                throw Native.WriteError(e, _tempPath);
            }
        }

        public long Append(Digest digest, Codec codec, ReadOnlySpan<byte> stored, int size) => _encoder.Append(digest, codec, stored, size);

        public string Finish(string packDir)
        {
            var (name, idx) = _encoder.Finish();
            var idxTemp = Path.ChangeExtension(_tempPath, RepositoryFiles.IndexExtension);
            try
            {
                // Pack first, index last: an index is only ever visible beside a complete, fsynced pack.
                FaultPoints.Hit("pack-written");
                DurableFile.Commit(_handle, _tempPath, Path.Combine(packDir, name + RepositoryFiles.PackExtension));
                FaultPoints.Hit("pack-renamed");
                DurableFile.WriteAllBytes(Path.Combine(packDir, name + RepositoryFiles.IndexExtension), idx, Path.GetDirectoryName(_tempPath)!);
                return name;
            }
            catch
            {
                _handle.Dispose();
                DurableFile.TryDelete(_tempPath);
                DurableFile.TryDelete(idxTemp);
                throw;
            }
            finally
            {
                _encoder.Dispose();
            }
        }

        public void Abort()
        {
            _handle.Dispose();
            _encoder.Dispose();
            DurableFile.TryDelete(_tempPath);
        }
    }
}
