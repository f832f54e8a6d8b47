using System.CommandLine;
using Cairn.Core;

namespace Cairn.Cli.Commands.Show;

public static class ShowCommand
{
    public static Command Create()
    {
        var product = ProductArguments.One();
        var platform = ProductArguments.Platform();
        var revision = ProductArguments.Revision();
        var command = new Command("show", "Show a product's metadata and files") { product, platform, revision, ProductArguments.Cache() };
        command.SetHandler(async (ctx, ct) =>
        {
            await using var repo = await ctx.OpenRepositoryAsync(ct);
            var record = await repo.FindAsync(ProductArguments.Parse(ctx.Parse.GetValue(product)!), ctx.Parse.GetValue(platform), ctx.Parse.GetValue(revision), ct);
            var files = new List<ShowFile>();
            var lines = new List<string>();
            await foreach (var (path, e) in repo.Trees.WalkAsync(record.Root, ct))
            {
                var kind = e.Kind switch { EntryKind.Directory => "dir", EntryKind.Symlink => "symlink", _ => "file" };
                files.Add(new ShowFile(path, kind, e.Kind == EntryKind.Directory ? null : e.Size, e.Executable, e.Target, e.Kind == EntryKind.Symlink ? null : e.Digest.ToString()));
                lines.Add(e.Kind switch
                {
                    EntryKind.Directory => $"  {"",10}  {path}/",
                    EntryKind.Symlink => $"  {"",10}  {path} -> {e.Target}",
                    _ => $"  {e.Size,10}  {path}{(e.Executable ? "*" : "")}",
                });
            }

            ctx.Write(new ShowOutput(record, files), CliJson.Default.ShowOutput, o =>
            {
                o.WriteLine($"{record.PathInRepository}");
                o.WriteLine($"  root:         {record.Root}");
                o.WriteLine($"  size:         {Units.Bytes(record.Size)} in {record.Files} files");
                o.WriteLine($"  build key:    {record.BuildKey ?? "-"}");
                o.WriteLine($"  dependencies: {(record.Dependencies.Count == 0 ? "-" : string.Join(", ", record.Dependencies))}");
                o.WriteLine($"  tests:        {(record.Tests is { } t ? $"{t.Passed} passed, {t.Failed} failed, {t.Skipped} skipped" : "-")}");
                o.WriteLine($"  published:    {record.PublishedAt:u} by {record.PublishedBy}");
                if (record.Log is { } log) o.WriteLine($"  build log:    {log} (in the repository tree)");
                foreach (var r in record.Replaced ?? [])
                {
                    o.WriteLine($"  replaced:     {r.At:u} by {r.By} (was {r.PreviousRoot.Abbreviated}): {r.Reason}");
                }

                foreach (var line in lines) o.WriteLine(line);
            });
            return 0;
        });
        return command;
    }
}

/// <summary>cairn show --json.</summary>
public sealed record ShowOutput(ProductRecord Product, IReadOnlyList<ShowFile> Files);

/// <param name="Kind">dir, symlink or file.</param>
/// <param name="Size">Null (left out) for directories.</param>
/// <param name="Digest">Null (left out) for symlinks.</param>
public sealed record ShowFile(string Path, string Kind, long? Size, bool Executable, string? Target, string? Digest);
