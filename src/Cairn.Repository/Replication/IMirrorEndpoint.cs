using Cairn.Core;

namespace Cairn.Repository.Replication;

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

