using Cairn.Core;

namespace Cairn.Repository;

/// <summary>Reads trees back from a store: lookups by path, full walks, file content.</summary>
public sealed class TreeWalker(IObjectReader store)
{
    public IObjectReader Store => store;

    public async ValueTask<IReadOnlyList<TreeEntry>> ReadTreeAsync(Digest digest, CancellationToken ct) =>
        TreeCodec.Decode(await store.GetAsync(digest, ct).ConfigureAwait(false), digest);

    /// <summary>Finds the entry at a '/'-separated path below a root tree; null when absent.</summary>
    public async ValueTask<TreeEntry?> LookupAsync(Digest root, string path, CancellationToken ct)
    {
        var current = TreeEntry.Dir("", 0, root);
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (current.Kind != EntryKind.Directory) return null;
            var entries = await ReadTreeAsync(current.Digest, ct).ConfigureAwait(false);
            var next = entries.FirstOrDefault(e => e.Name == part);
            if (next is null) return null;
            current = next;
        }

        return current;
    }

    /// <summary>Every entry below a tree, depth first, with its relative path; directories before their content.</summary>
    public async IAsyncEnumerable<(string Path, TreeEntry Entry)> WalkAsync(Digest root, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var stack = new Stack<(string Prefix, Digest Tree)>();
        stack.Push(("", root));
        while (stack.Count > 0)
        {
            var (prefix, tree) = stack.Pop();
            var entries = await ReadTreeAsync(tree, ct).ConfigureAwait(false);
            for (var i = entries.Count - 1; i >= 0; i--)
            {
                var e = entries[i];
                if (e.Kind == EntryKind.Directory) stack.Push((prefix + e.Name + "/", e.Digest));
            }

            foreach (var e in entries)
            {
                yield return (prefix + e.Name, e);
            }
        }
    }

    /// <summary>Writes a file's content to <paramref name="destination"/>; every object is verified as it is read.</summary>
    /// <summary>
    /// Announces the content of these files to a store that fetches in batches (see <see cref="IObjectReader.PrefetchAsync"/>):
    /// first the chunk lists of chunked files, then, in file order, whole-file objects and chunks. Returns the task of the
    /// batch, which never faults (a failed object fails its reader in <see cref="CopyContentAsync"/>).
    /// </summary>
    public async ValueTask<Task> PrefetchContentAsync(IReadOnlyList<TreeEntry> files, CancellationToken ct)
    {
        if (!store.PrefetchesInBatches) return Task.CompletedTask;
        var lists = files.Where(f => f.Kind == EntryKind.ChunkedFile).Select(f => f.Digest).ToList();
        if (lists.Count > 0) await (await store.PrefetchAsync(lists, ct).ConfigureAwait(false)).WaitAsync(ct).ConfigureAwait(false);

        var wanted = new List<Digest>(files.Count);
        foreach (var file in files)
        {
            if (file.Kind == EntryKind.File)
            {
                wanted.Add(file.Digest);
                continue;
            }

            if (file.Kind != EntryKind.ChunkedFile) continue;
            try
            {
                foreach (var (_, chunk) in ChunkListCodec.Decode(await store.GetAsync(file.Digest, ct).ConfigureAwait(false), file.Digest)) wanted.Add(chunk);
            }
            catch (CairnException)
            {
                // Reported where the file is written, with its path.
            }
        }

        return await store.PrefetchAsync(wanted, ct).ConfigureAwait(false);
    }

    public async ValueTask CopyContentAsync(TreeEntry file, Stream destination, CancellationToken ct)
    {
        if (file.Kind == EntryKind.File)
        {
            var data = await store.GetAsync(file.Digest, ct).ConfigureAwait(false);
            if (data.Length != file.Size)
            {
                throw new CairnException(ErrorCode.ObjectSizeMismatch, $"object {file.Digest} holds {data.Length} bytes, the tree says {file.Size}", "run 'cairn verify --full'");
            }

            await WriteAsync(destination, data, ct).ConfigureAwait(false);
            return;
        }

        var chunks = ChunkListCodec.Decode(await store.GetAsync(file.Digest, ct).ConfigureAwait(false), file.Digest);
        long total = 0;
        foreach (var (length, digest) in chunks)
        {
            var data = await store.GetAsync(digest, ct).ConfigureAwait(false);
            if (data.Length != length)
            {
                throw new CairnException(ErrorCode.ObjectSizeMismatch, $"chunk {digest} holds {data.Length} bytes, its list says {length}", "run 'cairn verify --full'");
            }

            total += length;
            await WriteAsync(destination, data, ct).ConfigureAwait(false);
        }

        if (total != file.Size)
        {
            throw new CairnException(ErrorCode.ObjectSizeMismatch, $"chunks of {file.Digest} add up to {total} bytes, the tree says {file.Size}", "run 'cairn verify --full'");
        }
    }

    private static ValueTask WriteAsync(Stream destination, byte[] data, CancellationToken ct)
    {
        if (destination is FileStream { IsAsync: false })
        {
            // A synchronous file handle: WriteAsync would queue the same pwrite to the thread pool, a hop per object.
            ct.ThrowIfCancellationRequested();
            destination.Write(data);
            return ValueTask.CompletedTask;
        }

        return destination.WriteAsync(data, ct);
    }

    /// <summary>Returns a copy of the tree at <paramref name="root"/> with <paramref name="path"/> set to <paramref name="replacement"/> (null removes it).</summary>
    public async ValueTask<TreeEntry> ReplaceAsync(Ingest ingest, TreeEntry root, string[] path, TreeEntry? replacement, CancellationToken ct)
    {
        var entries = root.Digest == default ? new List<TreeEntry>() : (await ReadTreeAsync(root.Digest, ct).ConfigureAwait(false)).ToList();
        var name = path[0];
        var index = entries.FindIndex(e => e.Name == name);
        TreeEntry? updated;
        if (path.Length == 1)
        {
            updated = replacement is null ? null : replacement with { Name = name };
        }
        else
        {
            var child = index >= 0 && entries[index].Kind == EntryKind.Directory ? entries[index] : TreeEntry.Dir(name, 0, default);
            updated = await ReplaceAsync(ingest, child, path[1..], replacement, ct).ConfigureAwait(false);
            updated = updated with { Name = name };
        }

        if (index >= 0) entries.RemoveAt(index);
        if (updated is not null) entries.Add(updated);
        return await ingest.AddDirectoryAsync(root.Name, entries, ct).ConfigureAwait(false);
    }
}
