using System.Formats.Tar;
using System.IO.Compression;
using Cairn.Core;
using ZstdSharp;

namespace Cairn.Repository;

/// <summary>Caps that keep a hostile archive from exhausting memory, disk or time (docs/errors.md, 3xx).</summary>
public sealed record ImportLimits
{
    public long MaxEntries { get; init; } = 1_000_000;
    public int MaxDepth { get; init; } = 64;
    public long MaxTotalBytes { get; init; } = 64L << 30;
    /// <summary>Uncompressed/compressed bytes, checked once 16 MiB have been unpacked.</summary>
    public double MaxCompressionRatio { get; init; } = 250;
    /// <summary>zstd frames asking for a larger window (2^27 = 128 MiB) are refused.</summary>
    public int ZstdWindowLogMax { get; init; } = 27;
}

public sealed record ImportOptions
{
    /// <summary>Publish the whole archive as this product; otherwise the archive must be in deployment layout.</summary>
    public ProductRef? As { get; init; }
    public int StripComponents { get; init; }

    /// <summary>
    /// The archive is a root file system for builds (a recipe's <c>environment:</c>): absolute symlinks and links
    /// above the top are kept, because the sandbox mounts it as / and they resolve inside it there. Needs <see cref="As"/>.
    /// </summary>
    public bool RootFileSystem { get; init; }

    public ImportLimits Limits { get; init; } = new();
    public PublishOptions Publish { get; init; } = new();
}

/// <summary>
/// Imports product tarballs (.tar, .tar.gz, .tar.zst) without ever extracting them to disk: entries are checked
/// against a virtual tree built in memory, so traversal, link escapes and writes through symlinks are refused by
/// structure, not by string prefixes. Nothing is committed unless the whole archive passes.
/// </summary>
public sealed class Importer(WritableRepository repository)
{
    private abstract class Node;

    private sealed class DirNode : Node
    {
        public Dictionary<string, Node> Children { get; } = new(StringComparer.Ordinal);
        public bool Explicit { get; set; }
    }

    private sealed class FileNode(TreeEntry entry) : Node
    {
        public TreeEntry Entry { get; } = entry;
    }

    private sealed class LinkNode(string target) : Node
    {
        public string Target { get; } = target;
    }

    public async Task<IReadOnlyList<PublishResult>> ImportAsync(string archivePath, ImportOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.RootFileSystem && options.As is null)
        {
            throw new CairnException(ErrorCode.Usage, $"importing '{archivePath}' as a root file system needs the product's name",
                "pass --as NAME/VERSION, e.g. --rootfs --as debian-12/20261125");
        }

        await using var session = await repository.BeginPublishAsync(ct).ConfigureAwait(false);
        var ingest = session.Ingest;
        var products = await session.StoreAsync(i => ReadArchiveAsync(archivePath, options, i, ct)).ConfigureAwait(false);

        if (products.Count == 0)
        {
            throw new CairnException(ErrorCode.ArchiveLayout, $"'{archivePath}' holds no product",
                "an archive in deployment layout has PLATFORM/NAME/VERSION/… entries; or pass --as NAME/VERSION");
        }

        // Check every product before committing any, so a refused archive changes nothing.
        var head = await repository.HeadAsync(ct).ConfigureAwait(false);
        var catalog = await repository.CatalogAsync(head, ct).ConfigureAwait(false);
        var roots = new List<(string Key, TreeEntry Root)>();
        foreach (var (key, dir) in products.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            var root = await StoreAsync(ingest, "", dir, ct).ConfigureAwait(false);
            var (platform, product) = SplitKey(key, options);
            if (catalog.Find(platform, product) is { } existing && existing.Root != root.Digest && !options.Publish.Replace)
            {
                throw new CairnException(ErrorCode.ProductExists, $"{product} ({platform}) is already published with different content",
                    "products are immutable: import it under a new version, or pass --replace with --reason");
            }

            roots.Add((key, root));
        }

        var results = new List<PublishResult>();
        foreach (var (key, root) in roots)
        {
            var (platform, product) = SplitKey(key, options);
            results.Add(await session.CommitProductAsync(product, root, options.Publish with { Platform = platform }, ct).ConfigureAwait(false));
        }

