using System.Globalization;
using Cairn.Core;

namespace Cairn.Trust.Provenance;

/// <summary>A product the build used, by its path in the repository tree and its root digest.</summary>
public sealed record ProductInput(string Path, Digest Root);

/// <summary>A source file the build used.</summary>
public sealed record SourceInput(string Name, string? Url, Digest Sha256);

/// <summary>Everything a build's two statements say besides the subject (docs/format/provenance.md §3–4).</summary>
public sealed record BuildFacts
{
    public required string Platform { get; init; }
    public required string Name { get; init; }
    public required string Version { get; init; }

    /// <summary>The recipe folder relative to the recipes directory, and the sha256 of its listing.</summary>
    public required string RecipePath { get; init; }
    public required Digest RecipeDigest { get; init; }

    public required string DeploymentRoot { get; init; }
    public required string DeploymentSite { get; init; }
    public required int SandboxContract { get; init; }
    public required Digest SeccompFilter { get; init; }
    public required string BuildKey { get; init; }

    public IReadOnlyList<SourceInput> Sources { get; init; } = [];

    /// <summary>Every dependency product mounted in the sandbox (transitive), with the root it had.</summary>
    public IReadOnlyList<ProductInput> Dependencies { get; init; } = [];

    public ProductInput? Environment { get; init; }

    /// <summary>The site that built (a gateway site's name; for a local build the publisher).</summary>
    public required string Site { get; init; }
    public required string CairnVersion { get; init; }
    public required string InvocationId { get; init; }
    public required DateTimeOffset StartedOn { get; init; }
    public required DateTimeOffset FinishedOn { get; init; }

    public required string LogPath { get; init; }
    public required Digest LogSha256 { get; init; }

    /// <summary>The check script (its name in the recipe folder, or "inline") and its sha256.</summary>
    public required string CheckScript { get; init; }
    public required Digest CheckScriptSha256 { get; init; }
    public IReadOnlyList<string> PassedTests { get; init; } = [];
    public IReadOnlyList<string> FailedTests { get; init; } = [];

    public string Subject => $"{Platform}/{Name}/{Version}";
}

/// <summary>
/// Writes a build's attestations: an SLSA Provenance v1 statement and an in-toto test-result statement about the
/// same subject, each in its own DSSE envelope signed by the builder's key (two statements, one bundle:
/// docs/format/provenance.md §5 says why).
/// </summary>
public static class Attester
{
    public static string Rfc3339(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    public static IReadOnlyDictionary<string, string> Sha256(Digest d) => new Dictionary<string, string> { ["sha256"] = d.ToString() };

    public static IReadOnlyDictionary<string, string> Tree(Digest d) => new Dictionary<string, string> { [InToto.TreeDigest] = d.ToString() };

    public static IReadOnlyList<StatementSubject> Subject(BuildFacts facts, Digest root)
    {
        ArgumentNullException.ThrowIfNull(facts);
        return [new StatementSubject(facts.Subject, Tree(root))];
    }

    public static ProvenanceStatement Provenance(BuildFacts facts, Digest root)
    {
        ArgumentNullException.ThrowIfNull(facts);
        var resolved = new List<ResourceDescriptor>();
        resolved.AddRange(facts.Sources.Select(s => new ResourceDescriptor(Name: s.Name, Uri: s.Url ?? InToto.SourceUri + s.Name, Digest: Sha256(s.Sha256))));
        resolved.AddRange(facts.Dependencies.OrderBy(d => d.Path, StringComparer.Ordinal)
            .Select(d => new ResourceDescriptor(Name: d.Path, Uri: InToto.ProductUri + d.Path, Digest: Tree(d.Root))));
        if (facts.Environment is { } env) resolved.Add(new ResourceDescriptor(Name: env.Path, Uri: InToto.EnvironmentUri + env.Path, Digest: Tree(env.Root)));
        resolved.Add(new ResourceDescriptor(Name: facts.RecipePath, Uri: InToto.RecipeUri + facts.RecipePath, Digest: Sha256(facts.RecipeDigest)));

        var definition = new BuildDefinition(InToto.BuildType,
            new CairnExternalParameters(new RecipeParameter(facts.RecipePath, Sha256(facts.RecipeDigest)), facts.Name, facts.Version, facts.Platform,
                facts.DeploymentRoot, facts.DeploymentSite),
            new CairnInternalParameters(facts.SandboxContract, Sha256(facts.SeccompFilter), facts.BuildKey),
            resolved);
        var run = new RunDetails(new BuilderIdentity(InToto.BuilderId(facts.Site), new Dictionary<string, string> { ["cairn"] = facts.CairnVersion }),
            new BuildMetadata(facts.InvocationId, Rfc3339(facts.StartedOn), Rfc3339(facts.FinishedOn)),
            [new ResourceDescriptor(Name: "build.log", Uri: InToto.LogUri + facts.LogPath, Digest: Sha256(facts.LogSha256), MediaType: "text/plain")]);
        return new ProvenanceStatement(InToto.StatementType, Subject(facts, root), InToto.SlsaProvenanceType, new SlsaProvenance(definition, run));
    }

    public static TestResultStatement TestResult(BuildFacts facts, Digest root)
    {
        ArgumentNullException.ThrowIfNull(facts);
        var predicate = new TestResultPredicate(facts.FailedTests.Count == 0 ? InToto.Passed : InToto.Failed,
            [new ResourceDescriptor(Name: facts.CheckScript, Uri: InToto.RecipeUri + facts.RecipePath + "/" + facts.CheckScript, Digest: Sha256(facts.CheckScriptSha256))],
            facts.PassedTests, [], facts.FailedTests);
        return new TestResultStatement(InToto.StatementType, Subject(facts, root), InToto.TestResultType, predicate);
    }

    /// <summary>The two signed statements of one build, in bundle order.</summary>
    public static IReadOnlyList<DsseEnvelope> Sign(BuildFacts facts, Digest root, KeyPair key)
    {
        ArgumentNullException.ThrowIfNull(facts);
        if (facts.FailedTests.Count > 0)
        {
            // Only tested products are published: a FAILED verdict is never signed for publication.
            throw new CairnException(ErrorCode.ProvenanceNotPassed, $"{facts.Subject}: {facts.FailedTests.Count} test(s) failed; no attestation is signed for a product that did not pass",
                "fix the failing tests; a failed check publishes nothing");
        }

        return
        [
            Dsse.Sign(Dsse.InTotoPayloadType, CairnJson.Serialize(Provenance(facts, root), ProvenanceJson.Default.ProvenanceStatement), key),
            Dsse.Sign(Dsse.InTotoPayloadType, CairnJson.Serialize(TestResult(facts, root), ProvenanceJson.Default.TestResultStatement), key),
        ];
    }
}
