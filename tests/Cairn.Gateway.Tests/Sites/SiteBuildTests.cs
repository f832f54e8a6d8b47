using Cairn.Build;
using Cairn.Build.Coordinated;
using Cairn.Coordination;
using Cairn.Core;
using Cairn.Gateway.Tests.Infrastructure;
using Cairn.Repository.FileSystem;

namespace Cairn.Gateway.Tests.Sites;

/// <summary>
/// Sites building through a real gateway: three <c>cairn build --gateway</c> processes and one <c>cairn gateway</c>
/// on loopback, real bubblewrap builds of quick shell recipes (seconds each), short claim TTLs. Counts come from
/// both sides: what each site says it did (--json) and what the gateway recorded (results per build key, commits).
/// </summary>
public sealed class SiteBuildTests
{
    private const string Platform = "linux-x86_64";

    /// <summary>a → b, c → d: two independent middle jobs, so sites can split the work.</summary>
    private static string SyntheticStack(TempDir dir)
    {
        var recipes = dir.Sub("recipes");
        Recipe(recipes, "a", [], """echo "a 1" > "$SOFT_DIR/share/a.txt"; sleep 1""");
        Recipe(recipes, "b", ["a"], """cat "$A_DIR/share/a.txt" > "$SOFT_DIR/share/b.txt"; echo b >> "$SOFT_DIR/share/b.txt"; sleep 1""");
        Recipe(recipes, "c", ["a"], """cat "$A_DIR/share/a.txt" > "$SOFT_DIR/share/c.txt"; echo c >> "$SOFT_DIR/share/c.txt"; sleep 1""");
        Recipe(recipes, "d", ["b", "c"], """cat "$B_DIR/share/b.txt" "$C_DIR/share/c.txt" > "$SOFT_DIR/share/d.txt"; sleep 1""");
        return recipes;
    }

    private static void Recipe(string recipes, string name, IReadOnlyList<string> deps, string build, string? check = null)
    {
        var dir = Path.Combine(recipes, name);
        Directory.CreateDirectory(dir);
        var depLines = deps.Count == 0 ? "" : $"dependencies: [{string.Join(", ", deps)}]\n";
        File.WriteAllText(Path.Combine(dir, "recipe.yml"),
            $"name: {name}\nversion: \"1.0\"\n{depLines}build: |\n  mkdir -p \"$SOFT_DIR/share\"\n  {build}\ncheck: |\n  {check ?? $"test -s \"$SOFT_DIR/share/{name}.txt\""}\n");
    }

    private static async Task SetStableAsync(GatewayProcess gateway, int k)
    {
        await using var store = await gateway.OpenDatabaseAsync();
        await store.SetChannelPolicyAsync(new ChannelPolicy(ChannelPolicy.Stable, k), CancellationToken.None);
    }

    private static async Task<Catalog> CatalogAsync(GatewayProcess gateway)
    {
        await using var repo = await DirectoryRepository.OpenAsync(gateway.Repository, TimeProvider.System, null, TimeSpan.FromSeconds(30), CancellationToken.None);
        return await repo.CatalogAsync(await repo.HeadAsync(CancellationToken.None), CancellationToken.None);
    }

    private static int Count(IEnumerable<SiteProcess.Outcome> outcomes, string package, JobOutcome job) =>
        outcomes.Sum(o => o.Result.Packages.Count(p => p.Name == package && p.Job == job));

