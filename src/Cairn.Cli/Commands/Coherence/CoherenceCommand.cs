using System.CommandLine;
using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Gateway.Client;

namespace Cairn.Cli.Commands.Coherence;

/// <summary>cairn coherence: whether the sites that built a product agree, and where they do not (docs/coordination.md).</summary>
public static class CoherenceCommand
{
    public static Command Create()
    {
        var product = new Argument<string?>("product")
        {
            Description = "PLATFORM/NAME[/VERSION] or NAME[/VERSION] (default: every build key the gateway knows)",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var gateway = new Option<string?>("--gateway") { Description = "The gateway's URL (default: $CAIRN_GATEWAY)" };
        var key = new Option<string?>("--key") { Description = "Report one build key instead of a product" };
        var command = new Command("coherence", "Show whether the sites that built a product agree: output roots, checks, differing files and tests")
        {
            product, gateway, key,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            var url = ctx.Parse.GetValue(gateway) ?? Environment.GetEnvironmentVariable("CAIRN_GATEWAY")
                ?? throw new CairnException(ErrorCode.Usage, "no gateway given", "pass --gateway URL or set CAIRN_GATEWAY");
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri))
            {
                throw new CairnException(ErrorCode.Usage, $"'{url}' is not a gateway URL", "pass --gateway http(s)://HOST:PORT");
            }

            using var client = new GatewayClient(uri, token: null);
            IReadOnlyList<GatewayCoherence> reports = ctx.Parse.GetValue(key) is { } k
                ? [await client.GetCoherenceAsync(k, ct)]
                : await client.FindCoherenceAsync(ctx.Parse.GetValue(product), ct);
            ctx.Write(reports, CliJson.Default.IReadOnlyListGatewayCoherence, o =>
            {
                if (reports.Count == 0) o.WriteLine("no results recorded");
                foreach (var r in reports) Print(o, r);
            });

            // A disagreement is a finding, not a failure of the command: scripts read the status from --json.
            return 0;
        });
        return command;
    }

    public static void Print(TextWriter o, GatewayCoherence coherence)
    {
        var report = coherence.Report;
        var product = report.Results.Count > 0 ? report.Results[0].Product : "?";
        o.WriteLine($"{product}  build key {report.BuildKey}");
        o.WriteLine($"  status: {Status(report.Status)}");
        if (report.ReferenceRoot is { } reference) o.WriteLine($"  reference root: {reference}");
        o.WriteLine($"  agreeing sites: {(report.AgreeingSites.Count == 0 ? "none" : string.Join(", ", report.AgreeingSites))}");
        o.WriteLine($"  promoted to: {(coherence.Promotions.Count == 0 ? "nothing" : string.Join(", ", coherence.Promotions.Select(p => $"{p.Channel} ({p.AgreeingSites} sites, {p.PromotedAt:u})")))}");
        foreach (var r in report.Results)
        {
            o.WriteLine($"  site {r.Site}: root {r.OutputRoot?.ToString() ?? "none"}, checks {r.Checks.Passed} passed / {r.Checks.Failed} failed / {r.Checks.Skipped} skipped, {r.Duration.TotalSeconds:0} s");
        }

        foreach (var d in report.Disagreements)
        {
            o.WriteLine($"  ✗ {d.Site} disagrees: {d.Reason}");
            o.WriteLine($"    environment: {d.Environment}");
            var files = coherence.Files.FirstOrDefault(f => f.Site == d.Site);
            if (files is null) continue;
            o.WriteLine($"    {files.Files.Count} differing file(s){(files.Truncated ? " (list truncated)" : "")}:");
            foreach (var f in files.Files)
            {
                o.WriteLine($"      {f.Kind,-8} {f.Path}  {Size(f.ReferenceSize)} → {Size(f.OtherSize)}  {f.ReferenceDigest?.Abbreviated ?? "-"} → {f.OtherDigest?.Abbreviated ?? "-"}");
                if (f.TextDiff is { } diff)
                {
                    foreach (var line in diff.TrimEnd('\n').Split('\n')) o.WriteLine($"        {line}");
                }
            }
        }

        foreach (var t in report.TestDifferences)
        {
            o.WriteLine($"  test {t.Test}: {string.Join(", ", t.BySite.Select(kv => $"{kv.Key} {kv.Value.ToString().ToLowerInvariant()}"))}");
        }

        o.WriteLine();
    }

    private static string Status(CoherenceStatus status) => status switch
    {
        CoherenceStatus.Agreement => "agreement",
        CoherenceStatus.Disagreement => "DISAGREEMENT (not promoted)",
        CoherenceStatus.Failing => "failing on every site",
        _ => "no results",
    };

    private static string Size(long? size) => size is { } s ? Units.Bytes(s) : "-";
}
