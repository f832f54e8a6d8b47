using System.CommandLine;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Cli.Commands.Materialize;

public static class MaterializeCommand
{
    public static Command Create()
    {
        var args = new Argument<string[]>("args") { Description = "NAME/VERSION ... DEST", Arity = new ArgumentArity(2, ArgumentArity.ZeroOrMore.MaximumNumberOfValues) };
        var platform = ProductArguments.Platform();
        var revision = ProductArguments.Revision();
        var closure = new Option<bool>("--with-deps") { Description = "Also materialize every dependency, transitively" };
        var copy = new Option<bool>("--copy") { Description = "Write writable copies instead of read-only hardlinks into the cache" };
        var cache = ProductArguments.Cache();
        var noCache = new Option<bool>("--no-cache") { Description = "Write files directly, without the unpacked-object cache" };
        var modules = new Option<bool>("--modules") { Description = "Also write each product's modulefiles to DEST/modules/<platform>/<name>/<version> (Tcl) and <version>.lua (Lmod) (then: module use DEST/modules/<platform>)" };
        var command = new Command("materialize", "Lay products out at DEST/<platform>/<name>/<version>")
        {
            args, platform, revision, closure, copy, cache, noCache, modules,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            var values = ctx.Parse.GetValue(args)!;
            var destination = values[^1];
            var refs = values[..^1].Select(ProductArguments.Parse).ToList();
            await using var repo = await ctx.OpenRepositoryAsync(ct);
            var manifest = await repo.RevisionAsync(ctx.Parse.GetValue(revision), ct);
            var catalog = await repo.CatalogAsync(manifest, ct);
            var plat = ctx.Parse.GetValue(platform) ?? repo.DefaultPlatform;
            var products = DependencyClosure.Select(catalog, manifest.Revision, plat, refs, ctx.Parse.GetValue(closure));
            var options = new MaterializeOptions
            {
                // A remote repository's verified objects are in the client cache (size-limited); files are written from it.
                CacheDirectory = ctx.Parse.GetValue(noCache) || ctx.Location is not DirectoryLocation directory ? null : CliContext.CacheDirectory(ctx.Parse.GetValue(cache), directory),
                Copy = ctx.Parse.GetValue(copy),
            };
            var progress = ctx.Progress("materializing", products.Sum(p => p.Size));
            var materializer = new Materializer(repo.Trees);
            MaterializeResult? result = null;
            foreach (var p in products)
            {
                result = await materializer.MaterializeAsync(p, destination, options, progress, ct);
            }

            var moduleFiles = new List<string>();
            if (ctx.Parse.GetValue(modules))
            {
                // The Tcl modulefile and, beside it, the Lmod (Lua) one (VERSION.lua), when the product has them.
                foreach (var path in products.SelectMany(p => new[] { $"modules/{p.Platform}/{p.Name}/{p.Version}", $"modules/{p.Platform}/{p.Name}/{p.Version}.lua" }))
                {
                    if (await repo.Trees.LookupAsync(manifest.Root, path, ct) is not { IsFile: true } entry) continue;
                    var target = Path.Combine(Path.GetFullPath(destination), path);
                    Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                    await using (var output = new FileStream(target, FileMode.Create, FileAccess.Write))
                    {
                        await repo.Trees.CopyContentAsync(entry, output, ct);
                    }

                    moduleFiles.Add(path);
                }
            }

            ctx.EndProgress(progress);
            ctx.Write(new MaterializeOutput(Path.GetFullPath(destination), [.. products.Select(p => p.PathInRepository)], result, moduleFiles), CliJson.Default.MaterializeOutput,
                o =>
                {
                    o.WriteLine($"materialized {string.Join(", ", products.Select(p => p.Ref))} into {Path.GetFullPath(destination)}: {result!.Files} files, {Units.Bytes(result.Bytes)} ({result.Linked} linked, {result.Written} written)");
                    if (moduleFiles.Count > 0) o.WriteLine($"modulefiles: {moduleFiles.Count}; module use {Path.Combine(Path.GetFullPath(destination), "modules", plat)}");
                });
            return 0;
        });
        return command;
    }
}

/// <param name="Products">PLATFORM/NAME/VERSION of each product laid out.</param>
/// <param name="Modules">The modulefiles written (paths under the destination).</param>
public sealed record MaterializeOutput(string Destination, IReadOnlyList<string> Products, MaterializeResult? Result, IReadOnlyList<string> Modules);
