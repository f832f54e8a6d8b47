using System.CommandLine;
using Cairn.Core;
using Cairn.Repository;

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
            try
            {
                await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
                {
                    await new Exporter(repo.Trees).ExportAsync(records, stream, ct);
                }

                // The tarball appears under its name only when complete.
                File.Move(temp, path, overwrite: true);
            }
            catch
            {
                File.Delete(temp);
                throw;
            }

            ctx.Write(new ExportOutput(path, [.. records.Select(r => r.PathInRepository)], new FileInfo(path).Length), CliJson.Default.ExportOutput,
                o => o.WriteLine($"exported {string.Join(", ", records.Select(r => r.Ref))} to {path} ({Units.Bytes(new FileInfo(path).Length)})"));
            return 0;
        });
        return command;
    }
}

/// <param name="Products">PLATFORM/NAME/VERSION of each product in the tarball.</param>
public sealed record ExportOutput(string Output, IReadOnlyList<string> Products, long Bytes);
