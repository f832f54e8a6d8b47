using System.Text.Json.Serialization;
using Cairn.Build.Recipes;
using Cairn.Core;
using Cairn.Sandbox;

namespace Cairn.Build;

/// <summary>What to do when NAME/VERSION is published with another build key (the recipe or an input changed).</summary>
[JsonConverter(typeof(CamelCaseEnumConverter<ChangedKeyPolicy>))]
public enum ChangedKeyPolicy
{
    /// <summary>Rebuild and replace the product; the replacement is recorded with the reason.</summary>
    Replace,

    /// <summary>Refuse (CAIRN-E0610): products stay immutable; bump the recipe's version instead.</summary>
    Refuse,
}

/// <summary>Inputs of <see cref="StackBuilder"/>: which recipes, where products are deployed, how to build.</summary>
public sealed record StackOptions
{
    public required string RecipesDirectory { get; init; }

    /// <summary>Source directories searched after the recipes directory's sources/.</summary>
    public IReadOnlyList<string> SourceDirectories { get; init; } = [];

    /// <summary>Build only these recipes (with everything they need); empty: all.</summary>
    public IReadOnlyList<string> Only { get; init; } = [];

    /// <summary>Repository platform the products are published under; null: the repository's default.</summary>
    public string? Platform { get; init; }

    /// <summary>CODE-RADE's SITE: the site component of the deployment path (not the CI site that builds).</summary>
    public string DeploymentSite { get; init; } = "generic";

    /// <summary>The CI site that builds (Jenkins, GitLab, …): recorded with failures and, by default, as the publisher.</summary>
    public string BuildSite { get; init; } = Environment.MachineName;

    /// <summary>CODE-RADE's CVMFS_DIR: products are built for CVMFS_DIR/SITE/OS/ARCH/NAME/VERSION.</summary>
    public string DeploymentRoot { get; init; } = "/cvmfs/cairn";

    public ChangedKeyPolicy WhenKeyChanged { get; init; } = ChangedKeyPolicy.Replace;

    /// <summary>Packages built at once (independent ones only).</summary>
    public int Jobs { get; init; } = 1;

    /// <summary>After a failure, go on with packages that do not depend on it.</summary>
    public bool KeepGoing { get; init; }

    /// <summary>
    /// Where builds run and failed builds are kept (REPO/builds): not part of the content-addressed state.
    /// Should be on the file system of <see cref="CacheDirectory"/> so dependencies are hardlinked, not copied.
    /// </summary>
    public required string BuildsDirectory { get; init; }

    /// <summary>Unpacked-object cache used to materialize dependencies; null: write them directly.</summary>
    public string? CacheDirectory { get; init; }

    public SandboxLimits Limits { get; init; } = new();

    public long SourceDateEpoch { get; init; } = SandboxContract.DefaultSourceDateEpoch;

    /// <summary>Keep the workspace, prefix and dependencies of failed builds (for debugging).</summary>
    public bool KeepFailedWork { get; init; }

    /// <summary>Recorded as the publisher of each product; null: <see cref="BuildSite"/>.</summary>
    public string? Publisher { get; init; }

    /// <summary>
    /// Where dependencies come from (--deps-from); null: the repository being built into. The caller owns (and
    /// disposes) it. A package an external source holds is taken from it instead of being built.
    /// </summary>
    public IDependencySource? Dependencies { get; init; }

    /// <summary>Who builds each job and where products go (cairn build --gateway); null: publish into the repository.</summary>
    public Coordinated.IPublishTarget? PublishTarget { get; init; }

    /// <summary>
    /// Signs each published product's provenance and test result (docs/format/provenance.md); the caller owns it.
    /// Null: products are published without attestations (library callers; the CLI always gives one).
    /// </summary>
    public Cairn.Trust.KeyPair? BuilderKey { get; init; }

    /// <summary>How many failed-build records to keep per NAME/VERSION.</summary>
    public int FailedRecordsToKeep { get; init; } = 5;
}

[JsonConverter(typeof(CamelCaseEnumConverter<PlanAction>))]
public enum PlanAction
{
    /// <summary>A product with this build key is published.</summary>
    UpToDate,

    /// <summary>Will be built: no product for this build key yet.</summary>
    Build,

    /// <summary>Will be decided after dependencies are built: the key needs their new products.</summary>
    After,

    /// <summary>Cannot build because a dependency cannot.</summary>
    Blocked,

    /// <summary>Cannot build: see the code (missing source, conflicting product, …).</summary>
    Error,
}

public sealed record PlanEntry(
    string Name,
    string Version,
    PlanAction Action,
    string Reason,
    string? BuildKey = null,
    string? PublishedBuildKey = null,
    IReadOnlyList<string>? Waits = null,
    string? Code = null);

public sealed record BuildPlan(string Platform, string DeploymentSite, string DeploymentRoot, IReadOnlyList<PlanEntry> Packages)
{
    public int ToBuild => Packages.Count(p => p.Action is PlanAction.Build or PlanAction.After);
}

[JsonConverter(typeof(CamelCaseEnumConverter<PackageStatus>))]
public enum PackageStatus
{
    Built,
    UpToDate,
    Failed,
    Blocked,
    NotStarted,
}

public sealed record PackageResult
{
    public required string Name { get; init; }

    public required string Version { get; init; }

    public required PackageStatus Status { get; init; }

    /// <summary>One line for people: why it was built, or how it failed.</summary>
    public required string Reason { get; init; }

    /// <summary>The stable error code of a failure (CAIRN-E0611 build failed, E0612 check failed, E0613 blocked, …).</summary>
    public string? Code { get; init; }

    public string? BuildKey { get; init; }

    public Digest? Product { get; init; }

    public long? Revision { get; init; }

    public bool Replaced { get; init; }

    public TestSummary? Tests { get; init; }

    public TimeSpan Duration { get; init; }

    /// <summary>Failed builds: the kept log on the host (REPO/builds/…/build.log).</summary>
    public string? LogFile { get; init; }

    /// <summary>Built products: the log's path in the repository tree.</summary>
    public string? RepositoryLog { get; init; }

    /// <summary>With a publish target: how the job ended for this site (built, confirmed, built elsewhere, …); null: see <see cref="Status"/>.</summary>
    public Coordinated.JobOutcome? Job { get; init; }

    /// <summary>With a gateway: the coherence and promotions after this site's commit.</summary>
    public string? Coordination { get; init; }

    /// <summary>Blocked: the failed packages that block this one.</summary>
    public IReadOnlyList<string> BlockedBy { get; init; } = [];

    public string Id => $"{Name}/{Version}";

    public bool Ok => Status is PackageStatus.Built or PackageStatus.UpToDate;
}

public sealed record StackBuildResult(string Platform, IReadOnlyList<PackageResult> Packages, TimeSpan Duration)
{
    public bool Succeeded => Packages.All(p => p.Ok);
}

/// <summary>Live view of a stack build; every method may be called from several builds at once.</summary>
public interface IBuildMonitor
{
    void Started(Recipe recipe, string what);

    void Finished(PackageResult result);

    /// <summary>A stream that receives the package's log as it is written, or null.</summary>
    Stream? LiveLog(Recipe recipe);
}
