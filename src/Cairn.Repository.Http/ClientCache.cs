using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Cairn.Core;
using Cairn.Repository.IO;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Repository.Http;

/// <summary>
/// A local cache of verified content shared by every process of a host: objects (decompressed, named by digest)
/// and pack indexes. Entries appear atomically (written to tmp/, then hard-linked into place, so a process killed
/// mid-write leaves only a temporary file), are only ever added complete and verified, and are evicted least
/// recently used first when the size limit is passed. The running total lives in the file <c>usage</c>, updated
/// under an flock(2) on <c>lock</c>; eviction rescans the directory and corrects it. A failure to write (a full
/// disk) evicts and, failing that, skips caching: the cache never fails a read.
/// </summary>
public sealed class ClientCache : IDisposable
{
    /// <summary>Evict down to this share of the limit, so eviction runs rarely.</summary>
    private const double LowWatermark = 0.8;

    private static readonly TimeSpan StaleTemp = TimeSpan.FromHours(1);

    private readonly string _root;
    private readonly string _tmp;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly SafeFileHandle _lockFile;
    private readonly SafeFileHandle _usageFile;
    private readonly Lock _inProcess = new();
    private const int FillLockFiles = 256;
    private const string FillLockDirectory = "fill-locks";
    private readonly Dictionary<string, SafeFileHandle> _fillLockFiles = new(StringComparer.Ordinal);
    private readonly HashSet<(string File, long Offset)> _fillLocksHeldHere = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _madeDirectories = new(StringComparer.Ordinal);

