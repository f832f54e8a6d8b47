using Cairn.Core;

namespace Cairn.Repository;

/// <summary>What kind of object a reachability walk reached.</summary>
public enum ReachedKind { Tree, File, ChunkList, Chunk }

/// <summary>
/// An object a walk reached. <paramref name="Size"/> is the stored object's size as its parent names it, or -1 where
/// the parent does not say (a product's root tree, a chunk list: the entry's size is the file's). <paramref name="FileSize"/>
/// is the file size a chunk list's chunks must add up to (0 for other kinds).
/// </summary>
public readonly record struct ReachedObject(Digest Digest, ReachedKind Kind, long Size, long FileSize = 0);

/// <summary>What the walk does after a visit: go below the object, leave what is below it alone, or end the walk.</summary>
public enum WalkStep { Continue, Skip, Stop }

public sealed record ReachabilityOptions
{
    /// <summary>Reads a tree or chunk list (default: the store's verified read). A copier reads from one store and writes to another here.</summary>
    public Func<Digest, CancellationToken, ValueTask<byte[]>>? Read { get; init; }

    /// <summary>False: a chunked file is reached as its chunk list only, which is not read (the caller fetches chunks itself).</summary>
    public bool ExpandChunkLists { get; init; } = true;

    /// <summary>Reports chunk lists whose chunks do not add up to the file's size (as an unreadable object, ObjectSizeMismatch).</summary>
    public bool CheckChunkSizes { get; init; }

    /// <summary>
    /// Called when a tree or chunk list cannot be read or decoded; true: noted, the walk goes on without what is
    /// below it; false (or null): the walk fails with the error.
    /// </summary>
    public Func<ReachedObject, CairnException, bool>? OnUnreadable { get; init; }
}

/// <summary>
/// Every object a root reaches — trees, file objects, chunk lists and their chunks; symlinks name no object — written
/// once for gc, verify, the product copier, the gateway's missing-object check and a site's uploader. The visitor
/// sees each object before it is read and decides whether to go below it, so de-duplication across roots (or
/// revisions) is the visitor's: return <see cref="WalkStep.Skip"/> for an object already seen.
/// </summary>
public static class Reachability
{
    public static async Task WalkAsync(IObjectReader objects, IEnumerable<TreeEntry> roots, Func<ReachedObject, ValueTask<WalkStep>> visit,
        ReachabilityOptions? options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(objects);
        ArgumentNullException.ThrowIfNull(visit);
        options ??= new ReachabilityOptions();
        var read = options.Read ?? objects.GetAsync;
        var stack = new Stack<TreeEntry>(roots);
        while (stack.Count > 0)
        {
            var entry = stack.Pop();
            var step = entry.Kind switch
            {
                EntryKind.Directory => await VisitTreeAsync(entry, visit, read, options, stack, ct).ConfigureAwait(false),
                EntryKind.File => await visit(new ReachedObject(entry.Digest, ReachedKind.File, entry.Size)).ConfigureAwait(false),
                EntryKind.ChunkedFile => await VisitChunkedAsync(entry, visit, read, options, ct).ConfigureAwait(false),
                _ => WalkStep.Skip,
            };
            if (step == WalkStep.Stop) return;
        }
    }

    /// <summary>Every object the entries reach, each once, trees before their content.</summary>
    public static async Task<List<Digest>> ListAsync(IObjectReader objects, IEnumerable<TreeEntry> roots, CancellationToken ct)
    {
        var seen = new HashSet<Digest>();
        var result = new List<Digest>();
        await WalkAsync(objects, roots, o =>
        {
            if (!seen.Add(o.Digest)) return ValueTask.FromResult(WalkStep.Skip);
            result.Add(o.Digest);
            return ValueTask.FromResult(WalkStep.Continue);
        }, null, ct).ConfigureAwait(false);
        return result;
    }

    private static async ValueTask<WalkStep> VisitTreeAsync(TreeEntry entry, Func<ReachedObject, ValueTask<WalkStep>> visit,
        Func<Digest, CancellationToken, ValueTask<byte[]>> read, ReachabilityOptions options, Stack<TreeEntry> stack, CancellationToken ct)
    {
        var reached = new ReachedObject(entry.Digest, ReachedKind.Tree, entry.Size);
        var step = await visit(reached).ConfigureAwait(false);
        if (step != WalkStep.Continue) return step;
        try
        {
            foreach (var child in TreeCodec.Decode(await read(entry.Digest, ct).ConfigureAwait(false), entry.Digest)) stack.Push(child);
        }
        catch (CairnException e) when (options.OnUnreadable?.Invoke(reached, e) == true)
        {
        }

        return WalkStep.Continue;
    }

    private static async ValueTask<WalkStep> VisitChunkedAsync(TreeEntry entry, Func<ReachedObject, ValueTask<WalkStep>> visit,
        Func<Digest, CancellationToken, ValueTask<byte[]>> read, ReachabilityOptions options, CancellationToken ct)
    {
        var reached = new ReachedObject(entry.Digest, ReachedKind.ChunkList, -1, entry.Size);
        var step = await visit(reached).ConfigureAwait(false);
        if (step != WalkStep.Continue || !options.ExpandChunkLists) return step;
        IReadOnlyList<(int Length, Digest Digest)> chunks;
        try
        {
            chunks = ChunkListCodec.Decode(await read(entry.Digest, ct).ConfigureAwait(false), entry.Digest);
        }
        catch (CairnException e) when (options.OnUnreadable?.Invoke(reached, e) == true)
        {
            return WalkStep.Continue;
        }

        if (options.CheckChunkSizes && chunks.Sum(c => (long)c.Length) != entry.Size)
        {
            var mismatch = new CairnException(ErrorCode.ObjectSizeMismatch, $"chunks of {entry.Digest} do not add up to {entry.Size} bytes", "run 'cairn verify --full'");
            if (options.OnUnreadable?.Invoke(reached, mismatch) != true) throw mismatch;
        }

        foreach (var (length, chunk) in chunks)
        {
            if (await visit(new ReachedObject(chunk, ReachedKind.Chunk, length)).ConfigureAwait(false) == WalkStep.Stop) return WalkStep.Stop;
        }

        return WalkStep.Continue;
    }
}
