using System.CommandLine;
using Cairn.Repository;

namespace Cairn.Cli.Commands.Gc;

public static class GcCommand
{
    public static Command Create()
    {
        var dryRun = new Option<bool>("--dry-run", "-n") { Description = "Report what would be deleted, delete nothing" };
        var keep = new Option<int>("--keep") { Description = "Keep the newest N revisions (tagged revisions are always kept)", DefaultValueFactory = _ => 10 };
        var command = new Command("gc", "Delete old revisions and the objects no kept revision reaches") { dryRun, keep };
        command.SetHandler(async (ctx, ct) =>
        {
            await using var repo = await ctx.OpenWritableRepositoryAsync("gc", ct);
            var result = await new GarbageCollector(repo).CollectAsync(ctx.Parse.GetValue(keep), ctx.Parse.GetValue(dryRun), ct);
            ctx.Write(result, CliJson.Default.GcResult, o => o.WriteLine(
                $"{(result.DryRun ? "would remove" : "removed")} {result.RevisionsRemoved.Count} revisions and {result.Objects.ObjectsDeleted} objects ({Units.Bytes(result.Objects.BytesDeleted)}); kept {result.RevisionsKept} revisions, {result.Objects.ObjectsKept} objects"));
            return 0;
        });
        return command;
    }
}
