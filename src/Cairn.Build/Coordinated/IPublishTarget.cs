using System.Text.Json.Serialization;
using Cairn.Build.Recipes;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Build.Coordinated;

/// <summary>
/// Who builds a package and where its product goes: the one hook <see cref="StackBuilder"/> has for coordination.
/// <see cref="LocalPublishTarget"/> publishes into the repository being built (one site, today's behaviour);
/// <see cref="GatewayPublishTarget"/> claims each job at a gateway and publishes only through it (docs/coordination.md).
/// </summary>
public interface IPublishTarget
{
    /// <summary>Catches up with what others published, before a package's catalog is read.</summary>
    ValueTask RefreshAsync(CancellationToken ct);

    /// <summary>Decides whether this site builds the job (may wait while another site builds it). Dispose the ticket when the job ends.</summary>
    Task<JobTicket> AcquireAsync(JobContext job, IBuildMonitor? monitor, CancellationToken ct);

    /// <summary>Publishes a built and checked product (or confirms an already published one) under the ticket.</summary>
    Task<TargetPublishResult> PublishAsync(JobTicket ticket, ProductRef product, string directory, PublishOptions options,
        IReadOnlyList<string> junitReports, CancellationToken ct);

    /// <summary>Records a failed build or check (nothing is published) and gives the job back. Never throws for the gateway's sake.</summary>
    Task ReportFailureAsync(JobTicket ticket, PackageResult failed, IReadOnlyList<string> junitReports, CancellationToken ct);
}

/// <summary>One package's job as the builder sees it once its build key is known.</summary>
/// <param name="Existing">The product published under NAME/VERSION when the catalog was read (any key).</param>
/// <param name="Environment">The build environment product the recipe names, if any.</param>
public sealed record JobContext(Recipe Recipe, string Platform, Digest BuildKey, bool UpToDate, ProductRecord? Existing, ProductRecord? Environment)
{
    /// <summary>PLATFORM/NAME/VERSION: the product's path in the repository tree.</summary>
    public string ProductPath => $"{Platform}/{Recipe.Name}/{Recipe.Version}";
}

[JsonConverter(typeof(CamelCaseEnumConverter<JobAction>))]
public enum JobAction
{
    /// <summary>Build and publish it.</summary>
    Build,

    /// <summary>Build it to confirm an already published product (agreement between sites); nothing is written to the repository.</summary>
    Confirm,

    /// <summary>Nothing to do: up to date, or built by another site.</summary>
    Skip,
}

/// <summary>How a package ended for this site, as the summary and <c>--json</c> show it.</summary>
[JsonConverter(typeof(CamelCaseEnumConverter<JobOutcome>))]
public enum JobOutcome
{
    Built,
    Confirmed,
    UpToDate,
    BuiltElsewhere,
    Failed,
    ClaimLost,
}

/// <summary>
/// The right to work on one job. <see cref="Token"/> is cancelled when the caller's token is, or when the claim is
/// lost (<see cref="IsLost"/>, <see cref="LostReason"/>): the build stops and nothing is published.
/// </summary>
public class JobTicket : IAsyncDisposable
{
    private readonly CancellationTokenSource _lost = new();
    private readonly CancellationTokenSource _linked;
    private string? _lostReason;
    private int _disposed;

    public JobTicket(JobAction action, JobOutcome? skipOutcome, Digest? publishedRoot, string? reason, CancellationToken ct)
    {
        Action = action;
        SkipOutcome = skipOutcome;
        PublishedRoot = publishedRoot;
        Reason = reason;
        _linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _lost.Token);
    }

    public JobAction Action { get; }

    /// <summary>For <see cref="JobAction.Skip"/>: up to date, or built elsewhere.</summary>
    public JobOutcome? SkipOutcome { get; }

    /// <summary>The published product's root (Skip, Confirm), when known.</summary>
    public Digest? PublishedRoot { get; }

    /// <summary>Why this action, for people; null: the builder's own reason.</summary>
    public string? Reason { get; }

    public CancellationToken Token => _linked.Token;

    public bool IsLost => _lostReason is not null;

    public string? LostReason => _lostReason;

    /// <summary>Marks the claim lost and cancels <see cref="Token"/> (the first reason wins).</summary>
    public void Lose(string reason)
    {
        if (Interlocked.CompareExchange(ref _lostReason, reason, null) is null)
        {
            try
            {
                _lost.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Lost after the job ended: nothing left to cancel.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await EndJobAsync().ConfigureAwait(false);
        _linked.Dispose();
        _lost.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Ends the job's resources (heartbeats, claim, build slot).</summary>
    protected virtual ValueTask EndJobAsync() => ValueTask.CompletedTask;
}

/// <param name="Detail">One line for the summary (coherence, promotions), or null.</param>
public sealed record TargetPublishResult(PublishOutcome Outcome, Digest Root, long Revision, JobOutcome Job, string? Detail);

/// <summary>Today's single-site behaviour: build what is not up to date and publish into the repository directly.</summary>
public sealed class LocalPublishTarget(WritableRepository repository) : IPublishTarget
{
    public ValueTask RefreshAsync(CancellationToken ct) => ValueTask.CompletedTask;

    public Task<JobTicket> AcquireAsync(JobContext job, IBuildMonitor? monitor, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(job);
        return Task.FromResult(job.UpToDate
            ? new JobTicket(JobAction.Skip, JobOutcome.UpToDate, job.Existing?.Root, null, ct)
            : new JobTicket(JobAction.Build, null, null, null, ct));
    }

    public async Task<TargetPublishResult> PublishAsync(JobTicket ticket, ProductRef product, string directory, PublishOptions options,
        IReadOnlyList<string> junitReports, CancellationToken ct)
    {
        var published = await repository.PublishDirectoryAsync(product, directory, options, null, ct).ConfigureAwait(false);
        return new TargetPublishResult(published.Outcome, published.Product.Root, published.Revision, JobOutcome.Built, null);
    }

    public Task ReportFailureAsync(JobTicket ticket, PackageResult failed, IReadOnlyList<string> junitReports, CancellationToken ct) => Task.CompletedTask;
}
