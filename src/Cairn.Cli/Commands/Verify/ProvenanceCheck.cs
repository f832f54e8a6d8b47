using Cairn.Core;
using Cairn.Trust;
using Cairn.Trust.Provenance;

namespace Cairn.Cli.Commands.Verify;

/// <summary>cairn verify --provenance: every product of the head against a provenance policy (docs/format/provenance.md §6).</summary>
internal static class ProvenanceCheck
{
    public const string DefaultPolicyFile = "provenance-policy.json";

    public static async Task<int> RunAsync(CliContext ctx, string? policyPath, CancellationToken ct)
    {
        var policy = LoadPolicy(policyPath, ManifestVerifier.DefaultStateDirectory);
        var verifier = new ProvenanceVerifier(policy);
        await using var repo = await ctx.OpenRepositoryAsync(ct);
        var manifest = await repo.HeadAsync(ct);
        var catalog = await repo.CatalogAsync(manifest, ct);
        var checks = await ProductProvenance.VerifyAllAsync(repo, manifest, catalog, verifier, ct);
        var results = checks.Select(c => c.Verified is { } v
            ? new ProvenanceProductOutput(c.Record.PathInRepository, c.Record.Root.ToString(), true, v.Builders, null, null)
            : new ProvenanceProductOutput(c.Record.PathInRepository, c.Record.Root.ToString(), false, [], c.Refusal!.CodeName, c.Refusal.Message)).ToList();
        var first = checks.FirstOrDefault(c => c.Refusal is not null)?.Refusal;

        var output = new ProvenanceOutput(first is null, manifest.Revision, results);
        ctx.Write(output, CliJson.Default.ProvenanceOutput, o =>
        {
            foreach (var r in results)
            {
                o.WriteLine(r.Ok ? $"ok      {r.Product} ({string.Join(", ", r.Builders)})" : $"REFUSED {r.Product}: {r.Code} {r.Message}");
            }

            o.WriteLine(first is null
                ? $"ok: provenance of {results.Count} products in revision {manifest.Revision} verified"
                : $"FAILED: {results.Count(r => !r.Ok)} of {results.Count} products refused");
        });
        if (first is null) return 0;
        ctx.Error.WriteLine($"cairn: error {first.CodeName}: {first.Message}");
        if (first.Hint is not null) ctx.Error.WriteLine($"  hint: {first.Hint}");
        return ErrorCodes.ExitCode(first.Code);
    }

    /// <summary>--policy FILE; else $CAIRN_STATE/provenance-policy.json; else this host's own builder key (any builder id it signed).</summary>
    internal static ProvenancePolicy LoadPolicy(string? path, string stateDirectory)
    {
        if (path is not null) return ProvenancePolicy.Load(path);
        var saved = Path.Combine(stateDirectory, DefaultPolicyFile);
        if (File.Exists(saved)) return ProvenancePolicy.Load(saved);
        var own = BuilderKeys.LocalKeyPath(stateDirectory) + ".pub";
        if (File.Exists(own)) return ProvenancePolicy.OneBuilder(ProvenancePolicy.AnyBuilder, Keys.ReadPublic(own));
        throw new CairnException(ErrorCode.ProvenancePolicyInvalid, $"no provenance policy: no --policy, no {saved}, and this host has no builder key ({own})",
            "pass --policy FILE naming the builders you trust (docs/format/provenance.md §6)");
    }
}

/// <summary>cairn verify --provenance --json.</summary>
public sealed record ProvenanceOutput(bool Ok, long Revision, IReadOnlyList<ProvenanceProductOutput> Products);

/// <param name="Builders">The trusted builders that attest it (build and PASSED).</param>
public sealed record ProvenanceProductOutput(string Product, string Root, bool Ok, IReadOnlyList<string> Builders, string? Code, string? Message);
