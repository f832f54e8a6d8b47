using System.Net;
using System.Net.Http.Headers;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Repository.Http;
using Cairn.Repository.IO;
using Cairn.Repository.S3;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Cli.Commands.Replicate;

/// <summary>One side of a replication: files by their layout path.</summary>
public interface IMirrorEndpoint : IDisposable
{
    string Display { get; }

    Task<byte[]?> GetAsync(string key, CancellationToken ct);

    /// <summary>Writes a file atomically and durably (it is there whole, or not at all, even after a power loss).</summary>
    Task PutAsync(string key, byte[] bytes, CancellationToken ct);

    /// <summary>A file's bytes as a stream (null if absent); read it with <see cref="ReadAsync"/>.</summary>
    async Task<Stream?> OpenReadAsync(string key, CancellationToken ct) =>
        await GetAsync(key, ct).ConfigureAwait(false) is { } bytes ? new MemoryStream(bytes, writable: false) : null;

    /// <summary>Fills <paramref name="buffer"/> from a stream of this endpoint (fewer bytes only at the end); 0 at the end.</summary>
    async Task<int> ReadAsync(Stream stream, byte[] buffer, CancellationToken ct)
    {
        var filled = 0;
        try
        {
            int n;
            while (filled < buffer.Length && (n = await stream.ReadAsync(buffer.AsMemory(filled), ct).ConfigureAwait(false)) > 0) filled += n;
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            throw new CairnException(ErrorCode.RemoteUnavailable, $"reading from {Display} failed: {e.Message}", "check the source; run replicate again to resume");
        }

        return filled;
    }

    /// <summary>A file written in pieces that appears under its name only at <see cref="IStagedFile.LandAsync"/>.</summary>
    IStagedFile Stage(string key) => new BufferedStagedFile(this, key);

    /// <summary>Writes a file atomically; it need only be durable after <see cref="FlushAsync"/>.</summary>
    Task PutUnflushedAsync(string key, byte[] bytes, CancellationToken ct) => PutAsync(key, bytes, ct);

    /// <summary>Makes the named files (those that exist) durable, with the directories that name them.</summary>
    Task FlushAsync(IReadOnlyCollection<string> keys, CancellationToken ct) => Task.CompletedTask;

    public static IMirrorEndpoint Open(string location, bool writable) =>
        RepositoryLocation.Parse(location) switch
        {
            S3Location s3 => new S3Endpoint(S3Calls.Open(s3)),
            HttpLocation when writable => throw new CairnException(ErrorCode.RemoteReadOnly, $"cannot replicate into {location}: http(s) repositories are read-only", "give a directory or s3:// URL as DEST"),
            HttpLocation => new HttpEndpoint(location),
            _ => new DirectoryEndpoint(location),
        };
}

/// <summary>A file being written; disposing it without landing it discards it.</summary>
public interface IStagedFile : IDisposable
{
    void Write(ReadOnlySpan<byte> bytes, long offset);

    Task LandAsync(CancellationToken ct);
}

internal sealed class BufferedStagedFile(IMirrorEndpoint endpoint, string key) : IStagedFile
{
    private readonly MemoryStream _buffer = new();

    public void Write(ReadOnlySpan<byte> bytes, long offset)
    {
        _buffer.Position = offset;
        _buffer.Write(bytes);
    }

    public Task LandAsync(CancellationToken ct) => endpoint.PutAsync(key, _buffer.ToArray(), ct);

    public void Dispose() => _buffer.Dispose();
}

internal sealed class DirectoryEndpoint(string root) : IMirrorEndpoint
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

internal sealed class HttpEndpoint : IMirrorEndpoint
{
    // Several packs stream at once, each on its own connection; replicate checks every byte itself.
    private readonly HttpClient _http = new(new SocketsHttpHandler { MaxConnectionsPerServer = 16, AutomaticDecompression = DecompressionMethods.None })
    {
        Timeout = TimeSpan.FromMinutes(10),
    };

    private readonly Uri _base;

    public HttpEndpoint(string url) => _base = new Uri(url.EndsWith('/') ? url : url + "/");

    public string Display => _base.ToString();

    public async Task<byte[]?> GetAsync(string key, CancellationToken ct)
    {
        using var response = await SendAsync(key, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
        if (response is null) return null;
        try
        {
            return await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            throw Unavailable(key, e);
        }
    }

    public async Task<Stream?> OpenReadAsync(string key, CancellationToken ct)
    {
        // The body is read as it arrives (hashed and written chunk by chunk), never buffered whole.
        var response = await SendAsync(key, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        if (response is null) return null;
        try
        {
            return await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            response.Dispose();
            throw Unavailable(key, e);
        }
    }

    private async Task<HttpResponseMessage?> SendAsync(string key, HttpCompletionOption completion, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_base, key));
        // The head must be the server's current one, not a proxy's copy.
        request.Headers.CacheControl = new CacheControlHeaderValue { NoCache = true };
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, completion, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            throw Unavailable(key, e);
        }

        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            response.Dispose();
            return null;
        }

        if (!response.IsSuccessStatusCode)
        {
            response.Dispose();
            throw new CairnException(ErrorCode.RemoteUnavailable, $"GET {new Uri(_base, key)} failed: {(int)response.StatusCode} {response.ReasonPhrase}",
                "check the source server; run replicate again to resume");
        }

        return response;
    }

    private CairnException Unavailable(string key, Exception e) =>
        new(ErrorCode.RemoteUnavailable, $"GET {new Uri(_base, key)} failed: {e.Message}", "check the source server; run replicate again to resume");

    public Task PutAsync(string key, byte[] bytes, CancellationToken ct) => throw new NotSupportedException("http sources are read-only");

    public void Dispose() => _http.Dispose();
}

internal sealed class S3Endpoint(S3Calls s3) : IMirrorEndpoint
{
    public string Display => s3.Location.Display;

    public async Task<byte[]?> GetAsync(string key, CancellationToken ct) => (await s3.GetAsync(key, ct).ConfigureAwait(false))?.Bytes;

    public Task PutAsync(string key, byte[] bytes, CancellationToken ct) => s3.PutAsync(key, bytes, ct);

    public void Dispose() => s3.Dispose();
}
