using System.CommandLine;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Trust.Provenance;

namespace Cairn.Cli.Commands.Export;

public static class ExportCommand
{
    public static Command Create()
    {
        var products = ProductArguments.Many();
        var output = new Option<string>("--output", "-o") { Description = "Tarball to write (.tar.zst)", Required = true };
        var platform = ProductArguments.Platform();
        var revision = ProductArguments.Revision();
        var closure = new Option<bool>("--with-deps") { Description = "Also export every dependency, transitively" };
        var command = new Command("export", "Write products as a .tar.zst in deployment layout (tar --zstd -xf unpacks it)")
        {
            products, output, platform, revision, closure, ProductArguments.Cache(),
        };
        command.SetHandler(async (ctx, ct) =>
        {
            var refs = ctx.Parse.GetValue(products)!.Select(ProductArguments.Parse).ToList();
            await using var repo = await ctx.OpenRepositoryAsync(ct);
            var manifest = await repo.RevisionAsync(ctx.Parse.GetValue(revision), ct);
            var catalog = await repo.CatalogAsync(manifest, ct);
            var plat = ctx.Parse.GetValue(platform) ?? repo.DefaultPlatform;
            var records = DependencyClosure.Select(catalog, manifest.Revision, plat, refs, ctx.Parse.GetValue(closure));
            var path = Path.GetFullPath(ctx.Parse.GetValue(output)!);
            var temp = path + ".partial";
            IReadOnlyList<string> attestations;
            try
            {
                await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
                {
                    await new Exporter(repo.Trees).ExportAsync(records, stream, ct);
                }

                // The tarball appears under its name only when complete.
                File.Move(temp, path, overwrite: true);
                attestations = await WriteAttestationsAsync(repo, manifest, records, Path.GetDirectoryName(path)!, ct);
            }
            catch
            {
                File.Delete(temp);
                throw;
            }

            ctx.Write(new ExportOutput(path, [.. records.Select(r => r.PathInRepository)], new FileInfo(path).Length) { Attestations = attestations }, CliJson.Default.ExportOutput, o =>
            {
                o.WriteLine($"exported {string.Join(", ", records.Select(r => r.Ref))} to {path} ({Units.Bytes(new FileInfo(path).Length)})");
                foreach (var a in attestations) o.WriteLine($"  attestations: {a}");
            });
            return 0;
        });
        return command;
    }

    /// <summary>Each attested product's bundle as NAME-VERSION.intoto.jsonl beside the tarball, so it travels with it.</summary>
    private static async Task<IReadOnlyList<string>> WriteAttestationsAsync(ProductRepository repo, Manifest manifest, IReadOnlyList<ProductRecord> records, string directory, CancellationToken ct)
    {
        var written = new List<string>();
        foreach (var record in records)
        {
            if (await ProductProvenance.ReadAsync(repo, manifest, record, ct) is not { } bundle) continue;
            var file = Path.Combine(directory, $"{record.Name}-{record.Version}{AttestationBundle.FileSuffix}");
            await File.WriteAllBytesAsync(file + ".partial", bundle, ct);
            File.Move(file + ".partial", file, overwrite: true);
            written.Add(file);
        }

        return written;
    }
}

/// <param name="Products">PLATFORM/NAME/VERSION of each product in the tarball.</param>
public sealed record ExportOutput(string Output, IReadOnlyList<string> Products, long Bytes)
{
    /// <summary>The NAME-VERSION.intoto.jsonl files written beside the tarball.</summary>
    public IReadOnlyList<string> Attestations { get; init; } = [];
}
