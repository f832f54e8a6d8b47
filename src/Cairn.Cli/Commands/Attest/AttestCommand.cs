using System.CommandLine;
using Cairn.Trust.Provenance;

namespace Cairn.Cli.Commands.Attest;

/// <summary>cairn attest: a product's signed provenance and test results (docs/format/provenance.md).</summary>
public static class AttestCommand
{
    public static Command Create() => new("attest", "Show the signed provenance and test results of products") { Show() };

    private static Command Show()
    {
        var product = ProductArguments.One();
        var platform = ProductArguments.Platform();
        var revision = ProductArguments.Revision();
        var command = new Command("show", "Show a product's statements (who built it from what, which tests passed); 'cairn verify --provenance' checks them")
        {
            product, platform, revision, ProductArguments.Cache(),
        };
        command.SetHandler(async (ctx, ct) =>
        {
            await using var repo = await ctx.OpenRepositoryAsync(ct);
            var manifest = await repo.RevisionAsync(ctx.Parse.GetValue(revision), ct);
            var record = await repo.FindAsync(ProductArguments.Parse(ctx.Parse.GetValue(product)!), ctx.Parse.GetValue(platform), manifest.Revision, ct);
            var views = await ProductProvenance.DescribeAsync(repo, manifest, record, ct);
            var output = new AttestOutput(record.PathInRepository, record.Root.ToString(), record.Attestations, views);
            ctx.Write(output, CliJson.Default.AttestOutput, o =>
            {
                o.WriteLine($"{record.PathInRepository} root {record.Root}");
                if (views.Count == 0) o.WriteLine("  no attestations (published without cairn build, or before attestations existed)");
                else o.WriteLine($"  {views.Count} statement(s) in {record.Attestations} (unverified here: run 'cairn verify --provenance')");
                foreach (var v in views)
                {
                    var digestNote = v.SubjectDigest == record.Root.ToString() ? "" : $" — subject digest {v.SubjectDigest ?? "(none)"} differs from the product's root!";
                    o.WriteLine($"  - {v.PredicateType}{digestNote}");
                    o.WriteLine($"    signed by:    {string.Join(", ", v.KeyIds)}");
                    if (v.Builder is not null) o.WriteLine($"    builder:      {v.Builder}");
                    if (v.StartedOn is not null) o.WriteLine($"    built:        {v.StartedOn} – {v.FinishedOn} (invocation {v.InvocationId})");
                    if (v.BuildKey is not null) o.WriteLine($"    build key:    {v.BuildKey}");
                    if (v.Dependencies is { Count: > 0 } deps) o.WriteLine($"    inputs:       {string.Join(", ", deps)}");
                    if (v.Result is not null)
                    {
                        o.WriteLine($"    tests:        {v.Result}, {v.PassedTests} passed, {v.FailedTests?.Count ?? 0} failed{(v.FailedTests is { Count: > 0 } f ? $" ({string.Join(", ", f)})" : "")}");
                    }
                }
            });
            return 0;
        });
        return command;
    }
}

/// <summary>cairn attest show --json.</summary>
public sealed record AttestOutput(string Product, string Root, string? Attestations, IReadOnlyList<AttestationView> Statements);
