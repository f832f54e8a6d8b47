using System.CommandLine;
using Cairn.Repository.FileSystem;
using Cairn.Repository.S3;

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
            var target = ctx.Parse.GetValue(path) ?? ctx.RepositoryPath;
            if (S3Location.IsS3(target))
            {
                await using var bucket = await S3Repository.InitAsync(target, ctx.Parse.GetValue(name), ctx.Parse.GetValue(platform), ctx.Time, ctx.Logger,
                    TimeSpan.FromSeconds(ctx.Parse.GetValue(GlobalOptions.LockTimeout)), ct, ctx.Signer());
                var first = await bucket.HeadAsync(ct);
                var display = S3Location.Parse(target).Display;
                ctx.Write(new InitOutput(display, first.Repository, bucket.DefaultPlatform, first.Revision), CliJson.Default.InitOutput,
                    o => o.WriteLine($"initialised repository '{first.Repository}' at {display} (platform {bucket.DefaultPlatform})"));
                return 0;
            }

            await using var repo = await DirectoryRepository.InitAsync(target, ctx.Parse.GetValue(name), ctx.Parse.GetValue(platform), ctx.Time, ctx.Logger, ct, ctx.Signer());
            var head = await repo.HeadAsync(ct);
            ctx.Write(new InitOutput(Path.GetFullPath(target), head.Repository, repo.DefaultPlatform, head.Revision), CliJson.Default.InitOutput,
                o => o.WriteLine($"initialised repository '{head.Repository}' at {Path.GetFullPath(target)} (platform {repo.DefaultPlatform})"));
            return 0;
        });
        return command;
    }
}

/// <summary>cairn init --json.</summary>
public sealed record InitOutput(string Path, string Name, string Platform, long Revision);
