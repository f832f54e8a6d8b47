using System.Text.Json.Serialization;
using Cairn.Core;

namespace Cairn.Coordination;

/// <summary>What a site can build: jobs go only to sites whose capabilities satisfy the job's requirements.</summary>
/// <param name="Platform">e.g. linux-x86_64 (the repository's platform directory).</param>
/// <param name="Environment">The build environment product the site builds in (NAME/VERSION), or null if it names none.</param>
/// <param name="Labels">Free-form tags such as <c>gpu</c> or <c>big-memory</c>.</param>
public sealed record SiteCapabilities(string Platform, string? Environment, IReadOnlyList<string> Labels);

/// <summary>A registered site: any CI server (Jenkins, GitLab, GitHub Actions, cron) that builds and publishes.</summary>
public sealed record Site(string Name, SiteCapabilities Capabilities, DateTimeOffset RegisteredAt, DateTimeOffset UpdatedAt)
{
    /// <summary>The site's Ed25519 public key (base64), registered with --key: its build statements must verify with it. Null: none registered.</summary>
    public string? PublicKey { get; init; }
}

/// <summary>What a job (one build key) needs of the site that builds it.</summary>
public sealed record JobRequirements(string Platform, string? Environment = null, IReadOnlyList<string>? Labels = null)
{
    /// <summary>Why <paramref name="site"/> cannot build this job, or null if it can.</summary>
    public string? MismatchWith(SiteCapabilities site)
    {
        ArgumentNullException.ThrowIfNull(site);
        if (!string.Equals(site.Platform, Platform, StringComparison.Ordinal))
        {
            return $"the job is for platform {Platform}, the site builds {site.Platform}";
        }

        if (Environment is not null && !string.Equals(site.Environment, Environment, StringComparison.Ordinal))
        {
            return $"the job needs build environment {Environment}, the site has {site.Environment ?? "none"}";
        }

        var missing = (Labels ?? []).Where(l => !site.Labels.Contains(l, StringComparer.Ordinal)).ToList();
        return missing.Count > 0 ? $"the job needs label(s) {string.Join(", ", missing)}, the site has [{string.Join(", ", site.Labels)}]" : null;
    }
}

/// <summary>
/// Where a site token may publish: repository path prefixes (component-wise: <c>linux-x86_64/zlib</c> covers
/// <c>linux-x86_64/zlib/1.2.13</c> but not <c>linux-x86_64/zlibx</c>; <c>/</c> covers everything) and channels
/// (<c>*</c> is any channel).
/// </summary>
public sealed record TokenScope(IReadOnlyList<string> PathPrefixes, IReadOnlyList<string> Channels)
{
    public static TokenScope Everything { get; } = new(["/"], ["*"]);

    public bool PermitsPath(string path)
    {
        var p = RepositoryPaths.Normalize(path);
        return PathPrefixes.Any(prefix => RepositoryPaths.IsWithin(p, RepositoryPaths.Normalize(prefix)));
    }

    public bool PermitsChannel(string channel) =>
        Channels.Any(c => c == "*" || string.Equals(c, channel, StringComparison.Ordinal));

    public override string ToString() =>
        $"paths [{string.Join(", ", PathPrefixes)}], channels [{string.Join(", ", Channels)}]";
}

/// <summary>A newly issued token. <see cref="Secret"/> is shown once: the store keeps only its hash.</summary>
public sealed record IssuedToken(string TokenId, string Secret, string Site, TokenScope Scope, DateTimeOffset CreatedAt);

/// <summary>A token as the store knows it (never its secret).</summary>
public sealed record TokenInfo(string TokenId, string Site, TokenScope Scope, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt);

/// <summary>Who presented a valid token, and what it allows.</summary>
public sealed record SiteIdentity(string Site, string TokenId, TokenScope Scope)
{
    /// <summary>Throws <see cref="ErrorCode.TokenOutOfScope"/> naming the scope if any path is outside it.</summary>
    public void AuthorizePaths(IEnumerable<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var outside = paths.Where(p => !Scope.PermitsPath(p)).ToList();
        if (outside.Count > 0)
        {
            throw new CairnException(ErrorCode.TokenOutOfScope,
                $"site {Site}'s token {TokenId} may not publish {string.Join(", ", outside)}: its scope is {Scope}",
                "publish under the token's path prefixes, or have the gateway's operator issue a token with a wider scope");
        }
    }

    /// <summary>Throws <see cref="ErrorCode.TokenOutOfScope"/> naming the scope if the channel is outside it.</summary>
    public void AuthorizeChannel(string channel)
    {
        if (!Scope.PermitsChannel(channel))
        {
            throw new CairnException(ErrorCode.TokenOutOfScope,
                $"site {Site}'s token {TokenId} may not publish to channel {channel}: its scope is {Scope}",
                "use a channel the token allows, or have the gateway's operator issue a token with a wider scope");
        }
    }
}

/// <summary>
/// A site's right to build one job. <see cref="FencingToken"/> grows with every claim ever granted (on any key),
/// so a later holder always has a larger token than an earlier one, and a commit carrying an old token is refused.
/// </summary>
public sealed record Claim(string BuildKey, string Site, long FencingToken, DateTimeOffset AcquiredAt, DateTimeOffset ExpiresAt);

/// <summary>
/// The answer to a claim: <see cref="Granted"/> with the new claim in <see cref="Claim"/>, or not granted with the
/// live claim of the current holder in <see cref="Claim"/>.
/// </summary>
public sealed record ClaimResult(bool Granted, Claim Claim);