    [Theory]
    [InlineData(DatabaseKind.Sqlite, 1)]
    [InlineData(DatabaseKind.PostgreSql, 2)]
    public async Task Three_sites_build_one_stack_at_once_each_job_the_expected_number_of_times_and_nothing_is_lost(DatabaseKind db, int stableK)
    {
        using var dir = new TempDir("cairn-sites");
        await using var gateway = await GatewayProcess.StartAsync(new GatewayProcessOptions { Database = db });
        await SetStableAsync(gateway, stableK);
        var recipes = SyntheticStack(dir);

        var sites = new List<SiteProcess>();
        try
        {
            foreach (var name in new[] { "site-a", "site-b", "site-c" }) sites.Add(await SiteProcess.StartAsync(gateway, name, recipes, dir, claimTtl: "10s"));
            var outcomes = new List<SiteProcess.Outcome>();
            foreach (var site in sites) outcomes.Add(await site.ExitAsync());

            foreach (var o in outcomes)
            {
                Assert.True(o.ExitCode == 0, o.Stderr);
                Assert.All(o.Result.Packages, p => Assert.True(p.Ok, $"{p.Id}: {p.Status} {p.Reason}"));
            }

            var catalog = await CatalogAsync(gateway);
            await using var store = await gateway.OpenDatabaseAsync();
            foreach (var package in new[] { "a", "b", "c", "d" })
            {
                // Built once; with stable K=2 confirmed once more by another site; never more.
                var story = string.Join("\n", outcomes.Select(o => string.Join("\n", o.Stderr.Split('\n').Where(l => l.Contains($"{package}/1.0", StringComparison.Ordinal)))));
                Assert.True(Count(outcomes, package, JobOutcome.Built) == 1, story);
                Assert.True(Count(outcomes, package, JobOutcome.Confirmed) == stableK - 1, story);
                var record = catalog.Find(Platform, new ProductRef(package, "1.0"));
                Assert.NotNull(record);
                var keys = outcomes.Select(o => o.Result.Packages.Single(p => p.Name == package).BuildKey).Distinct().ToList();
                Assert.Equal([record.BuildKey], keys);

                var results = await store.GetResultsAsync(record.BuildKey!, CancellationToken.None);
                Assert.Equal(stableK, results.Count);
                Assert.All(results, r => Assert.Equal(record.Root, r.OutputRoot));
                Assert.All(results, r => Assert.Contains("cpus ", r.Environment, StringComparison.Ordinal));
                var promotions = (await store.GetPromotionsAsync(record.BuildKey!, CancellationToken.None)).Select(p => p.Channel).ToList();
                Assert.Contains(ChannelPolicy.Testing, promotions);
                Assert.Contains(ChannelPolicy.Stable, promotions);
            }

            // Each product was written to the repository once.
            var commits = await store.ListCommitsAsync(0, 1000, CancellationToken.None);
            foreach (var package in new[] { "a", "b", "c", "d" })
            {
                var key = catalog.Find(Platform, new ProductRef(package, "1.0"))!.BuildKey;
                // Publish commits hold a lease; confirmations record the head revision and no lease.
                Assert.Single(commits, c => c.Commit.BuildKey == key && c.Commit.LeaseId > 0);
                Assert.Equal(stableK - 1, commits.Count(c => c.Commit.BuildKey == key && c.Commit.LeaseId == 0));
            }

            var verify = await Exec.CairnAsync("--repo", gateway.Repository, "verify");
            Assert.True(verify.ExitCode == 0, verify.ToString());

            // Planning against the gateway (its served repository, no token): everything is up to date.
            var plan = await Exec.CairnAsync("--json", "plan", recipes, "--gateway", gateway.Url.AbsoluteUri, "--site", "site-a");
            Assert.True(plan.ExitCode == 0, plan.ToString());
            Assert.Equal(4, System.Text.RegularExpressions.Regex.Count(plan.Stdout, "\"action\":\\s*\"upToDate\""));

            // A site cannot take its dependencies from elsewhere: refused before anything runs, not ignored.
            var token = await gateway.TokenFileAsync("site-a", dir.Path);
            var mixed = await Exec.CairnAsync("build", recipes, "--gateway", gateway.Url.AbsoluteUri, "--token-file", token, "--deps-from", "tarballs:" + dir.Path);
            Assert.Equal(2, mixed.ExitCode);
            Assert.Contains("CAIRN-E0100", mixed.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var s in sites) await s.DisposeAsync();
        }
    }

    /// <summary>examples/stack of this source tree (the binaries may be built anywhere: --artifacts-path).</summary>
    private static string ExampleStack([System.Runtime.CompilerServices.CallerFilePath] string sourceFile = "")
    {
        for (var dir = new DirectoryInfo(Path.GetDirectoryName(sourceFile)!); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Cairn.slnx"))) return Path.Combine(dir.FullName, "examples", "stack");
        }

        throw new InvalidOperationException($"the repository root (Cairn.slnx) is not above {sourceFile}");
    }