    public ClientCache(string directory, long maxBytes, TimeProvider time, ILogger? logger = null)
    {
        _root = Path.GetFullPath(directory);
        _tmp = Path.Combine(_root, "tmp");
        MaxBytes = maxBytes;
        _time = time;
        _log = logger ?? NullLogger.Instance;
        Directory.CreateDirectory(_tmp);
        Directory.CreateDirectory(Path.Combine(_root, "objects"));
        Directory.CreateDirectory(Path.Combine(_root, "indexes"));
        Directory.CreateDirectory(Path.Combine(_root, FillLockDirectory));
        // open(2) directly: File.OpenHandle would hold a shared flock on it for .NET's share modes, which made a
        // second process's open fail while the first held the lock, and blocks the first's exclusive lock for as
        // long as the second keeps the file open (a deadlock once a process waits on an entry lock meanwhile).
        _lockFile = Native.OpenLockFile(Path.Combine(_root, "lock"));
        _usageFile = File.OpenHandle(Path.Combine(_root, "usage"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
        if (RandomAccess.GetLength(_usageFile) < 8)
        {
            WithLock(() => WriteUsage(Scan().Sum(e => e.Length)));
        }

        RemoveOrphanTemporaries();
    }

    /// <summary>
    /// Deletes the temporaries of writers that died (SIGKILL, OOM, power loss) mid-write: each is named after its
    /// writer's process id, so one whose process is gone is no one's. They were never visible as entries.
    /// </summary>
    private void RemoveOrphanTemporaries()
    {
        try
        {
            foreach (var temp in new DirectoryInfo(_tmp).EnumerateFiles())
            {
                var parts = temp.Name.Split('.');
                if (parts.Length >= 3 && int.TryParse(parts[^2], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid)
                    && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}"))
                {
                    _log.LogInformation("removing {Temp}, left by process {Pid} that died mid-write", temp.Name, pid);
                    DurableFile.TryDelete(temp.FullName);
                }
            }
        }
        catch (IOException)
        {
            // Best effort: eviction removes old temporaries too.
        }
    }

    public string Root => _root;

    public long MaxBytes { get; }

    public static string ObjectPath(string hex) => Path.Combine("objects", hex[..2], hex);

    public static string IndexPath(string pack) => Path.Combine("indexes", pack + ".idx");

    /// <summary>Bytes the cache holds according to its shared counter.</summary>
    public long Usage => WithLock(ReadUsage);

    /// <summary>Returns the entry, marking it recently used, or null. The caller verifies it again (the disk may have changed it).</summary>
    public byte[]? TryRead(string relative)
    {
        var path = Path.Combine(_root, relative);
        try
        {
            var bytes = File.ReadAllBytes(path);
            try
            {
                File.SetLastWriteTimeUtc(path, _time.GetUtcNow().UtcDateTime);
            }
            catch (IOException)
            {
                // Evicted meanwhile, or read-only: the content read is still good.
            }
            catch (UnauthorizedAccessException)
            {
            }

            return bytes;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        catch (IOException e)
        {
            _log.LogWarning("cache entry {Path} unreadable ({Message}); fetching it again", path, e.Message);
            return null;
        }
    }

    /// <summary>Removes an entry that failed verification.</summary>
    public void Remove(string relative)
    {
        var path = Path.Combine(_root, relative);
        try
        {
            var length = new FileInfo(path).Length;
            File.Delete(path);
            WithLock(() => WriteUsage(Math.Max(0, ReadUsage() - length)));
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Adds verified content. Best effort: returns false (and logs) when it could not be cached.</summary>
    public bool Store(string relative, ReadOnlySpan<byte> content)
    {
        var added = Write(relative, content);
        if (added > 0) Account(added);
        return added >= 0;
    }

    /// <summary>
    /// Adds several verified entries with one update of the shared usage counter (one flock instead of one per
    /// entry). Best effort like <see cref="Store"/>; returns how many are in the cache afterwards.
    /// </summary>
    public int StoreAll(IEnumerable<(string Relative, byte[] Content)> entries)
    {
        long added = 0;
        var stored = 0;
        foreach (var (relative, content) in entries)
        {
            var n = Write(relative, content);
            if (n < 0) continue;
            stored++;
            added += n;
        }

        if (added > 0) Account(added);
        return stored;
    }

    /// <summary>Writes one entry; returns the bytes it added (0 when it was already there), or -1 when it could not be written.</summary>
    private long Write(string relative, ReadOnlySpan<byte> content)
    {
        if (content.Length > MaxBytes * (1 - LowWatermark)) return -1;
        for (var attempt = 0; attempt < 2; attempt++)
        {
            try
            {
                return StoreOnce(relative, content);
            }
            catch (IOException e)
            {
                // Most likely a full file system: make room and try once more, then give up quietly.
                _log.LogWarning("cannot write cache entry {Entry} ({Message}); evicting", relative, e.Message);
                try
                {
                    WithLock(() => Evict(force: true));
                }
                catch (IOException)
                {
                }
            }
            catch (UnauthorizedAccessException e)
            {
                _log.LogWarning("cannot write cache entry {Entry} ({Message})", relative, e.Message);
                return -1;
            }
        }

        return -1;
    }

    private void Account(long added) => WithLock(() =>
    {
        var usage = ReadUsage() + added;
        WriteUsage(usage);
        if (usage > MaxBytes) Evict(force: false);
    });

    /// <summary>True when the entry is present (a hint: it may be evicted a moment later, and is verified when read).</summary>
    public bool Contains(string relative) => File.Exists(Path.Combine(_root, relative));

    /// <summary>
    /// Takes the fill lock of one entry if no other process or thread holds it: the holder fetches and stores the
    /// entry, the others wait (<see cref="LockEntryAsync"/>) and then read it from the cache, so processes sharing
    /// the cache fetch each object once. Null when it is held elsewhere, or when locks cannot be created (then
    /// the caller fetches without one: costlier, never wrong); <paramref name="heldElsewhere"/> tells which.
    /// </summary>
    public EntryLock? TryLockEntry(string relative, out bool heldElsewhere) => TakeEntryLock(relative, out heldElsewhere);

    /// <summary>Waits for the fill lock of one entry (see <see cref="TryLockEntry"/>); null when locks cannot be created.</summary>
    public async ValueTask<EntryLock?> LockEntryAsync(string relative, CancellationToken ct)
    {
        var pause = TimeSpan.FromMilliseconds(2);
        while (true)
        {
            var entryLock = TakeEntryLock(relative, out var heldElsewhere);
            if (entryLock is not null || !heldElsewhere) return entryLock;
            // flock(2) has no asynchronous wait; poll, backing off to 50 ms. A holder that is killed loses its
            // lock with its last descriptor, so a waiter never waits on a dead process.
            await Task.Delay(pause, _time, ct).ConfigureAwait(false);
            pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, TimeSpan.FromMilliseconds(50).Ticks));
        }
    }

    /// <summary>
    /// The fill lock of an entry: one byte of one of <see cref="FillLockFiles"/> shared files under fill-locks/,
    /// chosen by a hash of the entry's path, so filling an entry creates and removes no file. Two entries may share
    /// a byte; then one waits for the other, which costs time, never correctness.
    /// </summary>
    public static (string File, long Offset) FillLock(string relative)
    {
        var hash = 14695981039346656037UL; // FNV-1a
        foreach (var c in relative)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return ($"{FillLockDirectory}/{hash % FillLockFiles:x2}", (long)((hash >> 8) & 0x7FFF_FFFF));
    }

    private EntryLock? TakeEntryLock(string relative, out bool heldElsewhere)
    {
        heldElsewhere = false;
        var (file, offset) = FillLock(relative);
        try
        {
            lock (_fillLockFiles)
            {
                if (!_fillLockFiles.TryGetValue(file, out var handle))
                {
                    handle = Native.OpenLockFile(Path.Combine(_root, file));
                    _fillLockFiles[file] = handle;
                }

                // A byte lock does not exclude another thread of this process (same open file): they are excluded here.
                if (_fillLocksHeldHere.Contains((file, offset)) || !Native.TryLockByte(handle, offset))
                {
                    heldElsewhere = true;
                    return null;
                }

                _fillLocksHeldHere.Add((file, offset));
                return new EntryLock(this, file, offset);
            }
        }
        catch (CairnException e)
        {
            _log.LogDebug("no fill lock for {Entry} ({Message})", relative, e.Message);
            return null;
        }
    }

    internal void ReleaseFillLock(string file, long offset)
    {
        lock (_fillLockFiles)
        {
            if (!_fillLocksHeldHere.Remove((file, offset))) return;
            try
            {
                Native.UnlockByte(_fillLockFiles[file], offset);
            }
            catch (CairnException e)
            {
                // Closing the descriptor (Dispose, or the process ending) releases it anyway.
                _log.LogDebug("releasing fill lock {File}@{Offset}: {Message}", file, offset, e.Message);
            }
        }
    }

    private long StoreOnce(string relative, ReadOnlySpan<byte> content)
    {
        var path = Path.Combine(_root, relative);
        if (File.Exists(path)) return 0;
        var directory = Path.GetDirectoryName(path)!;
        // Thousands of entries share a few hundred directories: make each once per process, not once per entry.
        if (_madeDirectories.TryAdd(directory, 0)) Directory.CreateDirectory(directory);
        var temp = Path.Combine(_tmp, $"{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}");
        try
        {
            using (var handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                RandomAccess.Write(handle, content, 0);
            }

            // Recency is the modification time, always from the injected clock (reads touch it the same way).
            File.SetLastWriteTimeUtc(temp, _time.GetUtcNow().UtcDateTime);

            // link(2) publishes the complete file atomically and fails if another process got there first.
            Native.LinkResult linked;
            try
            {
                linked = Native.HardLink(temp, path);
            }
            catch (CairnException) when (!Directory.Exists(directory))
            {
                // Someone removed the directory since this process made it (eviction never does).
                Directory.CreateDirectory(directory);
                linked = Native.HardLink(temp, path);
            }

            switch (linked)
            {
                case Native.LinkResult.Exists:
                    return 0;
                case Native.LinkResult.CrossDevice:
                    File.Move(temp, path, overwrite: true);
                    temp = null;
                    break;
            }
        }
        finally
        {
            if (temp is not null) DurableFile.TryDelete(temp);
        }

        return content.Length;
    }

    private T WithLock<T>(Func<T> action)
    {
        lock (_inProcess)
        {
            Flock.Lock(_lockFile);
            try
            {
                return action();
            }
            finally
            {
                Flock.Unlock(_lockFile);
            }
        }
    }

    private void WithLock(Action action) => WithLock(() =>
    {
        action();
        return 0;
    });

    private long ReadUsage()
    {
        Span<byte> b = stackalloc byte[8];
        return RandomAccess.Read(_usageFile, b, 0) == 8 ? BinaryPrimitives.ReadInt64LittleEndian(b) : 0;
    }

    private void WriteUsage(long value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, value);
        RandomAccess.Write(_usageFile, b, 0);
    }

    private List<(string Path, long Length, DateTime Used)> Scan()
    {
        var entries = new List<(string, long, DateTime)>();
        foreach (var sub in new[] { "objects", "indexes" })
        {
            var dir = new DirectoryInfo(Path.Combine(_root, sub));
            if (!dir.Exists) continue;
            foreach (var f in dir.EnumerateFiles("*", SearchOption.AllDirectories))
            {
                try
                {
                    entries.Add((f.FullName, f.Length, f.LastWriteTimeUtc));
                }
                catch (FileNotFoundException)
                {
                    // Evicted by another process while we looked.
                }
            }
        }

        return entries;
    }

    /// <summary>Deletes least recently used entries down to the low watermark (or to half when the disk is full). Caller holds the lock.</summary>
    private void Evict(bool force)
    {
        var entries = Scan();
        var total = entries.Sum(e => e.Length);
        var target = force ? Math.Min((long)(MaxBytes * LowWatermark), total / 2) : (long)(MaxBytes * LowWatermark);
        var removed = 0;
        foreach (var (path, length, _) in entries.OrderBy(e => e.Used))
        {
            if (total <= target) break;
            try
            {
                File.Delete(path);
                total -= length;
                removed++;
            }
            catch (IOException)
            {
            }
        }

        // Temporaries of processes killed mid-write.
        var now = _time.GetUtcNow().UtcDateTime;
        foreach (var temp in new DirectoryInfo(_tmp).EnumerateFiles())
        {
            if (now - temp.LastWriteTimeUtc > StaleTemp) DurableFile.TryDelete(temp.FullName);
        }

        WriteUsage(total);
        _log.LogInformation("cache {Root}: evicted {Count} entries, {Total} bytes left", _root, removed, total);
    }

    public void Dispose()
    {
        _lockFile.Dispose();
        _usageFile.Dispose();
        lock (_fillLockFiles)
        {
            foreach (var handle in _fillLockFiles.Values) handle.Dispose();
            _fillLockFiles.Clear();
            _fillLocksHeldHere.Clear();
        }
    }
}

/// <summary>
/// The fill lock of one cache entry: an flock(2) on locks/NAME. Disposing unlinks the file, then unlocks it (a
/// waiter that opened the unlinked file notices and opens the path again), so lock files do not pile up; one left
/// by a killed holder is taken over by the next filler, the kernel having released the lock.
/// </summary>
public sealed class EntryLock : IDisposable
{
    private readonly ClientCache _cache;
    private readonly string _file;
    private readonly long _offset;
    private bool _released;

    internal EntryLock(ClientCache cache, string file, long offset) => (_cache, _file, _offset) = (cache, file, offset);

    public void Dispose()
    {
        if (_released) return;
        _released = true;
        _cache.ReleaseFillLock(_file, _offset);
    }
}

/// <summary>flock(2) with an explicit unlock, held for short critical sections shared between processes.</summary>
internal static partial class Flock
{
    private const int LockEx = 2;
    private const int LockUn = 8;
    private const int Eintr = 4;

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int SysFlock(int fd, int operation);

    public static void Lock(SafeFileHandle handle) => Call(handle, LockEx);

    public static void Unlock(SafeFileHandle handle) => Call(handle, LockUn);

    private static void Call(SafeFileHandle handle, int op)
    {
        while (SysFlock((int)handle.DangerousGetHandle(), op) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Eintr) throw new IOException($"flock failed: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
    }
}
