using System.CommandLine;
using Cairn.Repository;
using Cairn.Repository.Backends;

namespace Cairn.Cli.Commands.Init;

public static class InitCommand
{
    public static Command Create()
    {
        var path = new Argument<string?>("path") { Description = "Directory to create the repository in (default: --repo / $CAIRN_REPO)", Arity = ArgumentArity.ZeroOrOne };
        var name = new Option<string?>("--name") { Description = "Repository name (default: the directory name)" };
        var platform = new Option<string?>("--platform") { Description = "Default platform of products (default: this machine's, e.g. linux-x86_64)" };
        var command = new Command("init", "Create an empty repository") { path, name, platform };
        command.SetHandler(async (ctx, ct) =>
        {
            var location = RepositoryLocation.ParseWritable(ctx.Parse.GetValue(path) ?? ctx.RepositoryPath, "init");
            await using var repo = await RepositoryOpener.InitAsync(location, ctx.Parse.GetValue(name), ctx.Parse.GetValue(platform), ctx.OpenSettings(), ct);
            var head = await repo.HeadAsync(ct);
            var display = location is DirectoryLocation directory ? directory.FullPath : location.Display;
            ctx.Write(new InitOutput(display, head.Repository, repo.DefaultPlatform, head.Revision), CliJson.Default.InitOutput,
                o => o.WriteLine($"initialised repository '{head.Repository}' at {display} (platform {repo.DefaultPlatform})"));
            return 0;
        });
        return command;
    }
}

/// <summary>cairn init --json.</summary>
public sealed record InitOutput(string Path, string Name, string Platform, long Revision);
