using Cairn.Core;

namespace Cairn.Repository;

/// <summary>
/// Copies published products from one repository to another (e.g. from a remote repository into a scratch one):
/// every object reachable from the product's root, verified as it is read, then the product's record with the same
/// root, build key, dependencies and tests. Objects the target already holds are not fetched.
/// </summary>
public static class ProductCopier
{
    /// <summary>Copies one product; the result's record has the source's root and build key.</summary>
    public static async Task<PublishResult> CopyAsync(ProductRepository source, ProductRecord product, WritableRepository target, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(product);
        ArgumentNullException.ThrowIfNull(target);
        await using var session = await target.BeginPublishAsync(ct).ConfigureAwait(false);
        var rootSize = await session.StoreAsync(_ => CopyObjectsAsync(source.Objects, product.Root, target.Objects, ct)).ConfigureAwait(false);
        return await session.CommitProductAsync(new ProductRef(product.Name, product.Version), TreeEntry.Dir("", rootSize, product.Root),
            new PublishOptions
            {
                Platform = product.Platform,
                BuildKey = product.BuildKey,
                Dependencies = product.Dependencies,
                Tests = product.Tests,
                PublishedBy = product.PublishedBy,
            }, ct).ConfigureAwait(false);
    }

    /// <summary>Copies the tree at <paramref name="root"/> and everything below it; returns the size of the root tree object. Not flushed.</summary>
    public static async Task<long> CopyObjectsAsync(IObjectReader source, Digest root, IObjectStore target, CancellationToken ct)
    {
        var rootSize = 0L;
        var seen = new HashSet<Digest>();
        var files = new List<ReachedObject>();
        // Trees are copied as the walk reads them; equal subtrees (a common case in software trees) are copied once.
        await Reachability.WalkAsync(source, [TreeEntry.Dir("", -1, root)], o =>
        {
            if (!seen.Add(o.Digest)) return ValueTask.FromResult(WalkStep.Skip);
            if (o.Kind != ReachedKind.Tree) files.Add(o);
            return ValueTask.FromResult(WalkStep.Continue);
        }, new ReachabilityOptions
        {
            ExpandChunkLists = false,
            Read = async (digest, token) =>
            {
                var data = await source.GetAsync(digest, token).ConfigureAwait(false);
                if (digest == root) rootSize = data.Length;
                await target.PutAsync(digest, data, token).ConfigureAwait(false);
                return data;
            },
        }, ct).ConfigureAwait(false);

        // File objects are independent: fetch several at once (a remote source answers each request with latency).
        await Parallel.ForEachAsync(files, new ParallelOptions { CancellationToken = ct, MaxDegreeOfParallelism = 8 }, async (file, token) =>
        {
            if (await target.ContainsAsync(file.Digest, token).ConfigureAwait(false) && file.Kind == ReachedKind.File) return;
            var data = await source.GetAsync(file.Digest, token).ConfigureAwait(false);
            if (file.Kind == ReachedKind.ChunkList)
            {
                foreach (var (_, chunk) in ChunkListCodec.Decode(data, file.Digest))
                {
                    if (await target.ContainsAsync(chunk, token).ConfigureAwait(false)) continue;
                    await target.PutAsync(chunk, await source.GetAsync(chunk, token).ConfigureAwait(false), token).ConfigureAwait(false);
                }
            }
            else if (data.Length != file.Size)
            {
                throw new CairnException(ErrorCode.ObjectSizeMismatch, $"object {file.Digest} holds {data.Length} bytes, the tree says {file.Size}",
                    "run 'cairn verify --full' on the source repository");
            }

            await target.PutAsync(file.Digest, data, token).ConfigureAwait(false);
        }).ConfigureAwait(false);
        return rootSize;
    }
}
