using System.CommandLine;

namespace Cairn.Cli.Commands.Tag;

public static class TagCommand
{
    public static Command Create()
    {
        var name = new Argument<string?>("name") { Description = "Tag (channel) name, e.g. stable", Arity = ArgumentArity.ZeroOrOne };
        var revision = new Argument<long?>("revision") { Description = "Revision to tag (default: the head)", Arity = ArgumentArity.ZeroOrOne };
        var delete = new Option<bool>("--delete", "-d") { Description = "Remove the tag" };
        var command = new Command("tag", "List tags, or point a tag (channel) at a revision") { name, revision, delete };
        command.SetHandler(async (ctx, ct) =>
        {
            var tagName = ctx.Parse.GetValue(name);
            if (tagName is null)
            {
                await using var reader = await ctx.OpenRepositoryAsync(ct);
                var head = await reader.HeadAsync(ct);
                ctx.Write(head.Tags, CliJson.Default.IReadOnlyDictionaryStringInt64, o =>
                {
                    foreach (var (tag, rev) in head.Tags) o.WriteLine($"{tag}\t{rev}");
                });
                return 0;
            }

            await using var repo = await ctx.OpenWritableRepositoryAsync("tag", ct);
            long? target = ctx.Parse.GetValue(delete) ? null : ctx.Parse.GetValue(revision) ?? (await repo.HeadAsync(ct)).Revision;
            var manifest = await repo.TagAsync(tagName, target, ct);
            ctx.Write(manifest, CliJson.Default.Manifest, o => o.WriteLine($"revision {manifest.Revision}: {manifest.Message}"));
            return 0;
        });
        return command;
    }
}
