using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Gateway.Client;
using Cairn.Core;
using Cairn.Repository;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Build.Coordinated;

/// <summary>How a site works with its gateway (cairn build --gateway).</summary>
public sealed record GatewaySiteOptions
{
    /// <summary>Where products are staged before upload (the site's local work directory).</summary>
    public required string StagingDirectory { get; init; }

    /// <summary>The channel each commit goes to.</summary>
    public string Channel { get; init; } = ChannelPolicy.Testing;

    /// <summary>A claim lives this long unless heartbeated (every TTL/3).</summary>
    public TimeSpan ClaimTtl { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>First wait while another site holds a job; doubles up to <see cref="PollMax"/>.</summary>
    public TimeSpan PollInitial { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan PollMax { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Jobs this site builds at once (cairn build --jobs); waiting for other sites takes no slot.</summary>
    public int BuildSlots { get; init; } = 1;

    public int UploadParallelism { get; init; } = 4;
}

/// <summary>
/// The site side of the gateway (docs/coordination.md, "A site's build loop"): per job, ask the gateway; build
/// and publish (Build), build and confirm (Confirm), wait with back-off while another site holds the claim
/// (HeldByOther), or skip (Done). While building, heartbeat every TTL/3; a lost claim cancels the build. Products
/// are staged locally, only the objects the gateway lacks are uploaded, and the commit carries the claim's
/// fencing token, so a late result is refused by the gateway.
/// </summary>
public sealed class GatewayPublishTarget : IPublishTarget, IDisposable
{
    private readonly IGateway _gateway;
    private readonly ProductRepository? _reader;
    private readonly GatewaySiteOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly SemaphoreSlim _slots;

    /// <param name="reader">The repository as the gateway serves it (read-only): refreshed before each job's decision.</param>
    public GatewayPublishTarget(IGateway gateway, ProductRepository? reader, string site, GatewaySiteOptions options, TimeProvider time, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.ClaimTtl <= TimeSpan.Zero) throw new CairnException(ErrorCode.Usage, $"--claim-ttl must be positive, not {options.ClaimTtl}");
        _gateway = gateway;
        _reader = reader;
        Site = site;
        _options = options;
        _time = time;
        _log = logger ?? NullLogger.Instance;
        _slots = new SemaphoreSlim(Math.Max(1, options.BuildSlots));
    }

    public string Site { get; }

    public ValueTask RefreshAsync(CancellationToken ct) => _reader?.Objects.RefreshAsync(ct) ?? ValueTask.CompletedTask;

    /// <summary>The next wait while <paramref name="holder"/> builds: back-off, but no later than just after the holder's claim expires.</summary>
    public static TimeSpan NextWait(TimeSpan backoff, Claim? holder, DateTimeOffset now)
    {
        if (holder is null) return backoff;
        var untilExpiry = holder.ExpiresAt - now + TimeSpan.FromMilliseconds(50);
        return untilExpiry < backoff ? (untilExpiry < TimeSpan.FromMilliseconds(50) ? TimeSpan.FromMilliseconds(50) : untilExpiry) : backoff;
    }

    public async Task<JobTicket> AcquireAsync(JobContext job, IBuildMonitor? monitor, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(job);
        var requirements = new JobRequirements(job.Platform, job.Environment is { } env ? $"{env.Name}/{env.Version}" : null);
        var request = new JobRequest(job.BuildKey.ToString(), job.ProductPath, requirements, _options.ClaimTtl);
        var backoff = _options.PollInitial;
        string? waitedFor = null;
        while (true)
        {
            // A build slot is taken before claiming, so a claim is never held while this site cannot build it.
            await _slots.WaitAsync(ct).ConfigureAwait(false);
            JobOffer offer;
            try
            {
                offer = await _gateway.RequestJobAsync(request, ct).ConfigureAwait(false);
            }
            catch
            {
                _slots.Release();
                throw;
            }

            switch (offer.Kind)
            {
                case JobOfferKind.Build:
                case JobOfferKind.Confirm:
                    var claim = offer.Claim ?? throw new CairnException(ErrorCode.SiteOfferInvalid,
                        $"the gateway offered {job.Recipe.Id} ({offer.Kind}) without a claim", "the gateway and this cairn disagree on the protocol: use matching versions");
                    _log.LogInformation("{Site} claimed {Recipe} ({Kind}, fencing token {Token}): {Reason}", Site, job.Recipe.Id, offer.Kind, claim.FencingToken, offer.Reason);
                    var reason = offer.Kind == JobOfferKind.Confirm
                        ? $"confirming the published product {offer.PublishedRoot?.Abbreviated} for agreement: {offer.Reason}"
                        : null;
                    return new GatewayTicket(this, offer.Kind == JobOfferKind.Build ? JobAction.Build : JobAction.Confirm, claim, offer.PublishedRoot, reason, ct)
                    {
                        ProductPath = job.ProductPath,
                        Environment = SiteEnvironment.Describe(job.Environment),
                    };
                case JobOfferKind.Done:
                    _slots.Release();
                    return waitedFor is null
                        ? new JobTicket(JobAction.Skip, JobOutcome.UpToDate, offer.PublishedRoot, "up to date", ct)
                        : new JobTicket(JobAction.Skip, JobOutcome.BuiltElsewhere, offer.PublishedRoot, $"built elsewhere ({waitedFor})", ct);
                default:
                    _slots.Release();
                    var holder = offer.Claim?.Site ?? "another site";
                    if (waitedFor is null)
                    {
                        monitor?.Started(job.Recipe, $"waiting: {holder} is building it");
                        _log.LogInformation("{Recipe}: {Holder} holds the claim; waiting", job.Recipe.Id, holder);
                    }

                    waitedFor = holder;
                    await Task.Delay(NextWait(backoff, offer.Claim, _time.GetUtcNow()), _time, ct).ConfigureAwait(false);
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.PollMax.Ticks));
                    break;
            }
        }
    }

