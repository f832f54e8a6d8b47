using System.Text.Json.Serialization;

namespace Cairn.Trust.Provenance;

/// <summary>An in-toto ResourceDescriptor (attestation framework v1): a thing named by URI and/or name, with digests.</summary>
public sealed record ResourceDescriptor(
    string? Name = null,
    string? Uri = null,
    IReadOnlyDictionary<string, string>? Digest = null,
    string? DownloadLocation = null,
    string? MediaType = null);

/// <summary>One subject of a statement: PLATFORM/NAME/VERSION and its digests (docs/format/provenance.md §3).</summary>
public sealed record StatementSubject(string Name, IReadOnlyDictionary<string, string> Digest);

/// <summary>
/// An in-toto Statement v1 whose predicate is read later by its type (the envelope's payload, parsed without
/// trusting it until its signature held).
/// </summary>
public sealed record StatementHeader(
    [property: JsonPropertyName("_type")] string Type,
    IReadOnlyList<StatementSubject> Subject,
    string PredicateType);

public sealed record ProvenanceStatement(
    [property: JsonPropertyName("_type")] string Type,
    IReadOnlyList<StatementSubject> Subject,
    string PredicateType,
    SlsaProvenance Predicate);

public sealed record TestResultStatement(
    [property: JsonPropertyName("_type")] string Type,
    IReadOnlyList<StatementSubject> Subject,
    string PredicateType,
    TestResultPredicate Predicate);

/// <summary>SLSA Provenance v1 (https://slsa.dev/provenance/v1).</summary>
public sealed record SlsaProvenance(BuildDefinition BuildDefinition, RunDetails RunDetails);

public sealed record BuildDefinition(
    string BuildType,
    CairnExternalParameters ExternalParameters,
    CairnInternalParameters InternalParameters,
    IReadOnlyList<ResourceDescriptor> ResolvedDependencies);

/// <summary>What the user controlled: the recipe and where its product is deployed.</summary>
public sealed record CairnExternalParameters(
    RecipeParameter Recipe,
    string Name,
    string Version,
    string Platform,
    string DeploymentRoot,
    string DeploymentSite);

/// <param name="Path">The recipe folder relative to the recipes directory.</param>
/// <param name="Digest">sha256 of the recipe folder's listing (docs/format/provenance.md §4).</param>
public sealed record RecipeParameter(string Path, IReadOnlyDictionary<string, string> Digest);

/// <summary>What the builder fixed: the sandbox contract, the seccomp filter, and the build key these imply.</summary>
public sealed record CairnInternalParameters(int SandboxContract, IReadOnlyDictionary<string, string> Seccomp, string BuildKey);

public sealed record RunDetails(BuilderIdentity Builder, BuildMetadata Metadata, IReadOnlyList<ResourceDescriptor> Byproducts);

public sealed record BuilderIdentity(string Id, IReadOnlyDictionary<string, string>? Version = null);

/// <param name="StartedOn">RFC 3339, UTC.</param>
public sealed record BuildMetadata(string InvocationId, string StartedOn, string FinishedOn);

/// <summary>in-toto test-result v0.1 (https://in-toto.io/attestation/test-result/v0.1).</summary>
public sealed record TestResultPredicate(
    string Result,
    IReadOnlyList<ResourceDescriptor> Configuration,
    IReadOnlyList<string> PassedTests,
    IReadOnlyList<string> WarnedTests,
    IReadOnlyList<string> FailedTests);

/// <summary>The names and URIs the formats fix (docs/format/provenance.md).</summary>
public static class InToto
{
    public const string StatementType = "https://in-toto.io/Statement/v1";
    public const string SlsaProvenanceType = "https://slsa.dev/provenance/v1";
    public const string TestResultType = "https://in-toto.io/attestation/test-result/v0.1";

    /// <summary>The buildType of every Cairn build; what its parameters mean is documented at this address.</summary>
    public const string BuildType = "https://cairn.dev/provenance/build/v1";

    /// <summary>Digest algorithm name of a product root: the SHA-256 of its root tree object (docs/format/repository.md).</summary>
    public const string TreeDigest = "cairnTree";

    public const string Passed = "PASSED";
    public const string Failed = "FAILED";

    /// <summary>URI prefixes of resolvedDependencies entries, by kind.</summary>
    public const string ProductUri = "cairn:product:";
    public const string EnvironmentUri = "cairn:environment:";
    public const string RecipeUri = "cairn:recipe:";
    public const string SourceUri = "cairn:source:";
    public const string LogUri = "cairn:log:";

    public const string BuilderIdPrefix = "https://cairn.dev/builder/";

    /// <summary>The builder id of a site (a gateway site's registered name, or a local build's host).</summary>
    public static string BuilderId(string site) => BuilderIdPrefix + Uri.EscapeDataString(site);
}
