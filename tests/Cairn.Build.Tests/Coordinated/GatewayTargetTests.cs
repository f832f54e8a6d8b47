using Cairn.Build.Coordinated;
using Cairn.Build.Recipes;
using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Gateway.Client;
using Cairn.Repository;
using Microsoft.Extensions.Time.Testing;

namespace Cairn.Build.Tests.Coordinated;

/// <summary>The site side of the gateway without a gateway: staging and upload, waiting with back-off, heartbeats, claim loss.</summary>
public sealed class GatewayTargetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cairn-site-").FullName;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly Digest Key = Digest.Of("key"u8);

    private JobContext Job()
    {
        var recipes = Path.Combine(_dir, "recipes", "demo");
        Directory.CreateDirectory(recipes);
        File.WriteAllText(Path.Combine(recipes, "recipe.yml"), "name: demo\nversion: \"1.0\"\nbuild: |\n  true\ncheck: |\n  true\n");
        var graph = RecipeGraph.Load(Path.Combine(_dir, "recipes"));
        return new JobContext(graph.TopologicalOrder[0], "linux-x86_64", Key, UpToDate: false, Existing: null, Environment: null);
    }

    private GatewayPublishTarget Target(FakeGateway gateway, TimeSpan? ttl = null) =>
        new(gateway, null, "site-a", new GatewaySiteOptions
        {
            StagingDirectory = Path.Combine(_dir, "staging"),
            ClaimTtl = ttl ?? TimeSpan.FromSeconds(30),
            PollInitial = TimeSpan.FromSeconds(1),
            PollMax = TimeSpan.FromSeconds(4),
        }, _time);

    private static Claim ClaimOf(string site, long token, DateTimeOffset expires) => new(Key.ToString(), site, token, expires.AddSeconds(-30), expires);

    [Fact]
    public async Task Upload_sends_only_the_objects_the_gateway_lacks_and_they_complete_the_tree()
    {
        var product = Path.Combine(_dir, "product");
        Directory.CreateDirectory(Path.Combine(product, "lib"));
        File.WriteAllText(Path.Combine(product, "lib", "a.txt"), "shared with an earlier product");
        File.WriteAllText(Path.Combine(product, "b.txt"), "new");
        var big = new byte[3 << 20];
        new Random(5).NextBytes(big);
        File.WriteAllBytes(Path.Combine(product, "big.bin"), big);

        var gateway = new FakeGateway(_time);
        var earlier = Digest.Of("shared with an earlier product"u8);
        gateway.Objects[earlier] = "shared with an earlier product"u8.ToArray();

        var staging = new StagingObjectStore(Path.Combine(_dir, "staging"));
        var root = await DirectorySnapshot.StoreAsync(new Ingest(staging), product, null, CancellationToken.None);
        var staged = new List<Digest>();
        await foreach (var o in staging.ListAsync(CancellationToken.None)) staged.Add(o.Digest);

        var result = await ObjectUploader.UploadAsync(gateway, staging, [root], 4, CancellationToken.None);

        Assert.Equal(staged.Count, result.ObjectsReachable);
        Assert.Equal(staged.Count - 1, result.ObjectsUploaded);
        Assert.DoesNotContain(earlier, gateway.Puts);
        Assert.Equal(gateway.Puts.Count, gateway.Puts.Distinct().Count());
        Assert.True(big.Length > Chunker.Threshold, "the big file is chunked, so chunks and a chunk list are uploaded");

        // Everything reachable from the root is now on the gateway's side: read the tree back from there only.
        var remote = new DictionaryStore(gateway.Objects);
        var walker = new TreeWalker(remote);
        var files = new Dictionary<string, byte[]>();
        await foreach (var (path, entry) in walker.WalkAsync(root.Digest, CancellationToken.None))
        {
            if (!entry.IsFile) continue;
            using var buffer = new MemoryStream();
            await walker.CopyContentAsync(entry, buffer, CancellationToken.None);
            files[path] = buffer.ToArray();
        }

        Assert.Equal(["b.txt", "big.bin", "lib/a.txt"], files.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(big, files["big.bin"]);

        // A second upload of the same product sends nothing.
        var again = await ObjectUploader.UploadAsync(gateway, staging, [root], 4, CancellationToken.None);
        Assert.Equal(0, again.ObjectsUploaded);
    }

    [Fact]
    public async Task A_job_held_by_another_site_is_waited_for_with_back_off_until_it_is_published()
    {
        var gateway = new FakeGateway(_time);
        var far = _time.GetUtcNow().AddMinutes(5);
        var root = Digest.Of("published"u8);
        gateway.Offers.Add(_ => new JobOffer(JobOfferKind.HeldByOther, ClaimOf("site-b", 3, far), null, "held by site-b"));
        gateway.Offers.Add(_ => new JobOffer(JobOfferKind.HeldByOther, ClaimOf("site-b", 3, far), null, "held by site-b"));
        gateway.Offers.Add(_ => new JobOffer(JobOfferKind.HeldByOther, ClaimOf("site-b", 3, far), null, "held by site-b"));
        gateway.Offers.Add(_ => new JobOffer(JobOfferKind.HeldByOther, ClaimOf("site-b", 3, far), null, "held by site-b"));
        gateway.Offers.Add(_ => new JobOffer(JobOfferKind.Done, null, root, "published"));
        using var target = Target(gateway);

        var acquiring = target.AcquireAsync(Job(), null, CancellationToken.None);
        for (var i = 0; i < 200 && !acquiring.IsCompleted; i++)
        {
            await Task.Delay(10);
            _time.Advance(TimeSpan.FromMilliseconds(250));
        }

        await using var ticket = await acquiring;
        Assert.Equal(JobAction.Skip, ticket.Action);
        Assert.Equal(JobOutcome.BuiltElsewhere, ticket.SkipOutcome);
        Assert.Equal(root, ticket.PublishedRoot);
        Assert.Contains("site-b", ticket.Reason, StringComparison.Ordinal);
        var times = gateway.RequestTimes.ToList();
        Assert.Equal(5, times.Count);
        var gaps = times.Zip(times.Skip(1), (a, b) => b - a).ToList();
        // 1 s, 2 s, 4 s, then capped at 4 s (each observed to the 250 ms step of the fake clock).
        Assert.Equal([1, 2, 4, 4], gaps.Select(g => Math.Round(g.TotalSeconds)));
    }

    [Fact]
    public void The_wait_ends_just_after_the_holders_claim_expires()
    {
        var now = _time.GetUtcNow();
        Assert.Equal(TimeSpan.FromSeconds(8), GatewayPublishTarget.NextWait(TimeSpan.FromSeconds(8), ClaimOf("b", 1, now.AddMinutes(1)), now));
        Assert.Equal(TimeSpan.FromMilliseconds(2050), GatewayPublishTarget.NextWait(TimeSpan.FromSeconds(8), ClaimOf("b", 1, now.AddSeconds(2)), now));
        Assert.Equal(TimeSpan.FromMilliseconds(50), GatewayPublishTarget.NextWait(TimeSpan.FromSeconds(8), ClaimOf("b", 1, now.AddSeconds(-5)), now));
    }

    [Fact]
    public async Task A_claimed_job_heartbeats_every_third_of_its_ttl_and_a_lost_claim_cancels_it()
    {
        var gateway = new FakeGateway(_time) { HeartbeatsBeforeLoss = 2 };
        gateway.Offers.Add(_ => new JobOffer(JobOfferKind.Build, ClaimOf("site-a", 11, _time.GetUtcNow().AddSeconds(30)), null, "claimed"));
        using var target = Target(gateway, TimeSpan.FromSeconds(30));

        var ticket = await target.AcquireAsync(Job(), null, CancellationToken.None);
        Assert.Equal(JobAction.Build, ticket.Action);
        for (var i = 0; i < 100 && !ticket.IsLost; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(5);
        }

        Assert.Equal(2, gateway.Heartbeats.Count);
        var hb = gateway.Heartbeats.ToList();
        Assert.Equal(10, Math.Round((hb[1] - hb[0]).TotalSeconds));
        Assert.True(ticket.IsLost);
        Assert.True(ticket.Token.IsCancellationRequested);
        Assert.Contains("fencing token 11", ticket.LostReason, StringComparison.Ordinal);

        // A lost claim is not released (it is not ours any more); the build slot is given back.
        await ticket.DisposeAsync();
        Assert.Empty(gateway.Releases);
        gateway.Offers.Clear();
        gateway.Offers.Add(_ => new JobOffer(JobOfferKind.Done, null, Key, "published"));
        await using var next = await target.AcquireAsync(Job(), null, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(JobOutcome.UpToDate, next.SkipOutcome);
    }

    [Fact]
    public async Task An_abandoned_claim_is_released_and_a_failure_is_reported_with_the_failing_test()
    {
        var gateway = new FakeGateway(_time);
        gateway.Offers.Add(_ => new JobOffer(JobOfferKind.Build, ClaimOf("site-a", 21, _time.GetUtcNow().AddSeconds(30)), null, "claimed"));
        using var target = Target(gateway);

        await (await target.AcquireAsync(Job(), null, CancellationToken.None)).DisposeAsync();
        Assert.Equal([21L], gateway.Releases);

        var junit = Path.Combine(_dir, "report.xml");
        File.WriteAllText(junit, """
            <testsuite name="demo"><testcase classname="demo" name="runs"/><testcase classname="demo" name="needs-two-cpus"><failure message="nproc is 1"/></testcase></testsuite>
            """);
        var ticket = await target.AcquireAsync(Job(), null, CancellationToken.None);
        var failed = new PackageResult
        {
            Name = "demo", Version = "1.0", Status = PackageStatus.Failed, Reason = "check: 1 failed test", Code = ErrorCodes.Name(ErrorCode.CheckFailed),
        };
        await target.ReportFailureAsync(ticket, failed, [junit], CancellationToken.None);
        await ticket.DisposeAsync();

        var result = Assert.Single(gateway.Failures);
        Assert.Equal("site-a", result.Site);
        Assert.Equal("linux-x86_64/demo/1.0", result.Product);
        Assert.Null(result.OutputRoot);
        Assert.Equal(1, result.Checks.Passed);
        Assert.Equal(1, result.Checks.Failed);
        Assert.Contains(result.Checks.Tests!, t => t is { Name: "demo.needs-two-cpus", Outcome: TestOutcome.Failed });
        Assert.Contains("cpus ", result.Environment, StringComparison.Ordinal);
        Assert.Contains("kernel ", result.Environment, StringComparison.Ordinal);
        // Reported: the gateway released the claim, so the site does not release it again.
        Assert.Equal([21L], gateway.Releases);
    }

    [Fact]
    public async Task Publishing_stages_uploads_and_commits_under_the_claims_fencing_token()
    {
        var gateway = new FakeGateway(_time);
        gateway.Offers.Add(_ => new JobOffer(JobOfferKind.Confirm, ClaimOf("site-a", 31, _time.GetUtcNow().AddSeconds(30)), Key, "stable needs 2 sites"));
        using var target = Target(gateway);
        var product = Path.Combine(_dir, "prefix");
        Directory.CreateDirectory(Path.Combine(product, "bin"));
        File.WriteAllText(Path.Combine(product, "bin", "demo"), "#!/bin/sh\necho demo\n");
        var modulefile = Path.Combine(_dir, "modulefile");
        File.WriteAllText(modulefile, "#%Module1.0\n");

        await using var ticket = await target.AcquireAsync(Job(), null, CancellationToken.None);
        Assert.Equal(JobAction.Confirm, ticket.Action);
        var published = await target.PublishAsync(ticket, new ProductRef("demo", "1.0"), product, new PublishOptions
        {
            Platform = "linux-x86_64",
            BuildKey = Key.ToString(),
            ExtraFiles = [new ExtraFile("modules/linux-x86_64/demo/1.0", modulefile)],
            Log = "logs/linux-x86_64/demo/1.0/build.log",
        }, [], ticket.Token);

        var commit = Assert.Single(gateway.Commits);
        Assert.Equal(CommitMode.Confirm, commit.Mode);
        Assert.Equal(31, commit.FencingToken);
        Assert.Equal(Key.ToString(), commit.BuildKey);
        Assert.Equal("testing", commit.Channel);
        Assert.Equal(published.Root, commit.Root.Digest);
        Assert.Equal(published.Root, commit.Result.OutputRoot);
        Assert.Equal("modules/linux-x86_64/demo/1.0", Assert.Single(commit.Extras).Path);
        Assert.True(gateway.Objects.ContainsKey(commit.Extras[0].Entry.Digest));
        Assert.True(gateway.Objects.ContainsKey(commit.Root.Digest));
        Assert.Equal(JobOutcome.Confirmed, published.Job);
        Assert.Equal(PublishOutcome.Unchanged, published.Outcome);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_dir, "staging")));
    }

    /// <summary>A read-only object store over the fake gateway's objects.</summary>
    private sealed class DictionaryStore(System.Collections.Concurrent.ConcurrentDictionary<Digest, byte[]> objects) : IObjectStore
    {
        public ValueTask<bool> ContainsAsync(Digest digest, CancellationToken ct) => ValueTask.FromResult(objects.ContainsKey(digest));

        public ValueTask<byte[]> GetAsync(Digest digest, CancellationToken ct) =>
            objects.TryGetValue(digest, out var b) ? ValueTask.FromResult(b) : throw ObjectCodec.Missing(digest, "the fake gateway");

        public ValueTask PutAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct) => throw new NotSupportedException();

        public ValueTask FlushAsync(CancellationToken ct) => ValueTask.CompletedTask;

        public ValueTask AbortAsync(CancellationToken ct) => ValueTask.CompletedTask;

        public async IAsyncEnumerable<ObjectInfo> ListAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
        {
            await Task.Yield();
            foreach (var (d, b) in objects) yield return new ObjectInfo(d, b.Length, b.Length);
        }

        public ValueTask<RetainResult> RetainAsync(Func<Digest, bool> isLive, bool dryRun, CancellationToken ct) => throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