/// <summary>
/// Exclusive right to commit under some repository paths. <see cref="Id"/> comes from the same sequence as claim
/// fencing tokens, so it is also the lease's fencing token.
/// </summary>
public sealed record Lease(long Id, string Site, IReadOnlyList<string> Paths, DateTimeOffset AcquiredAt, DateTimeOffset ExpiresAt);

/// <summary>The new lease if granted; otherwise the live leases whose paths overlap the request.</summary>
public sealed record LeaseResult(bool Granted, Lease? Lease, IReadOnlyList<Lease> Conflicts);

[JsonConverter(typeof(CamelCaseEnumConverter<TestOutcome>))]
public enum TestOutcome
{
    Passed,
    Failed,
    Skipped,
}

/// <summary>One JUnit test case as a site reported it.</summary>
public sealed record TestCaseResult(string Name, TestOutcome Outcome, string? Message = null);

/// <summary>The check's outcome; <see cref="Tests"/> are the JUnit details (stored as JSON).</summary>
public sealed record CheckOutcome(int Passed, int Failed, int Skipped, IReadOnlyList<TestCaseResult>? Tests = null);

/// <summary>
/// One site's result for one build key. <see cref="OutputRoot"/> is the root digest of the installed product
/// (null when the build failed before producing one).
/// </summary>
/// <param name="Product">PLATFORM/NAME/VERSION, the product's path in the repository tree.</param>
/// <param name="Environment">A description of the site's build environment (e.g. the environment product and its root digest, kernel, CPU).</param>
/// <param name="LogLink">Where the build log can be read (a repository path or a CI URL).</param>
public sealed record BuildResult(
    string BuildKey,
    string Site,
    string Product,
    Digest? OutputRoot,
    CheckOutcome Checks,
    string Environment,
    TimeSpan Duration,
    string? LogLink)
{
    /// <summary>Set by the store when the result is recorded.</summary>
    public DateTimeOffset RecordedAt { get; init; }

    /// <summary>A product was built and every check passed.</summary>
    public bool Passing => OutputRoot is not null && Checks.Failed == 0;
}

[JsonConverter(typeof(CamelCaseEnumConverter<CoherenceStatus>))]
public enum CoherenceStatus
{
    /// <summary>No site has reported a result for the build key.</summary>
    NoResults,

    /// <summary>Every site produced the same output root and every check passed everywhere.</summary>
    Agreement,

    /// <summary>The sites agree with each other, but the build or its checks fail everywhere.</summary>
    Failing,

    /// <summary>Output roots differ, or a check (or a test) passes on one site and fails on another.</summary>
    Disagreement,
}

/// <summary>A site whose result differs from the reference (the largest group of passing sites with one output root).</summary>
public sealed record SiteDisagreement(string Site, Digest? OutputRoot, Digest? ReferenceRoot, string Reason, string Environment);

/// <summary>A test whose outcome differs between sites; sites that did not report it are absent from <see cref="BySite"/>.</summary>
public sealed record TestDifference(string Test, IReadOnlyDictionary<string, TestOutcome> BySite);

/// <summary>
/// Agreement across sites for one build key. Disagreement is never hidden: every differing site is listed with
/// its digest, the reference digest, the reason and its environment.
/// </summary>
public sealed record CoherenceReport(
    string BuildKey,
    CoherenceStatus Status,
    Digest? ReferenceRoot,
    IReadOnlyList<string> AgreeingSites,
    IReadOnlyList<SiteDisagreement> Disagreements,
    IReadOnlyList<TestDifference> TestDifferences,
    IReadOnlyList<BuildResult> Results);

/// <summary>A channel's promotion rule: at least <see cref="RequiredAgreeingSites"/> sites must agree.</summary>
public sealed record ChannelPolicy(string Channel, int RequiredAgreeingSites)
{
    public const string Testing = "testing";
    public const string Stable = "stable";
}

public sealed record PromotionDecision(
    string BuildKey,
    string Channel,
    bool Allowed,
    int AgreeingSites,
    int RequiredAgreeingSites,
    Digest? Root,
    string Reason);

public sealed record Promotion(string BuildKey, string Channel, Digest Root, int AgreeingSites, DateTimeOffset PromotedAt);

/// <summary>What a site committed; recorded for audit after the repository revision is written.</summary>
public sealed record CommitRequest(
    string Site,
    string? TokenId,
    long LeaseId,
    string? BuildKey,
    long? FencingToken,
    IReadOnlyList<string> Paths,
    string? Channel,
    long Revision,
    Digest? Root,
    string Message);

/// <summary>A recorded commit: its audit id, what was committed (paths normalized) and when.</summary>
public sealed record CommitRecord(long Id, CommitRequest Commit, DateTimeOffset CommittedAt);

/// <summary>
/// An operator's action through the dashboard, for the audit log: <see cref="Action"/> is revoke-token, promote or
/// rerun; <see cref="Target"/> the token id or build key; <see cref="Detail"/> what changed; <see cref="Actor"/> who.
/// </summary>
public sealed record OperatorAction(string Action, string Target, string Detail, string Actor);

public sealed record OperatorActionRecord(long Id, OperatorAction Action, DateTimeOffset ActedAt);

public sealed record AppliedMigration(int Version, string Name, DateTimeOffset AppliedAt);