    public async Task<TargetPublishResult> PublishAsync(JobTicket ticket, ProductRef product, string directory, PublishOptions options,
        IReadOnlyList<string> junitReports, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        var job = ticket as GatewayTicket ?? throw new ArgumentException("not a gateway ticket", nameof(ticket));
        var platform = options.Platform ?? throw new ArgumentException("the platform must be given", nameof(options));
        var staging = new StagingObjectStore(Path.Combine(_options.StagingDirectory, $"{product.Name}-{product.Version}-{Guid.NewGuid():N}"));
        try
        {
            var ingest = new Ingest(staging);
            var root = await DirectorySnapshot.StoreAsync(ingest, directory, null, ct).ConfigureAwait(false);
            var extras = new List<CommittedExtra>();
            foreach (var extra in options.ExtraFiles)
            {
                await using var stream = File.OpenRead(extra.HostFile);
                var name = extra.Path[(extra.Path.LastIndexOf('/') + 1)..];
                extras.Add(new CommittedExtra(extra.Path, await ingest.AddFileAsync(name, stream, stream.Length, extra.Executable, ct).ConfigureAwait(false)));
            }

            if (options.Attest is { } attest && options.Attestations is { } attestations)
            {
                // The site signs (its statements name the root just stored); the gateway only checks and stores them.
                using var bytes = new MemoryStream(attest(root.Digest), writable: false);
                extras.Add(new CommittedExtra(attestations, await ingest.AddFileAsync(attestations[(attestations.LastIndexOf('/') + 1)..], bytes, bytes.Length, false, ct).ConfigureAwait(false)));
            }

            var upload = await ObjectUploader.UploadAsync(_gateway, staging, [root, .. extras.Select(e => e.Entry)], _options.UploadParallelism, ct).ConfigureAwait(false);
            _log.LogInformation("{Product}: {Uploaded} of {Reachable} objects uploaded ({Bytes} bytes)", product, upload.ObjectsUploaded, upload.ObjectsReachable, upload.BytesUploaded);
            var mode = job.Action == JobAction.Confirm ? CommitMode.Confirm : CommitMode.Publish;
            var result = new BuildResult(job.Claim.BuildKey, Site, $"{platform}/{product.Name}/{product.Version}", root.Digest,
                JunitCases.Outcome(product.ToString(), junitReports, checkPassed: true, null), job.Environment, job.Elapsed, options.Log);
            var commit = new ProductCommit(mode, job.Claim.BuildKey, job.Claim.FencingToken, platform, product, root, extras, options.Dependencies,
                options.Tests, options.Log, _options.Channel, result) { Attestations = options.Attest is null ? null : options.Attestations };
            CommitOutcome outcome;
            job.Deciding();
            FaultPoints.Hit("site-commit");
            try
            {
                outcome = await _gateway.CommitAsync(commit, ct).ConfigureAwait(false);
            }
            catch (CairnException e) when (e.Code == ErrorCode.ClaimLost)
            {
                job.Lose(e.Message);
                throw;
            }

            job.Finished();
            var promotions = outcome.Promotions.Count == 0 ? "not promoted" : $"promoted to {string.Join(", ", outcome.Promotions)}";
            return new TargetPublishResult(outcome.RepositoryWritten ? PublishOutcome.Published : PublishOutcome.Unchanged, root.Digest, outcome.Revision,
                mode == CommitMode.Confirm ? JobOutcome.Confirmed : JobOutcome.Built, $"coherence {outcome.Coherence}, {promotions}");
        }
        finally
        {
            staging.Delete();
        }
    }

