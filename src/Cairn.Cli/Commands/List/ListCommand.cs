using System.CommandLine;
using Cairn.Core;

namespace Cairn.Cli.Commands.List;

public static class ListCommand
{
    public static Command Create()
    {
        var name = new Argument<string?>("name") { Description = "Only products with this name", Arity = ArgumentArity.ZeroOrOne };
        var revision = ProductArguments.Revision();
        var tag = new Option<string?>("--tag", "-t") { Description = "Read the revision a tag (channel) points at" };
        var command = new Command("list", "List published products") { name, revision, tag, ProductArguments.Cache() };
        command.SetHandler(async (ctx, ct) =>
        {
            await using var repo = await ctx.OpenRepositoryAsync(ct);
            var rev = ctx.Parse.GetValue(revision);
            if (ctx.Parse.GetValue(tag) is { } t)
            {
                rev = await repo.ResolveTagAsync(t, ct) ?? throw new Core.CairnException(Core.ErrorCode.TagNotFound, $"tag '{t}' does not exist", "run 'cairn tag' to list tags");
            }

            var manifest = await repo.RevisionAsync(rev, ct);
            var catalog = await repo.CatalogAsync(manifest, ct);
            var filter = ctx.Parse.GetValue(name);
            var products = catalog.Products.Where(p => filter is null || p.Name == filter).ToList();
            ctx.Write(new ListOutput(manifest.Revision, products), CliJson.Default.ListOutput, o =>
            {
                foreach (var p in products)
                {
                    o.WriteLine($"{p.Platform}/{p.Name}/{p.Version}\t{p.Root.Abbreviated}\t{p.Files} files\t{Units.Bytes(p.Size)}\t{p.PublishedAt:yyyy-MM-dd HH:mm}Z\t{p.PublishedBy}");
                }
            });
            return 0;
        });
        return command;
    }
}

/// <summary>cairn list --json.</summary>
public sealed record ListOutput(long Revision, IReadOnlyList<ProductRecord> Products);
