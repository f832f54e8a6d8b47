using Cairn.Core;
using Cairn.Repository.IO;

namespace Cairn.Repository;

/// <summary>
/// Stores a directory tree from the local file system and returns its root entry. Only content, names, kinds
/// and the owner-execute bit are recorded: mtimes, owners and other host noise never reach the digest.
/// </summary>
public static class DirectorySnapshot
{
    private sealed class Node(string path)
    {
        public string Path { get; } = path;
        public List<TreeEntry> Entries { get; } = [];
        public List<(string Name, Node Child)> Children { get; } = [];
    }

    public static async Task<TreeEntry> StoreAsync(Ingest ingest, string directory, IProgress<long>? bytesProgress, CancellationToken ct)
    {
        var rootStat = Stat.Lstat(directory);
        if (rootStat.Type != FileType.Directory)
        {
            throw new CairnException(ErrorCode.SourceNotFound, $"'{directory}' is not a directory", "give the directory that holds the product's files");
        }

        var root = new Node(directory);
        var files = new List<(Node Parent, string Name, string Path, FileStat Stat)>();
        var pending = new Stack<Node>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            var node = pending.Pop();
            IEnumerable<string> names;
            try
            {
                names = Directory.EnumerateFileSystemEntries(node.Path).Select(System.IO.Path.GetFileName).OfType<string>().ToList();
            }
            catch (UnauthorizedAccessException e)
            {
                throw new CairnException(ErrorCode.IoError, $"cannot read directory '{node.Path}': {e.Message}", "fix its permissions", e);
            }

            foreach (var name in names)
            {
                var path = System.IO.Path.Combine(node.Path, name);
                if (TreeCodec.ValidateName(name) is { } problem)
                {
                    throw new CairnException(ErrorCode.InvalidPath, $"cannot publish '{path}': {problem}", "rename the file");
                }

                var stat = Stat.Lstat(path);
                switch (stat.Type)
                {
                    case FileType.Directory:
                        var child = new Node(path);
                        node.Children.Add((name, child));
                        pending.Push(child);
                        break;
                    case FileType.Symlink:
                        node.Entries.Add(TreeEntry.Link(name, new FileInfo(path).LinkTarget ?? ""));
                        break;
                    case FileType.Regular:
                        files.Add((node, name, path, stat));
                        break;
                    default:
                        throw new CairnException(ErrorCode.UnsupportedFileType,
                            $"cannot publish '{path}': it is a device, FIFO or socket",
                            "products hold only regular files, directories and symlinks; remove it from the tree");
                }
            }
        }

        var results = new TreeEntry[files.Count];
        long done = 0;
        // Largest files first: a big file is chunked and compressed on one core, so one left for last would
        // leave the other cores idle at the end of the publish.
        var order = Enumerable.Range(0, files.Count).OrderByDescending(i => files[i].Stat.Size).ToList();
        await Parallel.ForEachAsync(order,
            new ParallelOptions { CancellationToken = ct, MaxDegreeOfParallelism = Environment.ProcessorCount },
            async (i, token) =>
            {
                var (_, name, path, stat) = files[i];
                await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
                results[i] = await ingest.AddFileAsync(path, stream, stream.Length, stat.Executable, token).ConfigureAwait(false);
                results[i] = results[i] with { Name = name };
                var total = Interlocked.Add(ref done, results[i].Size);
                bytesProgress?.Report(total);
            }).ConfigureAwait(false);

        for (var i = 0; i < files.Count; i++)
        {
            files[i].Parent.Entries.Add(results[i]);
        }

        return await StoreNodeAsync(ingest, "", root, ct).ConfigureAwait(false);
    }

    private static async Task<TreeEntry> StoreNodeAsync(Ingest ingest, string name, Node node, CancellationToken ct)
    {
        foreach (var (childName, child) in node.Children)
        {
            node.Entries.Add(await StoreNodeAsync(ingest, childName, child, ct).ConfigureAwait(false));
        }

        return await ingest.AddDirectoryAsync(name, node.Entries, ct).ConfigureAwait(false);
    }
}
