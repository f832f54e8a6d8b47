using Cairn.Repository.Replication;

namespace Cairn.Repository.S3;

/// <summary>A mirror (or source) in a bucket.</summary>
public sealed class S3MirrorEndpoint(S3Calls s3) : IMirrorEndpoint
{
    public string Display => s3.Location.Display;

    public async Task<byte[]?> GetAsync(string key, CancellationToken ct) => (await s3.GetAsync(key, ct).ConfigureAwait(false))?.Bytes;

    public Task PutAsync(string key, byte[] bytes, CancellationToken ct) => s3.PutAsync(key, bytes, ct);

    public void Dispose() => s3.Dispose();
}