        return results;
    }

    private (string Platform, ProductRef Product) SplitKey(string key, ImportOptions options)
    {
        if (options.As is { } single) return (options.Publish.Platform ?? repository.DefaultPlatform, single);
        var parts = key.Split('/');
        return (parts[0], new ProductRef(parts[1], parts[2]));
    }

    private static async Task<TreeEntry> StoreAsync(Ingest ingest, string name, DirNode dir, CancellationToken ct)
    {
        var entries = new List<TreeEntry>(dir.Children.Count);
        foreach (var (childName, child) in dir.Children)
        {
            entries.Add(child switch
            {
                DirNode d => await StoreAsync(ingest, childName, d, ct).ConfigureAwait(false),
                FileNode f => f.Entry with { Name = childName },
                LinkNode l => TreeEntry.Link(childName, l.Target),
                _ => throw new InvalidOperationException(),
            });
        }

        return await ingest.AddDirectoryAsync(name, entries, ct).ConfigureAwait(false);
    }

    private async Task<Dictionary<string, DirNode>> ReadArchiveAsync(string archivePath, ImportOptions options, Ingest ingest, CancellationToken ct)
    {
        var limits = options.Limits;
        FileStream file;
        try
        {
            file = new FileStream(archivePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new CairnException(ErrorCode.SourceNotFound, $"archive '{archivePath}' does not exist", "check the path", e);
        }

        await using var _ = file;
        var compressed = new MeteredStream(file, long.MaxValue, null);
        var magic = new byte[4];
        var got = await file.ReadAtLeastAsync(magic, 4, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        file.Position = 0;
        Stream decoded;
        if (got >= 4 && magic is [0x28, 0xB5, 0x2F, 0xFD])
        {
            var zstd = new DecompressionStream(compressed, leaveOpen: true);
            zstd.SetParameter(ZstdSharp.Unsafe.ZSTD_dParameter.ZSTD_d_windowLogMax, limits.ZstdWindowLogMax);
            decoded = zstd;
        }
        else if (got >= 2 && magic is [0x1F, 0x8B, ..])
        {
            decoded = new GZipStream(compressed, CompressionMode.Decompress, leaveOpen: true);
        }
        else if (got >= 3 && (magic is [0x42, 0x5A, 0x68, ..] || magic is [0xFD, 0x37, 0x7A, 0x58]))
        {
            throw new CairnException(ErrorCode.ArchiveUnreadable, $"'{archivePath}' is bzip2 or xz compressed",
                "recompress it: 'bzip2 -dc F | zstd > F.tar.zst' (or xz -dc), then import the .tar.zst");
        }
        else
        {
            decoded = compressed;
        }

        var products = new Dictionary<string, DirNode>(StringComparer.Ordinal);
        var metered = new MeteredStream(decoded, limits.MaxTotalBytes, () => compressed.Count)
        {
            MaxRatio = ReferenceEquals(decoded, compressed) ? double.PositiveInfinity : limits.MaxCompressionRatio,
            ArchiveName = archivePath,
        };
        await using (decoded.ConfigureAwait(false))
        {
            using var reader = new TarReader(metered, leaveOpen: true);
            long count = 0;
            while (true)
            {
                TarEntry? entry;
                try
                {
                    entry = await reader.GetNextEntryAsync(copyData: false, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is InvalidDataException or FormatException or ZstdException or ArgumentException)
                {
                    throw new CairnException(ErrorCode.ArchiveUnreadable, $"'{archivePath}' is not a readable tar archive: {e.Message}",
                        "check that the file is a complete .tar, .tar.gz or .tar.zst", e);
                }

                if (entry is null) break;
                if (entry.EntryType is TarEntryType.GlobalExtendedAttributes) continue;
                if (++count > limits.MaxEntries)
                {
                    throw Refuse(ErrorCode.ArchiveTooManyEntries, archivePath, entry.Name, $"more than {limits.MaxEntries} entries", "raise --max-entries if the archive is genuine");
                }

                await AddEntryAsync(archivePath, entry, options, products, ingest, ct).ConfigureAwait(false);
            }
        }

        return products;
    }

    private static CairnException Refuse(ErrorCode code, string archive, string entry, string why, string hint) =>
        new(code, $"refusing '{archive}': entry '{Printable(entry)}' {why}; nothing was imported", hint);

    private static string Printable(string s) => s.Replace("\0", "\\0", StringComparison.Ordinal);

    private async Task AddEntryAsync(string archive, TarEntry entry, ImportOptions options, Dictionary<string, DirNode> products, Ingest ingest, CancellationToken ct)
    {
        var raw = entry.Name;
        var parts = CheckedPath(archive, raw, options);
        var type = entry.EntryType;
        var isDir = type == TarEntryType.Directory;
        if (type is not (TarEntryType.Directory or TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile
            or TarEntryType.SymbolicLink or TarEntryType.HardLink))
        {
            throw Refuse(ErrorCode.ArchiveSpecialFile, archive, raw, $"is a {type}", "products hold only files, directories and symlinks");
        }

        // Locate the product this entry belongs to.
        int productDepth = options.As is null ? 3 : 0;
        if (parts.Count <= productDepth)
        {
            if (isDir) return; // leading directories of the layout, or the stripped root
            throw Refuse(ErrorCode.ArchiveLayout, archive, raw, "is not inside a PLATFORM/NAME/VERSION directory",
                "use deployment layout, or pass --as NAME/VERSION (and --strip-components)");
        }

        var key = string.Join('/', parts.Take(productDepth));
        if (options.As is null && (!ProductRef.IsValidComponent(parts[0]) || !ProductRef.IsValidComponent(parts[1]) || !ProductRef.IsValidComponent(parts[2])))
        {
            throw Refuse(ErrorCode.ArchiveLayout, archive, raw, $"lies under '{key}', which is not PLATFORM/NAME/VERSION", "use deployment layout or pass --as NAME/VERSION");
        }

        if (!products.TryGetValue(key, out var root))
        {
            products[key] = root = new DirNode { Explicit = true };
        }

        var inner = parts.Skip(productDepth).ToList();
        var parent = ParentOf(archive, raw, root, inner);
        var name = inner[^1];
        parent.Children.TryGetValue(name, out var existing);
        if (existing is not null && !(isDir && existing is DirNode { Explicit: false }))
        {
            if (isDir && existing is DirNode) return; // tar often repeats directories; harmless
            throw Refuse(ErrorCode.ArchiveDuplicateEntry, archive, raw, "appears twice", "make the archive without duplicate entries");
        }

        switch (type)
        {
            case TarEntryType.Directory:
                if (existing is DirNode d) d.Explicit = true;
                else parent.Children[name] = new DirNode { Explicit = true };
                break;
            case TarEntryType.SymbolicLink:
                parent.Children[name] = SymbolicLink(archive, entry, options, inner.Count - 1);
                break;
            case TarEntryType.HardLink:
                var linkParts = entry.LinkName.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").Skip(options.StripComponents).ToList();
                var sameProduct = linkParts.Count > productDepth && string.Join('/', linkParts.Take(productDepth)) == key && !linkParts.Contains("..");
                var source = sameProduct ? FindFile(root, linkParts.Skip(productDepth).ToList()) : null;
                parent.Children[name] = source ?? throw Refuse(ErrorCode.ArchiveHardlinkEscape, archive, raw,
                    $"is a hard link to '{Printable(entry.LinkName)}', which is not an earlier file of the same product", "replace the hard link with a copy");
                break;
            default:
                var executable = (entry.Mode & UnixFileMode.UserExecute) != 0;
                var data = entry.DataStream ?? Stream.Null;
                var stored = await ingest.AddFileAsync(raw, data, entry.Length, executable, ct).ConfigureAwait(false);
                parent.Children[name] = new FileNode(stored);
                break;
        }
    }

    /// <summary>The entry's path components after --strip-components; refuses absolute, climbing, too deep or badly named paths.</summary>
    private static List<string> CheckedPath(string archive, string raw, ImportOptions options)
    {
        if (raw.Contains('\0', StringComparison.Ordinal) || raw.Contains('\\', StringComparison.Ordinal))
        {
            throw Refuse(ErrorCode.ArchiveBadName, archive, raw, "has a NUL or backslash in its name", "rename the entry");
        }

        if (raw.StartsWith('/'))
        {
            throw Refuse(ErrorCode.ArchiveAbsolutePath, archive, raw, "has an absolute path", "make the archive with relative paths (tar -C DIR .)");
        }

        var parts = raw.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToList();
        if (parts.Contains(".."))
        {
            throw Refuse(ErrorCode.ArchivePathTraversal, archive, raw, "climbs out with '..'", "remove the entry from the archive");
        }

        if (parts.Count > options.Limits.MaxDepth)
        {
            throw Refuse(ErrorCode.ArchiveTooDeep, archive, raw, $"is deeper than {options.Limits.MaxDepth} levels", "flatten the tree");
        }

        foreach (var part in parts)
        {
            if (TreeCodec.ValidateName(part) is { } problem)
            {
                throw Refuse(ErrorCode.ArchiveBadName, archive, raw, $"has a bad name: {problem}", "rename the entry");
            }
        }

        return parts.Skip(options.StripComponents).ToList();
    }

    /// <summary>The directory an entry at <paramref name="inner"/> goes into, made as needed; never through a symlink or below a file.</summary>
    private static DirNode ParentOf(string archive, string raw, DirNode root, List<string> inner)
    {
        var parent = root;
        for (var i = 0; i < inner.Count - 1; i++)
        {
            parent.Children.TryGetValue(inner[i], out var next);
            switch (next)
            {
                case null:
                    var created = new DirNode();
                    parent.Children[inner[i]] = created;
                    parent = created;
                    break;
                case DirNode d:
                    parent = d;
                    break;
                case LinkNode:
                    throw Refuse(ErrorCode.ArchiveThroughSymlink, archive, raw, $"would be written through the symlink '{string.Join('/', inner.Take(i + 1))}'", "remove the entry or the symlink");
                default:
                    throw Refuse(ErrorCode.ArchiveLayout, archive, raw, $"lies below the file '{string.Join('/', inner.Take(i + 1))}'", "fix the archive");
            }
        }

        return parent;
    }

    /// <summary>A symlink that stays within its product (any target in a root file system, which links absolutely).</summary>
    private static LinkNode SymbolicLink(string archive, TarEntry entry, ImportOptions options, int depth)
    {
        var target = entry.LinkName;
        if (target.Length == 0 || target.Contains('\0', StringComparison.Ordinal) ||
            (!options.RootFileSystem && (target.StartsWith('/') || EscapesRoot(depth, target))))
        {
            throw Refuse(ErrorCode.ArchiveSymlinkEscape, archive, entry.Name, $"is a symlink to '{Printable(target)}', outside the product", "products may only link within themselves, with relative links");
        }

        return new LinkNode(target);
    }

    private static FileNode? FindFile(DirNode root, List<string> path)
    {
        Node current = root;
        foreach (var part in path)
        {
            if (current is not DirNode d || !d.Children.TryGetValue(part, out var next)) return null;
            current = next;
        }

        return current as FileNode;
    }

    /// <summary>True when a relative target, followed lexically from a link at the given depth, climbs above the product root.</summary>
    private static bool EscapesRoot(int linkDirectoryDepth, string target)
    {
        var depth = linkDirectoryDepth;
        foreach (var part in target.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".") continue;
            depth += part == ".." ? -1 : 1;
            if (depth < 0) return true;
        }

        return false;
    }

    /// <summary>Counts bytes; enforces a total size and a compression ratio against the compressed bytes consumed.</summary>
    private sealed class MeteredStream(Stream inner, long maxBytes, Func<long>? compressedCount) : Stream
    {
        public long Count { get; private set; }
        public double MaxRatio { get; init; } = double.PositiveInfinity;
        public string ArchiveName { get; init; } = "";

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            Account(n);
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            Account(n);
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private void Account(int n)
        {
            Count += n;
            if (Count > maxBytes)
            {
                throw new CairnException(ErrorCode.ArchiveTooLarge, $"refusing '{ArchiveName}': it unpacks to more than {maxBytes} bytes; nothing was imported",
                    "raise --max-size if the archive is genuine");
            }

            if (compressedCount is not null && Count > (16 << 20))
            {
                var ratio = Count / (double)Math.Max(1, compressedCount());
                if (ratio > MaxRatio)
                {
                    throw new CairnException(ErrorCode.ArchiveCompressionRatio,
                        $"refusing '{ArchiveName}': it expands {ratio:0}× (limit {MaxRatio:0}×), like a decompression bomb; nothing was imported",
                        "raise --max-ratio if the archive is genuine");
                }
            }
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Count; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
