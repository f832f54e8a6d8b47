using System.CommandLine;
using Cairn.Repository;
using Cairn.Repository.Backends;
using Cairn.Repository.Replication;

namespace Cairn.Cli.Commands.Replicate;

public static class ReplicateCommand
{
    public static Command Create()
    {
        var source = new Argument<string>("source") { Description = "Repository to copy: http(s) URL of a server, directory, or s3:// URL" };
        var destination = new Argument<string>("dest") { Description = "Mirror to create or bring up to date: directory or s3:// URL" };
        var command = new Command("replicate", "Make or update a mirror: copies missing packs, then revisions, then the manifest (resumable, verified)") { source, destination };
        command.SetHandler(async (ctx, ct) =>
        {
            using var from = RepositoryOpener.OpenMirror(RepositoryLocation.Parse(ctx.Parse.GetValue(source)!), writable: false);
            using var to = RepositoryOpener.OpenMirror(RepositoryLocation.Parse(ctx.Parse.GetValue(destination)!), writable: true);
            var result = await new Replicator(from, to, ctx.Logger).RunAsync(ct);
            ctx.Write(result, CliJson.Default.ReplicateResult, o => o.WriteLine(
                $"{to.Display} at revision {result.Revision}{(result.HeadMoved ? "" : " (head unchanged)")}: copied {result.PacksCopied} packs and {result.RevisionsCopied} revisions ({Units.Bytes(result.BytesCopied)}), {result.PacksPresent} packs already there"));
            return 0;
        });
        return command;
    }
}
