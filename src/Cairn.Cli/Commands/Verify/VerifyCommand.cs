using System.CommandLine;
using System.Text.Json.Serialization;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Cli.Commands.Verify;

public static class VerifyCommand
{
    public static Command Create()
    {
        var full = new Option<bool>("--full") { Description = "Re-read and re-hash every object (default: check presence and sizes)" };
        var provenance = new Option<bool>("--provenance") { Description = "Check instead every product's signed provenance and test result against a policy (docs/format/provenance.md)" };
        var policy = new Option<string?>("--policy") { Description = "With --provenance: the trusted builders (default: $CAIRN_STATE/provenance-policy.json, else this host's builder key)" };
        var command = new Command("verify", "Check that every kept revision is complete and sound") { full, provenance, policy, ProductArguments.Cache() };
        command.SetHandler(async (ctx, ct) =>
        {
            if (ctx.Parse.GetValue(provenance)) return await ProvenanceCheck.RunAsync(ctx, ctx.Parse.GetValue(policy), ct);
            await using var repo = await ctx.OpenRepositoryAsync(ct);
            var progress = ctx.Progress("verifying", 0);
            var report = await new Verifier(repo).VerifyAsync(ctx.Parse.GetValue(full), progress, ct);
            ctx.EndProgress(progress);
            var output = new VerifyOutput(report.Ok, report.Revisions, report.ObjectsChecked, report.BytesChecked,
                [.. report.Problems.Select(p => new VerifyProblemOutput(ErrorCodes.Name(p.Code), p.ObjectDigest.ToString(), p.Message, p.Products))]);
            ctx.Write(output, CliJson.Default.VerifyOutput, o =>
            {
                foreach (var p in report.Problems)
                {
                    o.WriteLine($"{ErrorCodes.Name(p.Code)} {p.Message}");
                    o.WriteLine($"    breaks: {(p.Products.Count == 0 ? "(no kept product)" : string.Join(", ", p.Products))}");
                }

                o.WriteLine(report.Ok
                    ? $"ok: {report.Revisions} revisions, {report.ObjectsChecked} objects checked"
                    : $"FAILED: {report.Problems.Count} bad objects in {report.Revisions} revisions");
            });
            if (!report.Ok)
            {
                ctx.Error.WriteLine($"cairn: error {ErrorCodes.Name(ErrorCode.VerifyFailed)}: {report.Problems.Count} objects are missing or corrupt");
                ctx.Error.WriteLine("  hint: republish the products named above, or restore the objects from a mirror");
                return ErrorCodes.ExitCode(ErrorCode.VerifyFailed);
            }

            return 0;
        });
        return command;
    }
}

/// <summary>cairn verify --json.</summary>
public sealed record VerifyOutput(bool Ok, long Revisions, long ObjectsChecked, long BytesChecked, IReadOnlyList<VerifyProblemOutput> Problems);

/// <param name="Code">The error code's name (CAIRN-E…).</param>
/// <param name="ObjectDigest">The bad object's digest, written as "object".</param>
public sealed record VerifyProblemOutput(string Code, [property: JsonPropertyName("object")] string ObjectDigest, string Message, IReadOnlyList<string> Products);