    public async Task ReportFailureAsync(JobTicket ticket, PackageResult failed, IReadOnlyList<string> junitReports, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(failed);
        if (ticket is not GatewayTicket job || job.IsLost) return;
        var checks = failed.Code == ErrorCodes.Name(ErrorCode.CheckFailed)
            ? JunitCases.Outcome(failed.Id, junitReports, checkPassed: false, failed.Reason)
            : JunitCases.BuildFailed(failed.Id, failed.Reason);
        var result = new BuildResult(job.Claim.BuildKey, Site, job.ProductPath, null, checks, job.Environment, job.Elapsed, null);
        job.Deciding();
        try
        {
            await _gateway.ReportFailureAsync(result, job.Claim.FencingToken, ct).ConfigureAwait(false);
            job.Finished();
        }
        catch (Exception e) when (e is CairnException or HttpRequestException or IOException)
        {
            // The failure stands either way; an unreported one only leaves the claim to expire.
            _log.LogWarning("could not report the failure of {Package} to the gateway: {Message}", failed.Id, e.Message);
        }
    }

    public void Dispose() => _slots.Dispose();

    /// <summary>A claimed job: heartbeats until the job ends, holds one build slot, releases an unfinished claim.</summary>
    private sealed class GatewayTicket : JobTicket
    {
        private readonly GatewayPublishTarget _target;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _heartbeats;
        private readonly long _started;
        private int _finished;
        private int _deciding;

        public GatewayTicket(GatewayPublishTarget target, JobAction action, Claim claim, Digest? publishedRoot, string? reason, CancellationToken ct)
            : base(action, null, publishedRoot, reason, ct)
        {
            _target = target;
            Claim = claim;
            _started = target._time.GetTimestamp();
            _heartbeats = HeartbeatAsync();
        }

        public Claim Claim { get; }

        public string ProductPath { get; init; } = "";

        public string Environment { get; init; } = "";

        public TimeSpan Elapsed => _target._time.GetElapsedTime(_started);

        /// <summary>The gateway has the result (committed or reported): the claim is no longer ours to keep or give back.</summary>
        public void Finished() => Volatile.Write(ref _finished, 1);

        /// <summary>
        /// The commit or failure report is on its way: from now on its answer, not a heartbeat, says whether the
        /// claim held (the gateway releases the claim as it records the result, so a heartbeat racing the answer
        /// would see a released claim and must not cancel a commit that landed).
        /// </summary>
        public void Deciding() => Volatile.Write(ref _deciding, 1);

        private async Task HeartbeatAsync()
        {
            var time = _target._time;
            var interval = _target._options.ClaimTtl / 3;
            var lastAck = time.GetTimestamp();
            while (true)
            {
                try
                {
                    await Task.Delay(interval, time, _stop.Token).ConfigureAwait(false);
                    await _target._gateway.HeartbeatAsync(Claim.BuildKey, Claim.FencingToken, _stop.Token).ConfigureAwait(false);
                    lastAck = time.GetTimestamp();
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    return;
                }
                catch (CairnException e) when (e.Code == ErrorCode.ClaimLost)
                {
                    if (Volatile.Read(ref _finished) != 0 || Volatile.Read(ref _deciding) != 0) return;
                    _target._log.LogWarning("{Site} lost its claim on {Key}: {Message}", _target.Site, Claim.BuildKey, e.Message);
                    Lose(e.Message);
                    return;
                }
                catch (Exception e)
                {
                    // The gateway may be restarting: keep trying until the claim would have expired anyway.
                    _target._log.LogWarning("heartbeat for {Key} failed: {Message}", Claim.BuildKey, e.Message);
                    if (Volatile.Read(ref _deciding) == 0 && time.GetElapsedTime(lastAck) >= _target._options.ClaimTtl)
                    {
                        Lose($"no heartbeat reached the gateway for the claim's whole TTL ({_target._options.ClaimTtl.TotalSeconds:0.#} s): {e.Message}");
                        return;
                    }
                }
            }
        }

        protected override async ValueTask EndJobAsync()
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            await _heartbeats.ConfigureAwait(false);
            _stop.Dispose();
            try
            {
                if (Volatile.Read(ref _finished) == 0 && !IsLost)
                {
                    // Cancelled or failed before a result: give the job back now rather than after the TTL.
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    await _target._gateway.ReleaseAsync(Claim.BuildKey, Claim.FencingToken, timeout.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is CairnException or HttpRequestException or IOException or OperationCanceledException)
            {
                _target._log.LogWarning("could not release the claim on {Key}: {Message}", Claim.BuildKey, e.Message);
            }
            finally
            {
                _target._slots.Release();
            }
        }
    }
}
