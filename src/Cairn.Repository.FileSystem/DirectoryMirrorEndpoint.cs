using Cairn.Core;
using Cairn.Repository.IO;
using Cairn.Repository.Replication;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Repository.FileSystem;

/// <summary>A mirror in a local directory: files land by rename and are fsynced with the directories that name them.</summary>
public sealed class DirectoryMirrorEndpoint(string root) : IMirrorEndpoint
{
    private readonly string _root = Path.GetFullPath(root);
    private bool _directoriesMade;

    public string Display => _root + "/";

    private string Tmp => Path.Combine(_root, FileSystemLayout.Tmp);

    public async Task<byte[]?> GetAsync(string key, CancellationToken ct)
    {
        try
        {
            return await File.ReadAllBytesAsync(Path.Combine(_root, key), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    public Task<Stream?> OpenReadAsync(string key, CancellationToken ct)
    {
        try
        {
            return Task.FromResult<Stream?>(new FileStream(Path.Combine(_root, key), FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Task.FromResult<Stream?>(null);
        }
    }

    public Task PutAsync(string key, byte[] bytes, CancellationToken ct)
    {
        // Partial files live in tmp/ and land by rename: an interrupted copy never leaves a short file in place.
        MakeDirectories();
        // Log tiles live in nested folders (log/tile/0/x001/…).
        if (key.StartsWith(LogFiles.Folder + "/", StringComparison.Ordinal)) Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(_root, key))!);
        DurableFile.WriteAllBytes(Path.Combine(_root, key), bytes, Tmp);
        return Task.CompletedTask;
    }

    public Task PutUnflushedAsync(string key, byte[] bytes, CancellationToken ct)
    {
        using var staged = (StagedFile)Stage(key);
        staged.Write(bytes, 0);
        staged.Land();
        return Task.CompletedTask;
    }

    public IStagedFile Stage(string key)
    {
        MakeDirectories();
        return new StagedFile(Path.Combine(_root, key), Tmp);
    }

    public async Task FlushAsync(IReadOnlyCollection<string> keys, CancellationToken ct)
    {
        // One fsync per file, several at once so the file system can commit them together; a file that is already
        // clean (found present and flushed by an earlier run) costs next to nothing.
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, (key, _) =>
        {
            var path = Path.Combine(_root, key);
            SafeFileHandle handle;
            try
            {
                handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                return ValueTask.CompletedTask;
            }

            using (handle)
            {
                Native.Fsync(handle, path);
            }

            return ValueTask.CompletedTask;
        }).ConfigureAwait(false);

        // The renames that named them.
        foreach (var dir in new[] { FileSystemLayout.Packs, FileSystemLayout.Revisions })
        {
            Native.FsyncDirectory(Path.Combine(_root, dir));
        }

        Native.FsyncDirectory(_root);
    }

    private void MakeDirectories()
    {
        if (_directoriesMade) return;
        foreach (var dir in new[] { FileSystemLayout.Packs, FileSystemLayout.Revisions, FileSystemLayout.Tmp, FileSystemLayout.Locks })
        {
            Directory.CreateDirectory(Path.Combine(_root, dir));
        }

        _directoriesMade = true;
    }

    public void Dispose()
    {
    }

    /// <summary>A temporary file in tmp/, renamed over its final name when landed; deleted if never landed.</summary>
    private sealed class StagedFile : IStagedFile
    {
        // Start writing back every 8 MiB (an fsync on another thread) so the flush before the head moves finds the
        // pages mostly clean instead of writing the whole pack then.
        private const long WritebackEvery = 8 << 20;
        private readonly string _final;
        private readonly string _temp;
        private readonly SafeFileHandle _handle;
        private long _unsynced;
        private Task _writeback = Task.CompletedTask;
        private bool _landed;

        public StagedFile(string final, string tmp)
        {
            _final = final;
            _temp = Path.Combine(tmp, $".{Path.GetFileName(final)}.{Guid.NewGuid():N}.tmp");
            _handle = File.OpenHandle(_temp, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        }

        public void Write(ReadOnlySpan<byte> bytes, long offset)
        {
            try
            {
                RandomAccess.Write(_handle, bytes, offset);
            }
            catch (IOException e)
            {
                throw Native.WriteError(e, _temp);
            }

            _unsynced += bytes.Length;
            if (_unsynced >= WritebackEvery && _writeback.IsCompleted)
            {
                _writeback.GetAwaiter().GetResult();
                _unsynced = 0;
                _writeback = Task.Run(() => Native.Fsync(_handle, _temp));
            }
        }

        public void Land()
        {
            _writeback.GetAwaiter().GetResult();
            _handle.Dispose();
            File.Move(_temp, _final, overwrite: true);
            _landed = true;
        }

        public Task LandAsync(CancellationToken ct)
        {
            Land();
            return Task.CompletedTask;
        }

        public void Dispose()
        {
            // Never close the handle under a running fsync; its failure no longer matters for a discarded file.
            _writeback.ContinueWith(_ => { }, TaskScheduler.Default).Wait();
            _handle.Dispose();
            if (!_landed) DurableFile.TryDelete(_temp);
        }
    }
}
