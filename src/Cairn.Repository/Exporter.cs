using System.Formats.Tar;
using Cairn.Core;
using ZstdSharp;

namespace Cairn.Repository;

/// <summary>
/// Writes products as a .tar.zst in deployment layout (&lt;platform&gt;/&lt;name&gt;/&lt;version&gt;/…) that plain
/// `tar --zstd -xf` unpacks. Deterministic: fixed owner, fixed mtime (the product's publish time), sorted entries.
/// </summary>
public sealed class Exporter(TreeWalker trees)
{
    public async Task ExportAsync(IReadOnlyList<ProductRecord> products, Stream output, CancellationToken ct)
    {
        await using var zstd = new CompressionStream(output, ObjectCodec.Level, leaveOpen: true);
        zstd.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_nbWorkers, Environment.ProcessorCount);
        await using (var tar = new TarWriter(zstd, TarEntryFormat.Gnu, leaveOpen: true))
        {
            var directories = new HashSet<string>(StringComparer.Ordinal);
            foreach (var product in products.OrderBy(p => p.PathInRepository, StringComparer.Ordinal))
            {
                var mtime = product.PublishedAt;
                var prefix = "";
                foreach (var part in new[] { product.Platform, product.Name, product.Version })
                {
                    prefix += part + "/";
                    if (directories.Add(prefix)) await tar.WriteEntryAsync(Entry(TarEntryType.Directory, prefix, 0x1ED, mtime), ct).ConfigureAwait(false);
                }

                await foreach (var (relative, entry) in trees.WalkAsync(product.Root, ct).ConfigureAwait(false))
                {
                    var name = prefix + relative;
                    switch (entry.Kind)
                    {
                        case EntryKind.Directory:
                            await tar.WriteEntryAsync(Entry(TarEntryType.Directory, name + "/", 0x1ED, mtime), ct).ConfigureAwait(false);
                            break;
                        case EntryKind.Symlink:
                            var link = Entry(TarEntryType.SymbolicLink, name, 0x1FF, mtime);
                            link.LinkName = entry.Target!;
                            await tar.WriteEntryAsync(link, ct).ConfigureAwait(false);
                            break;
                        default:
                            var file = Entry(TarEntryType.RegularFile, name, entry.Executable ? 0x1ED : 0x1A4, mtime);
                            var content = new MemoryStream(checked((int)entry.Size));
                            await trees.CopyContentAsync(entry, content, ct).ConfigureAwait(false);
                            content.Position = 0;
                            file.DataStream = content;
                            await tar.WriteEntryAsync(file, ct).ConfigureAwait(false);
                            break;
                    }
                }
            }
        }
    }

    // GNU format, not PAX: .NET names PAX header entries after the process id, which would make two exports of
    // the same product differ. GNU long-name entries have fixed names; all times are the whole-second publish time.
    private static GnuTarEntry Entry(TarEntryType type, string name, int mode, DateTimeOffset mtime)
    {
        var time = DateTimeOffset.FromUnixTimeSeconds(mtime.ToUnixTimeSeconds());
        return new GnuTarEntry(type, name)
        {
            Mode = (UnixFileMode)mode,
            Uid = 0,
            Gid = 0,
            UserName = "root",
            GroupName = "root",
            ModificationTime = time,
            AccessTime = time,
            ChangeTime = time,
        };
    }
}
