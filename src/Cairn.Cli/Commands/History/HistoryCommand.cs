using System.CommandLine;
using Cairn.Core;

namespace Cairn.Cli.Commands.History;

public static class HistoryCommand
{
    public static Command Create()
    {
        var command = new Command("history", "List the kept revisions, newest first") { ProductArguments.Cache() };
        command.SetHandler(async (ctx, ct) =>
        {
            await using var repo = await ctx.OpenRepositoryAsync(ct);
            var list = new List<Manifest>();
            await foreach (var m in repo.Revisions.ListRevisionsAsync(ct)) list.Add(m);
            list.Reverse();
            var head = await repo.HeadAsync(ct);
            ctx.Write(new HistoryOutput(head.Revision, list), CliJson.Default.HistoryOutput, o =>
            {
                foreach (var m in list)
                {
                    var tags = head.Tags.Where(t => t.Value == m.Revision).Select(t => t.Key).ToList();
                    o.WriteLine($"{(m.Revision == head.Revision ? "*" : " ")} {m.Revision,6}  {m.Timestamp:yyyy-MM-dd HH:mm:ss}Z  {m.Root.Abbreviated}  {m.Message}{(tags.Count > 0 ? $"  [{string.Join(", ", tags)}]" : "")}");
                }
            });
            return 0;
        });
        return command;
    }
}

/// <summary>cairn history --json: the head revision and the kept revisions, newest first.</summary>
public sealed record HistoryOutput(long Head, IReadOnlyList<Manifest> Revisions);
