using System.Text.Json.Serialization;
using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;

namespace Cairn.Web;

// The JSON every page answers with Accept: application/json (docs/dashboard.md, "JSON"). camelCase, nulls left out.

public sealed record DashboardError(string Code, string Message, string? Hint);

/// <summary>The sign-in page: whether the server has an operator token, whether this request is signed in.</summary>
public sealed record SignInView(bool Enabled, bool SignedIn, string? Message);

public sealed record ProductsView(string Repository, long Revision, string? Tag, string? Query, string? Platform,
    IReadOnlyList<string> Platforms, IReadOnlyDictionary<string, long> Tags, int Total, int Page, int PageSize, IReadOnlyList<ProductRecord> Products);

public sealed record DependencyLink(string Product, bool Published);

/// <summary>A kept revision holding this NAME/VERSION; <see cref="SameRoot"/> when it holds this very build.</summary>
public sealed record RevisionMention(long Revision, DateTimeOffset Timestamp, Digest Root, string? BuildKey, bool SameRoot, IReadOnlyList<string> Tags);

public sealed record TestCaseView(string Suite, string Name, string Outcome, string? Message);

/// <summary>One signed statement of a product's bundle; <see cref="SignatureVerified"/> null when no key was there to check it with.</summary>
public sealed record AttestationRow(string Kind, string? Builder, string? Result, int? PassedTests, IReadOnlyList<string>? FailedTests, IReadOnlyList<string> KeyIds,
    bool? SignatureVerified, string? SignedBy, bool SubjectMatches, string? FinishedOn);

/// <summary>A product's attestation bundle: its statements, the sites whose registered keys checked them (null: none), or why it cannot be read.</summary>
public sealed record ProvenanceView(string Path, IReadOnlyList<string>? KeysFrom, IReadOnlyList<AttestationRow> Statements, string? Problem);

public sealed record ProductView(long Revision, ProductRecord Product, IReadOnlyList<DependencyLink> Dependencies, IReadOnlyList<string> Dependants,
    string? ModulefilePath, string? Modulefile, IReadOnlyList<TestCaseView> TestCases, IReadOnlyList<RevisionMention> Revisions, int RevisionsScanned,
    IReadOnlyList<BuildResult>? Results, ProvenanceView? Provenance);

public sealed record FileEntryView(string Name, string Kind, long Size, bool Executable, string? Target);

public sealed record FilesView(string Product, string Path, string Kind, long Size, IReadOnlyList<FileEntryView>? Entries, string? Text, string? NotShown);

public sealed record LogLine(long Number, string Text, int Omitted);

public sealed record LogView(string Product, string Path, long Size, long Page, int PageSize, bool HasNext, string? Search, IReadOnlyList<LogLine> Lines, bool Truncated);

public sealed record RevisionView(long Revision, long? Parent, DateTimeOffset Timestamp, string Message, IReadOnlyList<string> Tags, Digest Root);

public sealed record RevisionsView(long Head, long Page, bool HasNext, IReadOnlyList<RevisionView> Revisions);

public sealed record ProductChange(string Product, string Change, Digest? From, Digest? To, string? FromBuildKey, string? ToBuildKey, string? Reason);

public sealed record DiffView(long From, long To, IReadOnlyList<ProductChange> Changes, int Unchanged);

public sealed record GraphNodeView(string Id, string Label, string Status, int Layer, int Position, double X, double Y, string? Url);

public sealed record GraphEdgeView(string From, string To);

public sealed record GraphView(long Revision, string? Focus, IReadOnlyList<GraphNodeView> Nodes, IReadOnlyList<GraphEdgeView> Edges, int Crossings, IReadOnlyDictionary<string, int> Statuses);

public sealed record ClaimView(string BuildKey, string? Product, string Site, long FencingToken, DateTimeOffset AcquiredAt, DateTimeOffset ExpiresAt, double ElapsedSeconds, double ExpiresInSeconds);

public sealed record ResultView(string BuildKey, string Site, string Product, string Verdict, string? Reason, Digest? OutputRoot, int Passed, int Failed, int Skipped,
    double DurationSeconds, DateTimeOffset RecordedAt, string? LogLink, string Environment);

public sealed record BlockedView(string Product, string BlockedBy, string Reason);

public sealed record BuildsView(DateTimeOffset Now, IReadOnlyList<ClaimView> Claims, IReadOnlyList<ResultView> Results, IReadOnlyList<BlockedView> Blocked);

public sealed record TokenView(string TokenId, TokenScope Scope, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt);

public sealed record SiteView(string Name, SiteCapabilities Capabilities, DateTimeOffset RegisteredAt, DateTimeOffset UpdatedAt, DateTimeOffset? LastResultAt,
    int Results, int Failures, double FailureRate, string? Environment, int LiveClaims, IReadOnlyList<TokenView> Tokens);

public sealed record SitesView(IReadOnlyList<SiteView> Sites);

public sealed record MatrixCell(string Site, string State, Digest? OutputRoot);

public sealed record MatrixRow(string Product, string BuildKey, string Status, int Agreeing, int RequiredForStable, IReadOnlyList<string> PromotedTo, IReadOnlyList<MatrixCell> Cells);

public sealed record MatrixView(IReadOnlyList<string> Sites, string? Query, int Total, int Page, int PageSize, IReadOnlyList<MatrixRow> Rows);

public sealed record SeriesView(string Name, string Unit, IReadOnlyList<double> Values, double Latest);

public sealed record HealthView(long Revision, int Products, long ProductBytes, long Files, int Revisions, double SampleSeconds, IReadOnlyList<SeriesView> Series);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(DashboardError))]
[JsonSerializable(typeof(SignInView))]
[JsonSerializable(typeof(ProductsView))]
[JsonSerializable(typeof(ProductView))]
[JsonSerializable(typeof(FilesView))]
[JsonSerializable(typeof(LogView))]
[JsonSerializable(typeof(RevisionsView))]
[JsonSerializable(typeof(DiffView))]
[JsonSerializable(typeof(GraphView))]
[JsonSerializable(typeof(BuildsView))]
[JsonSerializable(typeof(SitesView))]
[JsonSerializable(typeof(MatrixView))]
[JsonSerializable(typeof(GatewayCoherence))]
[JsonSerializable(typeof(HealthView))]
internal sealed partial class DashboardJson : JsonSerializerContext;
