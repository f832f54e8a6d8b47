using System.Collections.Concurrent;
using Cairn.Core;

namespace Cairn.Repository;

public sealed record VerifyProblem(ErrorCode Code, Digest ObjectDigest, string Message, IReadOnlyList<string> Products);

public sealed record VerifyReport(long Revisions, long ObjectsChecked, long BytesChecked, IReadOnlyList<VerifyProblem> Problems)
{
    public bool Ok => Problems.Count == 0;
}

/// <summary>
/// Checks that every kept revision is complete: manifest → catalog → trees → files and chunks. By default an
/// object counts as sound when the store lists it with the expected size; --full re-reads and re-hashes every
/// object in the store.
/// </summary>
public sealed class Verifier(ProductRepository repository)
{
    /// <summary>--full: reads and re-hashes every object the store lists, noting each that fails; returns how many objects and bytes were read.</summary>
    private async Task<(long Objects, long Bytes)> ReadEveryObjectAsync(IEnumerable<ObjectInfo> listed,
        ConcurrentDictionary<Digest, (ErrorCode Code, string Message)> problems, IProgress<long>? progress, CancellationToken ct)
    {
        long objects = 0, bytes = 0;
        await Parallel.ForEachAsync(listed, new ParallelOptions { CancellationToken = ct, MaxDegreeOfParallelism = Environment.ProcessorCount },
            async (info, token) =>
            {
                try
                {
                    _ = await repository.Objects.GetAsync(info.Digest, token).ConfigureAwait(false);
                }
                catch (CairnException e)
                {
                    problems.TryAdd(info.Digest, (e.Code, e.Message));
                }

                Interlocked.Increment(ref objects);
                progress?.Report(Interlocked.Add(ref bytes, info.Size));
            }).ConfigureAwait(false);
        return (objects, bytes);
    }

    // Longer than 80 lines on purpose: its four short local functions (Note, Use, Present, CheckTreeAsync) share the
    // problem and user tables of one run; as methods they would pass those tables around instead.
    public async Task<VerifyReport> VerifyAsync(bool full, IProgress<long>? progress, CancellationToken ct)
    {
        // Shared: publishes may run meanwhile, but a gc sweeping objects would make verify report false losses.
        await using var objectsLock = await repository.HoldObjectsAsync(ct).ConfigureAwait(false);
        var store = repository.Objects;
        var listed = new Dictionary<Digest, ObjectInfo>();
        await foreach (var info in store.ListAsync(ct).ConfigureAwait(false)) listed[info.Digest] = info;

        var problems = new ConcurrentDictionary<Digest, (ErrorCode Code, string Message)>();
        var (checkedObjects, checkedBytes) = full ? await ReadEveryObjectAsync(listed.Values, problems, progress, ct).ConfigureAwait(false) : (0L, 0L);

        // Walk every kept revision; remember which products reach each object so a report names what breaks.
        var users = new Dictionary<Digest, SortedSet<string>>();
        var visitedTrees = new HashSet<Digest>();
        long revisionCount = 0;
        await foreach (var manifest in repository.Revisions.ListRevisionsAsync(ct).ConfigureAwait(false))
        {
            revisionCount++;
            var label = $"revision {manifest.Revision}";
            if (!Present(manifest.Catalog, -1, label)) continue;
            Catalog catalog;
            try
            {
                catalog = await repository.CatalogAsync(manifest, ct).ConfigureAwait(false);
            }
            catch (CairnException e)
            {
                Note(manifest.Catalog, e.Code, e.Message, label);
                continue;
            }

            foreach (var product in catalog.Products)
            {
                await CheckTreeAsync(product.Root, -1, $"{product.Platform}/{product.Name}/{product.Version}").ConfigureAwait(false);
            }

            await CheckTreeAsync(manifest.Root, manifest.RootSize, label).ConfigureAwait(false);
        }

        var list = problems.OrderBy(p => p.Key)
            .Select(p => new VerifyProblem(p.Value.Code, p.Key, p.Value.Message, users.TryGetValue(p.Key, out var u) ? [.. u] : []))
            .ToList();
        return new VerifyReport(revisionCount, full ? checkedObjects : listed.Count, checkedBytes, list);

        void Note(Digest digest, ErrorCode code, string message, string user)
        {
            problems.TryAdd(digest, (code, message));
            Use(digest, user);
        }

        void Use(Digest digest, string user)
        {
            if (!users.TryGetValue(digest, out var set)) users[digest] = set = new SortedSet<string>(StringComparer.Ordinal);
            if (!user.StartsWith("revision ", StringComparison.Ordinal) || set.Count == 0) set.Add(user);
        }

        bool Present(Digest digest, long size, string user)
        {
            if (problems.ContainsKey(digest))
            {
                Use(digest, user);
                return false;
            }

            if (!listed.TryGetValue(digest, out var info))
            {
                Note(digest, ErrorCode.ObjectMissing, $"object {digest} is missing", user);
                return false;
            }

            if (size >= 0 && info.Size != size)
            {
                Note(digest, ErrorCode.ObjectSizeMismatch, $"object {digest} is {info.Size} bytes, expected {size}", user);
                return false;
            }

            return true;
        }

        Task CheckTreeAsync(Digest tree, long size, string user)
        {
            var isRevision = user.StartsWith("revision ", StringComparison.Ordinal);
            return Reachability.WalkAsync(repository.Objects, [TreeEntry.Dir("", size, tree)], o =>
            {
                if (!Present(o.Digest, o.Size, user)) return ValueTask.FromResult(WalkStep.Skip);
                // Trees already walked for an earlier product are sound; only record the new user of their problems.
                var again = o.Kind == ReachedKind.Tree && !visitedTrees.Add(o.Digest) && !isRevision;
                return ValueTask.FromResult(again ? WalkStep.Skip : WalkStep.Continue);
            }, new ReachabilityOptions
            {
                CheckChunkSizes = true,
                OnUnreadable = (o, e) =>
                {
                    Note(o.Digest, e.Code, e.Message, user);
                    return true;
                },
            }, ct);
        }
    }
}
