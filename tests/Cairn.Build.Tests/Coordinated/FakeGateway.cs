using System.Collections.Concurrent;
using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;

namespace Cairn.Build.Tests.Coordinated;

/// <summary>
/// An in-memory gateway for the site-side pieces: offers come from a script, objects land in a dictionary,
/// every call is counted. The real gateway is tested in tests/Cairn.Gateway.Tests.
/// </summary>
internal sealed class FakeGateway(TimeProvider time) : IGateway
{
    public ConcurrentDictionary<Digest, byte[]> Objects { get; } = new();

    public ConcurrentQueue<Digest> Puts { get; } = new();

    public ConcurrentQueue<JobRequest> Requests { get; } = new();

    public ConcurrentQueue<DateTimeOffset> RequestTimes { get; } = new();

    public ConcurrentQueue<DateTimeOffset> Heartbeats { get; } = new();

    public ConcurrentQueue<long> Releases { get; } = new();

    public ConcurrentQueue<ProductCommit> Commits { get; } = new();

    public ConcurrentQueue<BuildResult> Failures { get; } = new();

    /// <summary>The offers to hand out, in order; the last one repeats.</summary>
    public List<Func<JobRequest, JobOffer>> Offers { get; } = [];

    /// <summary>Heartbeats after this many succeed throw ClaimLost.</summary>
    public int HeartbeatsBeforeLoss { get; set; } = int.MaxValue;

    public Task<SiteIdentity> WhoAmIAsync(CancellationToken ct) => Task.FromResult(new SiteIdentity("site-a", "0123456789abcdef", TokenScope.Everything));

    public Task<Site> DeclareCapabilitiesAsync(SiteCapabilities capabilities, CancellationToken ct) =>
        Task.FromResult(new Site("site-a", capabilities, time.GetUtcNow(), time.GetUtcNow()));

    public Task<JobOffer> RequestJobAsync(JobRequest job, CancellationToken ct)
    {
        var i = Requests.Count;
        Requests.Enqueue(job);
        RequestTimes.Enqueue(time.GetUtcNow());
        return Task.FromResult(Offers[Math.Min(i, Offers.Count - 1)](job));
    }

    public Task<Claim> HeartbeatAsync(string buildKey, long fencingToken, CancellationToken ct)
    {
        if (Heartbeats.Count >= HeartbeatsBeforeLoss)
        {
            throw new CairnException(ErrorCode.ClaimLost, $"the claim on {buildKey} with fencing token {fencingToken} expired");
        }

        Heartbeats.Enqueue(time.GetUtcNow());
        return Task.FromResult(new Claim(buildKey, "site-a", fencingToken, time.GetUtcNow(), time.GetUtcNow().AddSeconds(30)));
    }

    public Task<bool> ReleaseAsync(string buildKey, long fencingToken, CancellationToken ct)
    {
        Releases.Enqueue(fencingToken);
        return Task.FromResult(true);
    }

    public Task<IReadOnlyList<Digest>> MissingObjectsAsync(IReadOnlyList<Digest> digests, CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<Digest>>([.. digests.Where(d => !Objects.ContainsKey(d))]);

    public Task PutObjectAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct)
    {
        if (Digest.Of(content.Span) != digest) throw new CairnException(ErrorCode.Internal, "content does not match its digest");
        Puts.Enqueue(digest);
        Objects[digest] = content.ToArray();
        return Task.CompletedTask;
    }

    public Task<CommitOutcome> CommitAsync(ProductCommit commit, CancellationToken ct)
    {
        Commits.Enqueue(commit);
        return Task.FromResult(new CommitOutcome(7, commit.Mode == CommitMode.Publish, CoherenceStatus.Agreement, ["testing"], "ok"));
    }

    public Task<BuildResult> ReportFailureAsync(BuildResult result, long fencingToken, CancellationToken ct)
    {
        Failures.Enqueue(result);
        return Task.FromResult(result);
    }

    public Task<GatewayCoherence> GetCoherenceAsync(string buildKey, CancellationToken ct) => throw new NotSupportedException();

    public Task<IReadOnlyList<GatewayCoherence>> FindCoherenceAsync(string? product, CancellationToken ct) => throw new NotSupportedException();
}
