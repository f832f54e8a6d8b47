using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Gateway.Client;

public sealed record UploadResult(long ObjectsReachable, long ObjectsUploaded, long BytesUploaded);

/// <summary>
/// Uploads what a commit needs: every object reachable from some entries (trees, files, chunk lists, chunks) in a
/// local store, asking the gateway which it lacks in batches and sending only those, several at once.
/// </summary>
public static class ObjectUploader
{
    public static async Task<UploadResult> UploadAsync(IGateway gateway, IObjectReader local, IEnumerable<TreeEntry> roots, int parallelism, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(gateway);
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(roots);
        var reachable = await ReachableAsync(local, roots, ct).ConfigureAwait(false);
        long uploaded = 0, bytes = 0;
        for (var i = 0; i < reachable.Count; i += GatewayProtocol.MaxMissingBatch)
        {
            var batch = reachable.GetRange(i, Math.Min(GatewayProtocol.MaxMissingBatch, reachable.Count - i));
            var missing = await gateway.MissingObjectsAsync(batch, ct).ConfigureAwait(false);
            await Parallel.ForEachAsync(missing, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism), CancellationToken = ct }, async (digest, token) =>
            {
                var content = await local.GetAsync(digest, token).ConfigureAwait(false);
                await gateway.PutObjectAsync(digest, content, token).ConfigureAwait(false);
                Interlocked.Increment(ref uploaded);
                Interlocked.Add(ref bytes, content.Length);
            }).ConfigureAwait(false);
        }

        return new UploadResult(reachable.Count, uploaded, bytes);
    }

    /// <summary>Every object the entries reach, each once; trees before their content.</summary>
    public static Task<List<Digest>> ReachableAsync(IObjectReader store, IEnumerable<TreeEntry> roots, CancellationToken ct) =>
        Reachability.ListAsync(store, roots, ct);
}
