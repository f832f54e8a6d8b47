using System.CommandLine;
using Cairn.Fuse;

namespace Cairn.Cli.Commands.Unmount;

public static class UnmountCommand
{
    public static Command Create()
    {
        var mountPoint = new Argument<string>("MOUNTPOINT") { Description = "Where the repository is mounted" };
        var command = new Command("unmount", "Unmount a cairn mount (lazily: files still open keep working until closed, then the mount process exits)")
        {
            mountPoint,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            var target = Path.GetFullPath(ctx.Parse.GetValue(mountPoint)!);
            await FuseMount.UnmountAsync(target, ct);
            ctx.Write(new UnmountOutput(target), CliJson.Default.UnmountOutput, o => o.WriteLine($"unmounted {target}"));
            return 0;
        });
        return command;
    }
}

/// <summary>cairn unmount --json.</summary>
public sealed record UnmountOutput(string Unmounted);
