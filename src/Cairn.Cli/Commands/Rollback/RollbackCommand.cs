using System.CommandLine;

namespace Cairn.Cli.Commands.Rollback;

public static class RollbackCommand
{
    public static Command Create()
    {
        var revision = new Argument<long>("revision") { Description = "Revision whose content becomes the new head" };
        var command = new Command("rollback", "Publish a new revision equal to an old one") { revision };
        command.SetHandler(async (ctx, ct) =>
        {
            await using var repo = await ctx.OpenWritableRepositoryAsync("rollback", ct);
            var manifest = await repo.RollbackAsync(ctx.Parse.GetValue(revision), ct);
            ctx.Write(manifest, CliJson.Default.Manifest, o => o.WriteLine($"revision {manifest.Revision}: {manifest.Message}"));
            return 0;
        });
        return command;
    }
}
