using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Build.Coordinated;

/// <summary>Uploads the staged objects the gateway lacks: asks in batches, sends only the missing ones.</summary>
public static class ObjectUploader
{
    /// <summary>Digests asked about per call.</summary>
    public const int BatchSize = 1000;

    public sealed record UploadResult(int Staged, int Uploaded, long BytesUploaded);

    public static async Task<UploadResult> UploadMissingAsync(IObjectStore staging, IGateway gateway, int parallelism, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(staging);
        ArgumentNullException.ThrowIfNull(gateway);
        var all = new List<Digest>();
        await foreach (var info in staging.ListAsync(ct).ConfigureAwait(false)) all.Add(info.Digest);
        var uploaded = 0;
        long bytes = 0;
        foreach (var batch in all.Chunk(BatchSize))
        {
            var missing = await gateway.MissingObjectsAsync(batch, ct).ConfigureAwait(false);
            await Parallel.ForEachAsync(missing, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism), CancellationToken = ct },
                async (digest, token) =>
                {
                    var content = await staging.GetAsync(digest, token).ConfigureAwait(false);
                    await gateway.PutObjectAsync(digest, content, token).ConfigureAwait(false);
                    Interlocked.Increment(ref uploaded);
                    Interlocked.Add(ref bytes, content.Length);
                }).ConfigureAwait(false);
        }

        return new UploadResult(all.Count, uploaded, bytes);
    }
}
