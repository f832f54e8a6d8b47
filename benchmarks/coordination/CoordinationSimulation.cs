using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Cairn.Core;

namespace Cairn.Coordination.Simulation;

/// <summary>What the simulation runs: sites, jobs, crashes and timings.</summary>
public sealed record SimulationOptions
{
    public int Sites { get; init; } = 50;

    public int Jobs { get; init; } = 5000;

    /// <summary>Each job depends on up to this many earlier jobs, picked among the <see cref="DependencyWindow"/> before it.</summary>
    public int MaxDependencies { get; init; } = 3;

    public int DependencyWindow { get; init; } = 200;

    /// <summary>Sites that crash once, right after a claim is granted: they stop heartbeating and never release it.</summary>
    public int CrashingSites { get; init; } = 5;

    public TimeSpan ClaimTtl { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>A simulated build sleeps between zero and this long, heartbeating at least once.</summary>
    public TimeSpan MaxBuildTime { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>Share of jobs that need the "gpu" label, and share of sites that have it.</summary>
    public double GpuJobs { get; init; } = 0.1;

    public double GpuSites { get; init; } = 0.3;

    public int Seed { get; init; } = 1;

    /// <summary>The run gives up (and reports the jobs not committed) after this long.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(20);
}

public sealed record OperationStats(string Operation, long Count, double P50Ms, double P99Ms, double MaxMs);

/// <param name="DoubleBuilds">Build keys committed more than once (must be 0).</param>
/// <param name="LostCommits">Commits the store acknowledged that are not in its commit log at the end (must be 0).</param>
/// <param name="Reclaims">Claims granted on a key whose earlier claim expired (the crashed sites' jobs).</param>
/// <param name="RepublishRefused">Builds that reached the commit after another site had committed the job (wasted work after a claim expired under load).</param>
/// <param name="Errors">Operations that threw something other than the expected ClaimLost (retried).</param>
public sealed record SimulationReport(
    string Backend,
    int Sites,
    int Jobs,
    TimeSpan Elapsed,
    long ClaimsGranted,
    long ClaimsRefused,
    long Commits,
    long Reclaims,
    int CrashedSites,
    long DoubleBuilds,
    long LostCommits,
    long JobsNotCommitted,
    long ClaimsLost,
    long LeaseConflicts,
    long RepublishRefused,
    long Errors,
    IReadOnlyList<OperationStats> Operations)
{
    public double ClaimsPerSecond => ClaimsGranted / Elapsed.TotalSeconds;

    public double CommitsPerSecond => Commits / Elapsed.TotalSeconds;

    public string Format()
    {
        var text = new StringBuilder();
        text.AppendLine($"{Backend}: {Sites} sites, {Jobs} jobs in {Elapsed.TotalSeconds:0.0} s");
        text.AppendLine($"  claims granted {ClaimsGranted} ({ClaimsPerSecond:0.0}/s), refused {ClaimsRefused}; commits {Commits} ({CommitsPerSecond:0.0}/s)");
        text.AppendLine($"  crashed sites {CrashedSites}, reclaimed after TTL {Reclaims}, claims lost {ClaimsLost}, lease conflicts {LeaseConflicts}, " +
                        $"second builds refused at commit {RepublishRefused}, errors {Errors}");
        text.AppendLine($"  double builds {DoubleBuilds}, lost commits {LostCommits}, jobs not committed {JobsNotCommitted}");
        text.AppendLine($"  {"operation",-10} {"count",8} {"p50 ms",8} {"p99 ms",8} {"max ms",8}");
        foreach (var o in Operations)
        {
            text.AppendLine($"  {o.Operation,-10} {o.Count,8} {o.P50Ms,8:0.00} {o.P99Ms,8:0.00} {o.MaxMs,8:0.00}");
        }

        return text.ToString();
    }
}

/// <summary>
/// Many sites working through a DAG of jobs against one coordination store, each site with its own store instance
/// (and so its own connections), doing per job what a site does: claim (with capability requirements), heartbeat
/// while building, lease the product's path, validate the fencing token and the lease, record the commit and the
/// result, release the lease and the claim. Which jobs are ready is the gateway's knowledge (its plan), kept in
/// memory here; the store alone decides who builds. Some sites crash after a claim; their jobs must be taken over
/// after the TTL. At the end the store's commit log is checked: every job committed once, every acknowledged commit there.
/// </summary>
public sealed class CoordinationSimulation
{
    private const string Platform = "linux-x86_64";

    private readonly SimulationOptions _o;
    private readonly int[][] _dependents;
    private readonly int[] _waiting;
    private readonly bool[] _gpu;
    private readonly bool[] _done;
    private readonly int[] _grants;
    private readonly long[] _believedClaimedUntil;
    private readonly SemaphoreSlim[] _publishLocks;
    private readonly List<int> _ready = [];
    private readonly Lock _gate = new();
    private readonly ConcurrentDictionary<string, ConcurrentBag<double>> _latencies = new(StringComparer.Ordinal);
    private readonly ConcurrentBag<long> _acknowledged = [];
    private readonly string _run = Guid.NewGuid().ToString("N")[..8];
    private int _doneCount;
    private long _claimsGranted, _claimsRefused, _reclaims, _refusedRepublish, _claimsLost, _leaseConflicts, _errors, _revision;
    private int _crashed;

    private CoordinationSimulation(SimulationOptions options)
    {
        _o = options;
        var random = new Random(options.Seed);
        var deps = new List<int>[options.Jobs];
        _waiting = new int[options.Jobs];
        _gpu = new bool[options.Jobs];
        _done = new bool[options.Jobs];
        _grants = new int[options.Jobs];
        _believedClaimedUntil = new long[options.Jobs];
        _publishLocks = [.. Enumerable.Range(0, options.Jobs).Select(_ => new SemaphoreSlim(1, 1))];
        for (var i = 0; i < options.Jobs; i++)
        {
            deps[i] = [];
            _gpu[i] = random.NextDouble() < options.GpuJobs;
            var count = i == 0 ? 0 : random.Next(0, options.MaxDependencies + 1);
            var chosen = new HashSet<int>();
            for (var d = 0; d < count; d++) chosen.Add(random.Next(Math.Max(0, i - options.DependencyWindow), i));
            _waiting[i] = chosen.Count;
            foreach (var c in chosen) deps[c].Add(i);
        }

        _dependents = [.. deps.Select(d => d.ToArray())];
        for (var i = 0; i < options.Jobs; i++)
        {
            if (_waiting[i] == 0) _ready.Add(i);
        }
    }

    private string Key(int job) => $"sim-{_run}-{job:D6}";

    private static string PathOf(int job) => $"{Platform}/pkg{job}/1.0";

    /// <summary>Runs the simulation. <paramref name="storeForSite"/> gives each site its own store (already migrated); <paramref name="admin"/> registers sites and reads the commit log.</summary>
    public static async Task<SimulationReport> RunAsync(string backend, ICoordinationStore admin, Func<int, ICoordinationStore> storeForSite, SimulationOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(admin);
        ArgumentNullException.ThrowIfNull(storeForSite);
        ArgumentNullException.ThrowIfNull(options);
        var sim = new CoordinationSimulation(options);
        var random = new Random(options.Seed + 1);
        var sites = new List<(string Name, bool Gpu, int CrashAfter)>();
        for (var s = 0; s < options.Sites; s++)
        {
            var gpu = s < Math.Max(1, (int)Math.Round(options.Sites * options.GpuSites));
            // Crashing sites are the last ones, so at least one gpu site stays alive.
            // Early in its share of the jobs (a quarter of a fair share at most), so the crash surely happens.
            var crashAfter = s >= options.Sites - options.CrashingSites ? random.Next(1, Math.Max(2, options.Jobs / options.Sites / 4)) : -1;
            var name = $"site-{sim._run}-{s:D3}";
            await admin.RegisterSiteAsync(name, new SiteCapabilities(Platform, null, gpu ? ["gpu"] : []), ct).ConfigureAwait(false);
            sites.Add((name, gpu, crashAfter));
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(options.Timeout);
        var clock = Stopwatch.StartNew();
        var stores = sites.Select((_, i) => storeForSite(i)).ToList();
        try
        {
            var tasks = sites.Select((site, i) => Task.Run(() => sim.SiteAsync(stores[i], site.Name, site.Gpu, site.CrashAfter, options.Seed * 1000 + i, timeout.Token))).ToList();
            try
            {
                await Task.WhenAll(tasks).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                // Timed out: the report says how many jobs were not committed.
            }
        }
        finally
        {
            foreach (var store in stores) await store.DisposeAsync().ConfigureAwait(false);
        }

        var elapsed = clock.Elapsed;
        return await sim.ReportAsync(backend, admin, elapsed, ct).ConfigureAwait(false);
    }

    private async Task<T> TimedAsync<T>(string operation, Func<Task<T>> action)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return await action().ConfigureAwait(false);
        }
        finally
        {
            _latencies.GetOrAdd(operation, _ => []).Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
    }

    /// <summary>A job this site can build that is ready and not known to be claimed, or -1.</summary>
    private int Pick(bool gpu, Random random)
    {
        var now = Environment.TickCount64;
        lock (_gate)
        {
            Span<int> candidates = stackalloc int[8];
            var n = 0;
            foreach (var job in _ready)
            {
                if (_done[job] || (_gpu[job] && !gpu) || _believedClaimedUntil[job] > now) continue;
                candidates[n++] = job;
                if (n == candidates.Length) break;
            }

            return n == 0 ? -1 : candidates[random.Next(n)];
        }
    }

    private bool IsDone(int job)
    {
        lock (_gate) return _done[job];
    }

    private void MarkDone(int job)
    {
        lock (_gate)
        {
            if (_done[job]) return;
            _done[job] = true;
            _ready.Remove(job);
            _doneCount++;
            foreach (var d in _dependents[job])
            {
                if (--_waiting[d] == 0) _ready.Add(d);
            }
        }
    }

    private bool AllDone()
    {
        lock (_gate) return _doneCount == _o.Jobs;
    }

    private async Task SiteAsync(ICoordinationStore store, string site, bool gpu, int crashAfter, int seed, CancellationToken ct)
    {
        var random = new Random(seed);
        var granted = 0;
        while (!AllDone())
        {
            ct.ThrowIfCancellationRequested();
            var job = Pick(gpu, random);
            if (job < 0)
            {
                await Task.Delay(random.Next(5, 20), ct).ConfigureAwait(false);
                continue;
            }

            var key = Key(job);
            ClaimResult claim;
            try
            {
                claim = await TimedAsync("claim", () => store.TryClaimAsync(key, site, _o.ClaimTtl,
                    new JobRequirements(Platform, null, _gpu[job] ? ["gpu"] : null), ct)).ConfigureAwait(false);
            }
            catch (CairnException)
            {
                Interlocked.Increment(ref _errors);
                await Task.Delay(10, ct).ConfigureAwait(false);
                continue;
            }

            if (!claim.Granted)
            {
                Interlocked.Increment(ref _claimsRefused);
                // What a gateway would remember: someone holds it until then.
                lock (_gate) _believedClaimedUntil[job] = Math.Max(_believedClaimedUntil[job], Environment.TickCount64 + (long)(claim.Claim.ExpiresAt - DateTimeOffset.UtcNow).TotalMilliseconds);
                continue;
            }

            Interlocked.Increment(ref _claimsGranted);
            // A second grant on a job not yet done is a take-over of an expired claim.
            if (Interlocked.Increment(ref _grants[job]) > 1 && !IsDone(job)) Interlocked.Increment(ref _reclaims);
            lock (_gate) _believedClaimedUntil[job] = Environment.TickCount64 + (long)_o.ClaimTtl.TotalMilliseconds;
            if (++granted == crashAfter)
            {
                // Crash: no heartbeat, no release; the claim expires and another site takes the job.
                Interlocked.Increment(ref _crashed);
                return;
            }

            var token = claim.Claim.FencingToken;
            try
            {
                if (!IsDone(job)) await BuildAndCommitAsync(store, site, job, key, token, random, ct).ConfigureAwait(false);
            }
            catch (CairnException e) when (e.Code == ErrorCode.ClaimLost)
            {
                Interlocked.Increment(ref _claimsLost);
            }
            catch (CairnException)
            {
                Interlocked.Increment(ref _errors);
            }

            try
            {
                await TimedAsync("release", () => store.ReleaseAsync(key, site, token, ct)).ConfigureAwait(false);
            }
            catch (CairnException)
            {
                Interlocked.Increment(ref _errors);
            }
        }
    }

    private async Task BuildAndCommitAsync(ICoordinationStore store, string site, int job, string key, long token, Random random, CancellationToken ct)
    {
        // The build, heartbeating at least once and at least every third of the TTL.
        var remaining = TimeSpan.FromMilliseconds(random.NextDouble() * _o.MaxBuildTime.TotalMilliseconds);
        var step = _o.ClaimTtl / 3;
        do
        {
            var part = remaining < step ? remaining : step;
            await Task.Delay(part / 2, ct).ConfigureAwait(false);
            await TimedAsync("heartbeat", () => store.HeartbeatAsync(key, site, token, _o.ClaimTtl, ct)).ConfigureAwait(false);
            await Task.Delay(part / 2, ct).ConfigureAwait(false);
            remaining -= part;
        }
        while (remaining > TimeSpan.Zero);

        string[] paths = [PathOf(job)];
        LeaseResult lease;
        while (true)
        {
            lease = await TimedAsync("lease", () => store.AcquireLeaseAsync(paths, site, _o.ClaimTtl, ct)).ConfigureAwait(false);
            if (lease.Granted) break;
            Interlocked.Increment(ref _leaseConflicts);
            await Task.Delay(random.Next(1, 5), ct).ConfigureAwait(false);
        }

        var leaseId = lease.Lease!.Id;
        var publish = _publishLocks[job];
        try
        {
            // The repository's side of a commit: the catalog check, the fencing check and the commit happen under
            // the repository's commit lock (per product here, so unrelated commits do not queue). The store's lease
            // alone is not enough: under load a commit can outlast the lease's TTL and a second holder then commits too.
            await publish.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                if (IsDone(job))
                {
                    Interlocked.Increment(ref _refusedRepublish);
                    return;
                }

                await TimedAsync("validate", () => store.ValidateFencingTokenAsync(key, site, token, ct)).ConfigureAwait(false);
                await TimedAsync("validlease", () => store.ValidateLeaseAsync(leaseId, site, paths, ct)).ConfigureAwait(false);
                var root = Digest.Of(Encoding.UTF8.GetBytes(key));
                var record = await TimedAsync("commit", () => store.RecordCommitAsync(new CommitRequest(site, null, leaseId, key, token, paths, null,
                    Interlocked.Increment(ref _revision), root, $"build {key}"), ct)).ConfigureAwait(false);
                _acknowledged.Add(record.Id);
                MarkDone(job);
                await TimedAsync("result", () => store.RecordResultAsync(new BuildResult(key, site, paths[0], root, new CheckOutcome(1, 0, 0),
                    "simulated", TimeSpan.FromMilliseconds(1), null), ct)).ConfigureAwait(false);
            }
            finally
            {
                publish.Release();
            }
        }
        finally
        {
            await TimedAsync("unlease", () => store.ReleaseLeaseAsync(leaseId, site, ct)).ConfigureAwait(false);
        }
    }

    private async Task<SimulationReport> ReportAsync(string backend, ICoordinationStore admin, TimeSpan elapsed, CancellationToken ct)
    {
        var commits = new List<CommitRecord>();
        var after = 0L;
        while (true)
        {
            var page = await admin.ListCommitsAsync(after, 1000, ct).ConfigureAwait(false);
            if (page.Count == 0) break;
            commits.AddRange(page);
            after = page[^1].Id;
        }

        var ours = commits.Where(c => c.Commit.BuildKey?.StartsWith($"sim-{_run}-", StringComparison.Ordinal) == true).ToList();
        var ids = ours.Select(c => c.Id).ToHashSet();
        var perKey = ours.GroupBy(c => c.Commit.BuildKey!).ToList();
        var stats = _latencies.OrderBy(kv => Order(kv.Key)).Select(kv =>
        {
            var values = kv.Value.ToArray();
            Array.Sort(values);
            return new OperationStats(kv.Key, values.Length, Percentile(values, 0.50), Percentile(values, 0.99), values[^1]);
        }).ToList();
        return new SimulationReport(backend, _o.Sites, _o.Jobs, elapsed, _claimsGranted, _claimsRefused, ours.Count,
            _reclaims, _crashed,
            perKey.Sum(g => g.Count() - 1), _acknowledged.Count(id => !ids.Contains(id)), _o.Jobs - perKey.Count,
            _claimsLost, _leaseConflicts, _refusedRepublish, _errors, stats);
    }

    private static int Order(string operation) => Array.IndexOf(["claim", "heartbeat", "lease", "validate", "validlease", "commit", "result", "unlease", "release"], operation);

    private static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
}