    /// <summary>
    /// The real example stack on PostgreSQL with stable K=2: hello and zlib by default; with CAIRN_SLOW_EXAMPLES=1
    /// (as Cairn.Build.Tests' slow examples) hello and zlib → libpng → freetype, 8 real builds (gsl is left out).
    /// </summary>
    [Fact]
    public async Task Three_sites_build_the_example_stack_on_postgresql_each_job_built_and_confirmed_once()
    {
        using var dir = new TempDir("cairn-sites");
        await using var gateway = await GatewayProcess.StartAsync(new GatewayProcessOptions { Database = DatabaseKind.PostgreSql });
        await SetStableAsync(gateway, 2);
        var slow = Environment.GetEnvironmentVariable("CAIRN_SLOW_EXAMPLES") is "1" or "all";
        var only = new[] { "--only", "hello", "--only", slow ? "freetype" : "zlib" };
        (string Name, string Version)[] packages = slow
            ? [("hello", "2.10"), ("zlib", "1.2.13"), ("libpng", "1.6.39"), ("freetype", "2.12.1")]
            : [("hello", "2.10"), ("zlib", "1.2.13")];
        var sites = new List<SiteProcess>();
        try
        {
            foreach (var name in new[] { "site-a", "site-b", "site-c" })
            {
                sites.Add(await SiteProcess.StartAsync(gateway, name, ExampleStack(), dir, claimTtl: "30s", extra: only));
            }

            var outcomes = new List<SiteProcess.Outcome>();
            foreach (var site in sites) outcomes.Add(await site.ExitAsync(TimeSpan.FromMinutes(20)));
            Assert.All(outcomes, o => Assert.True(o.ExitCode == 0, o.Stderr));

            var catalog = await CatalogAsync(gateway);
            await using var store = await gateway.OpenDatabaseAsync();
            Assert.All(outcomes, o => Assert.Equal(packages.Length, o.Result.Packages.Count));
            foreach (var (name, version) in packages)
            {
                Assert.Equal(1, Count(outcomes, name, JobOutcome.Built));
                Assert.Equal(1, Count(outcomes, name, JobOutcome.Confirmed));
                var record = catalog.Find(Platform, new ProductRef(name, version));
                Assert.NotNull(record);
                Assert.Equal(2, (await store.GetResultsAsync(record.BuildKey!, CancellationToken.None)).Count);
            }

            var verify = await Exec.CairnAsync("--repo", gateway.Repository, "verify");
            Assert.True(verify.ExitCode == 0, verify.ToString());
        }
        finally
        {
            foreach (var s in sites) await s.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_site_killed_mid_build_loses_its_job_to_another_site_after_the_ttl()
    {
        using var dir = new TempDir("cairn-sites");
        await using var gateway = await GatewayProcess.StartAsync();
        await SetStableAsync(gateway, 1);
        var recipes = dir.Sub("recipes");
        Recipe(recipes, "slow", [], """echo slow > "$SOFT_DIR/share/slow.txt"; sleep 4""");

        await using var a = await SiteProcess.StartAsync(gateway, "site-a", recipes, dir);
        await a.WaitForAsync("building slow/1.0");
        await Task.Delay(1000); // into the sandboxed build
        await using var b = await SiteProcess.StartAsync(gateway, "site-b", recipes, dir);
        await b.WaitForAsync("slow/1.0: site-a holds the claim");
        await a.SignalAsync("KILL");

        var outcome = await b.ExitAsync();
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        var slow = Assert.Single(outcome.Result.Packages);
        Assert.Equal(JobOutcome.Built, slow.Job);

        await using var store = await gateway.OpenDatabaseAsync();
        var results = await store.GetResultsAsync(slow.BuildKey!, CancellationToken.None);
        Assert.Equal("site-b", Assert.Single(results).Site);
        var commit = Assert.Single(await store.ListCommitsAsync(0, 100, CancellationToken.None), c => c.Commit.BuildKey == slow.BuildKey);
        Assert.Equal("site-b", commit.Commit.Site);
        Assert.Equal(slow.Product, (await CatalogAsync(gateway)).Find(Platform, new ProductRef("slow", "1.0"))!.Root);
    }

    [Fact]
    public async Task A_site_frozen_mid_build_past_its_ttl_loses_its_claim_and_the_other_sites_product_stays()
    {
        using var dir = new TempDir("cairn-sites");
        await using var gateway = await GatewayProcess.StartAsync();
        await SetStableAsync(gateway, 1);
        var recipes = dir.Sub("recipes");
        // Random content: each site's product has its own root, so the catalog shows whose product it holds.
        Recipe(recipes, "slow", [], """head -c 8 /dev/urandom | od -An -tx1 > "$SOFT_DIR/share/slow.txt"; sleep 3""");

        await using var a = await SiteProcess.StartAsync(gateway, "site-a", recipes, dir);
        await a.WaitForAsync("building slow/1.0");
        await Task.Delay(1000); // into the sandboxed build
        await a.SignalAsync("STOP");
        await using var b = await SiteProcess.StartAsync(gateway, "site-b", recipes, dir);
        var built = await AssertBuiltAsync(b);
        await AssertClaimLostOnResumeAsync(a);

        await AssertOnlySiteBPublishedAsync(gateway, built);
    }

    [Fact]
    public async Task A_site_frozen_past_its_ttl_has_its_late_commit_refused_and_the_other_sites_product_stays()
    {
        using var dir = new TempDir("cairn-sites");
        await using var gateway = await GatewayProcess.StartAsync(new GatewayProcessOptions { ExtraArguments = ["--verbose"] });
        await SetStableAsync(gateway, 1);
        var recipes = dir.Sub("recipes");
        // Random content: each site's product has its own root, so the catalog shows whose product it holds.
        Recipe(recipes, "slow", [], """head -c 8 /dev/urandom | od -An -tx1 > "$SOFT_DIR/share/slow.txt" """);

        // site-a freezes (SIGSTOP, at a fault point) with its product built, checked and uploaded, just before it
        // sends the commit: no heartbeat can tell it the claim is gone, so the stale token does reach the gateway.
        await using var a = await SiteProcess.StartAsync(gateway, "site-a", recipes, dir,
            env: new Dictionary<string, string> { ["CAIRN_FAULT_POINT"] = "site-commit:stop" });
        await a.WaitUntilStoppedAsync();
        await using var b = await SiteProcess.StartAsync(gateway, "site-b", recipes, dir);
        var built = await AssertBuiltAsync(b);
        await AssertClaimLostOnResumeAsync(a);

        // The gateway's log: the commit with site-a's stale fencing token arrived and was refused there.
        var refused = $"POST /v1/commits: {ErrorCodes.Name(ErrorCode.ClaimLost)} site site-a's claim on job {built.BuildKey}";
        Assert.True(gateway.Log.Contains(refused, StringComparison.Ordinal), $"no refused commit from site-a in the gateway's log:\n{gateway.Log}");

        await AssertOnlySiteBPublishedAsync(gateway, built);
    }

    /// <summary>The site ran to the end and built its one package.</summary>
    private static async Task<PackageResult> AssertBuiltAsync(SiteProcess site)
    {
        var outcome = await site.ExitAsync();
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        var built = Assert.Single(outcome.Result.Packages);
        Assert.Equal(JobOutcome.Built, built.Job);
        return built;
    }

    /// <summary>The frozen site, resumed, found its claim gone and failed its one package for that reason.</summary>
    private static async Task AssertClaimLostOnResumeAsync(SiteProcess site)
    {
        await site.SignalAsync("CONT");
        var outcome = await site.ExitAsync();
        Assert.Equal(ErrorCodes.BuildFailedExitCode, outcome.ExitCode);
        var lost = Assert.Single(outcome.Result.Packages);
        Assert.Equal(PackageStatus.Failed, lost.Status);
        Assert.True(lost.Code == ErrorCodes.Name(ErrorCode.ClaimLost), $"{lost.Code}: {lost.Reason}\n{outcome.Stderr}");
    }

    /// <summary>Only site-b's commit and result are recorded, and the catalog holds site-b's product.</summary>
    private static async Task AssertOnlySiteBPublishedAsync(GatewayProcess gateway, PackageResult built)
    {
        await using var store = await gateway.OpenDatabaseAsync();
        var commits = (await store.ListCommitsAsync(0, 100, CancellationToken.None)).Where(c => c.Commit.BuildKey == built.BuildKey).ToList();
        Assert.Equal("site-b", Assert.Single(commits).Commit.Site);
        Assert.Equal("site-b", Assert.Single(await store.GetResultsAsync(built.BuildKey!, CancellationToken.None)).Site);
        Assert.Equal(built.Product, (await CatalogAsync(gateway)).Find(Platform, new ProductRef("slow", "1.0"))!.Root);
    }

    [Fact]
    public async Task An_irreproducible_product_built_by_two_sites_is_reported_file_by_file_and_not_promoted_to_stable()
    {
        using var dir = new TempDir("cairn-sites");
        await using var gateway = await GatewayProcess.StartAsync(); // stable needs 2 agreeing sites (the default)
        var recipes = dir.Sub("recipes");
        Recipe(recipes, "noisy", [], """echo fixed > "$SOFT_DIR/share/noisy.txt"; head -c 16 /dev/urandom | od -An -tx1 > "$SOFT_DIR/share/random.txt" """);

        await using var a = await SiteProcess.StartAsync(gateway, "site-a", recipes, dir, claimTtl: "10s");
        await using var b = await SiteProcess.StartAsync(gateway, "site-b", recipes, dir, claimTtl: "10s");
        var outcomes = new[] { await a.ExitAsync(), await b.ExitAsync() };
        Assert.All(outcomes, o => Assert.True(o.ExitCode == 0, o.Stderr));
        Assert.Equal(1, Count(outcomes, "noisy", JobOutcome.Built));
        Assert.Equal(1, Count(outcomes, "noisy", JobOutcome.Confirmed));
        var key = outcomes[0].Result.Packages.Single().BuildKey!;

        using var client = gateway.Client(null);
        var coherence = await client.GetCoherenceAsync(key, CancellationToken.None);
        Assert.Equal(CoherenceStatus.Disagreement, coherence.Report.Status);
        var differing = Assert.Single(coherence.Files);
        Assert.Contains(differing.Files, f => f.Path.EndsWith("share/random.txt", StringComparison.Ordinal));
        Assert.DoesNotContain(differing.Files, f => f.Path.EndsWith("noisy.txt", StringComparison.Ordinal));
        Assert.DoesNotContain(coherence.Promotions, p => p.Channel == ChannelPolicy.Stable);
    }

    [Fact]
    public async Task A_check_failing_on_one_site_only_blocks_promotion_and_the_report_names_the_test()
    {
        using var dir = new TempDir("cairn-sites");
        await using var gateway = await GatewayProcess.StartAsync(); // stable needs 2 agreeing sites (the default)
        var recipes = dir.Sub("recipes");
        // The check's JUnit test needs two CPUs; bubblewrap inherits the site's CPU affinity (taskset).
        Recipe(recipes, "cpus", [], """echo cpus > "$SOFT_DIR/share/cpus.txt" """,
            """mkdir -p "$WORKSPACE/junit"; n=$(nproc); if [ "$n" -ge 2 ]; then r=''; else r="<failure message=\"nproc is $n\"/>"; fi; echo "<testsuite name=\"cpus\"><testcase classname=\"cpus\" name=\"ok\"/><testcase classname=\"cpus\" name=\"needs-two-cpus\">$r</testcase></testsuite>" > "$WORKSPACE/junit/cpus.xml" """);
        Assert.True(Environment.ProcessorCount >= 2, "this test needs a machine with two CPUs");

        await using var full = await SiteProcess.StartAsync(gateway, "site-full", recipes, dir, claimTtl: "10s");
        var first = await full.ExitAsync();
        Assert.True(first.ExitCode == 0, first.Stderr);
        Assert.Equal(JobOutcome.Built, first.Result.Packages.Single().Job);

        await using var pinned = await SiteProcess.StartAsync(gateway, "site-one-cpu", recipes, dir, claimTtl: "10s", cpus: "0");
        var second = await pinned.ExitAsync();
        Assert.Equal(ErrorCodes.BuildFailedExitCode, second.ExitCode);
        Assert.Equal(ErrorCodes.Name(ErrorCode.CheckFailed), second.Result.Packages.Single().Code);

        var key = first.Result.Packages.Single().BuildKey!;
        using var client = gateway.Client(null);
        var coherence = await client.GetCoherenceAsync(key, CancellationToken.None);
        Assert.Equal(CoherenceStatus.Disagreement, coherence.Report.Status);
        var test = Assert.Single(coherence.Report.TestDifferences);
        Assert.Equal("cpus.needs-two-cpus", test.Test);
        Assert.Equal(TestOutcome.Passed, test.BySite["site-full"]);
        Assert.Equal(TestOutcome.Failed, test.BySite["site-one-cpu"]);
        var pinnedResult = coherence.Report.Results.Single(r => r.Site == "site-one-cpu");
        Assert.Contains("cpus 1;", pinnedResult.Environment, StringComparison.Ordinal);
        Assert.DoesNotContain(coherence.Promotions, p => p.Channel == ChannelPolicy.Stable);
    }
}
