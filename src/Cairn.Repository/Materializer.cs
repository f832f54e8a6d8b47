using Cairn.Core;
using Cairn.Repository.IO;

namespace Cairn.Repository;

public sealed record MaterializeOptions
{
    /// <summary>Unpacked-object cache; files are hardlinked from it when on the same file system. Null: write directly.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Write independent, writable copies instead of read-only hardlinks into the cache.</summary>
    public bool Copy { get; init; }
}

public sealed record MaterializeResult(long Files, long Bytes, long Linked, long Written);

/// <summary>
/// Lays products out at DEST/&lt;platform&gt;/&lt;name&gt;/&lt;version&gt;. Files come from a cache of unpacked
/// objects, read-only so that a build that writes through a hardlink fails instead of corrupting the cache.
/// Every object is verified against its digest when it is unpacked; cached files are checked by size on reuse.
/// </summary>
public sealed class Materializer(TreeWalker trees)
{
    private long _files, _bytes, _linked, _written;
    private volatile bool _crossDevice;

    public async Task<MaterializeResult> MaterializeAsync(ProductRecord product, string destinationRoot, MaterializeOptions options, IProgress<long>? progress, CancellationToken ct)
    {
        var target = Path.Combine(Path.GetFullPath(destinationRoot), product.Platform, product.Name, product.Version);
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
        {
            throw new CairnException(ErrorCode.DestinationNotEmpty, $"'{target}' already exists and is not empty",
                "materialize into a fresh destination, or remove the old copy first");
        }

        Directory.CreateDirectory(target);
        try
        {
            await LayOutAsync(product, target, options, progress, ct).ConfigureAwait(false);
        }
        catch
        {
            // Nothing half-laid-out stays behind under the product's path.
            Directory.Delete(target, recursive: true);
            throw;
        }

        return new MaterializeResult(_files, _bytes, _linked, _written);
    }

    private async Task LayOutAsync(ProductRecord product, string target, MaterializeOptions options, IProgress<long>? progress, CancellationToken ct)
    {
        var files = new List<(string Path, TreeEntry Entry)>();
        await foreach (var (relative, entry) in trees.WalkAsync(product.Root, ct).ConfigureAwait(false))
        {
            var path = Path.Combine(target, relative);
            switch (entry.Kind)
            {
                case EntryKind.Directory:
                    Directory.CreateDirectory(path);
                    break;
                case EntryKind.Symlink:
                    File.CreateSymbolicLink(path, entry.Target!);
                    break;
                default:
                    files.Add((path, entry));
                    break;
            }
        }

        // A remote store fetches what the tree needs in batches (neighbouring objects in one request) while the
        // files are written; each file still waits only for its own objects.
        var prefetch = options.CacheDirectory is null ? await trees.PrefetchContentAsync(files.Select(f => f.Entry).ToList(), ct).ConfigureAwait(false) : Task.CompletedTask;
        await Parallel.ForEachAsync(files, new ParallelOptions { CancellationToken = ct, MaxDegreeOfParallelism = Environment.ProcessorCount },
            async (item, token) =>
            {
                await PlaceFileAsync(item.Path, item.Entry, options, token).ConfigureAwait(false);
                Interlocked.Increment(ref _files);
                var bytes = Interlocked.Add(ref _bytes, item.Entry.Size);
                progress?.Report(bytes);
            }).ConfigureAwait(false);
        await prefetch.ConfigureAwait(false);
    }

    private async ValueTask PlaceFileAsync(string path, TreeEntry entry, MaterializeOptions options, CancellationToken ct)
    {
        if (options.CacheDirectory is null || _crossDevice)
        {
            await WriteFileAsync(path, entry, readOnly: false, ct).ConfigureAwait(false);
            Interlocked.Increment(ref _written);
            return;
        }

        var cached = await EnsureCachedAsync(options.CacheDirectory, entry, ct).ConfigureAwait(false);
        // A cache entry can vanish between the check and the link (another process cleaning the cache, or a
        // torn entry being replaced); it is then unpacked again, a bounded number of times.
        for (var attempt = 1; !options.Copy; attempt++)
        {
            switch (Native.HardLink(cached, path))
            {
                case Native.LinkResult.Linked:
                    Interlocked.Increment(ref _linked);
                    return;
                case Native.LinkResult.CrossDevice:
                    // Different file system: stop paying for the cache and write directly from now on.
                    _crossDevice = true;
                    break;
                case Native.LinkResult.Exists:
                    throw new CairnException(ErrorCode.DestinationNotEmpty, $"'{path}' already exists", "materialize into a fresh destination");
                case Native.LinkResult.Missing when attempt < 5:
                    cached = await EnsureCachedAsync(options.CacheDirectory, entry, ct).ConfigureAwait(false);
                    continue;
                case Native.LinkResult.Missing:
                    throw new CairnException(ErrorCode.IoError, $"the cache entry '{cached}' for '{path}' keeps disappearing",
                        "check what else deletes files under the cache directory, or materialize with --copy");
            }

            break;
        }

        CopyFile(cached, path, entry.Executable);
        Interlocked.Increment(ref _written);
    }

    private static void CopyFile(string source, string destination, bool executable)
    {
        using (var src = File.OpenHandle(source, FileMode.Open, FileAccess.Read))
        using (var dst = File.OpenHandle(destination, FileMode.CreateNew, FileAccess.Write))
        {
            if (!Native.TryReflink(src, dst))
            {
                var buffer = new byte[1 << 20];
                long offset = 0;
                int n;
                while ((n = RandomAccess.Read(src, buffer, offset)) > 0)
                {
                    RandomAccess.Write(dst, buffer.AsSpan(0, n), offset);
                    offset += n;
                }
            }
        }

        File.SetUnixFileMode(destination, Mode(executable, readOnly: false));
    }

    /// <summary>Returns the cache path of a file's content, unpacking and verifying it on a miss.</summary>
    public async ValueTask<string> EnsureCachedAsync(string cacheDirectory, TreeEntry entry, CancellationToken ct)
    {
        var hex = entry.Digest.ToString();
        var path = Path.Combine(cacheDirectory, "files", hex[..2], hex + (entry.Executable ? ".x" : ".r"));
        var info = new FileInfo(path);
        // A torn entry (crash before writeback) is rewritten below and renamed over the old one: never deleted
        // first, since another thread may be linking it at this moment.
        if (info.Exists && info.Length == entry.Size) return path;

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = Path.Combine(cacheDirectory, "files", $".{hex}.{Guid.NewGuid():N}.tmp");
        try
        {
            await WriteFileAsync(temp, entry, readOnly: true, ct).ConfigureAwait(false);
            // Like the client cache: link(2) publishes the whole entry and never replaces one another thread may be
            // linking (EEXIST: it won, same content). Only a torn entry is replaced, by an atomic rename over it.
            if (info.Exists || Native.HardLink(temp, path) == Native.LinkResult.CrossDevice) File.Move(temp, path, overwrite: true);
        }
        finally
        {
            DurableFile.TryDelete(temp);
        }

        return path;
    }

    private async ValueTask WriteFileAsync(string path, TreeEntry entry, bool readOnly, CancellationToken ct)
    {
        await using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0))
        {
            stream.SetLength(entry.Size);
            stream.Position = 0;
            await trees.CopyContentAsync(entry, stream, ct).ConfigureAwait(false);
        }

        File.SetUnixFileMode(path, Mode(entry.Executable, readOnly));
    }

    private static UnixFileMode Mode(bool executable, bool readOnly)
    {
        var mode = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        if (!readOnly) mode |= UnixFileMode.UserWrite;
        if (executable) mode |= UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        return mode;
    }
}
