using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Build.Tests.Stack;

/// <summary>cairn build end to end with real bubblewrap and the real hello and zlib tarballs.</summary>
[Collection(StackCollection.Name)]
public sealed class StackBuildTests(StackFixture stack)
{
    [Fact]
    public async Task The_stack_builds_and_publishes_products_with_keys_tests_logs_and_modulefiles()
    {
        Assert.All(stack.FirstBuild.Packages, p => Assert.Equal(PackageStatus.Built, p.Status));
        Assert.Equal(["hello", "zlib", "zdep"], stack.FirstBuild.Packages.Select(p => p.Name));

        await using var repo = await StackFixture.OpenAsync(stack.Repository);
        var head = await repo.HeadAsync(default);
        var catalog = await repo.CatalogAsync(head, default);
        foreach (var built in stack.FirstBuild.Packages)
        {
            var record = catalog.Find(StackFixture.Platform, new ProductRef(built.Name, built.Version))!;
            Assert.Equal(built.BuildKey, record.BuildKey);
            Assert.Equal(built.Product, record.Root);
            Assert.Equal("test", record.PublishedBy);
            Assert.Equal(new TestSummary(1, 0, 0), record.Tests! with { Report = null });
            Assert.StartsWith("check exit 0", record.Tests!.Report, StringComparison.Ordinal);

            // The log and the modulefile are in the same revision as the product.
            Assert.Equal($"logs/linux-x86_64/{built.Name}/{built.Version}/build.log", record.Log);
            var log = await ReadAsync(repo, head.Root, record.Log!);
            Assert.Contains("== check: exit 0", log, StringComparison.Ordinal);
            var module = await ReadAsync(repo, head.Root, $"modules/linux-x86_64/{built.Name}/{built.Version}");
            Assert.Contains($"set prefix \"$cairn_root/linux-x86_64/{built.Name}/{built.Version}\"", module, StringComparison.Ordinal);
        }

        var helloLog = await ReadAsync(repo, head.Root, "logs/linux-x86_64/hello/2.10/build.log");
        Assert.Contains("Hello, world!", helloLog, StringComparison.Ordinal);
        Assert.Contains("== unpack: exit 0", helloLog, StringComparison.Ordinal);
        var zdep = catalog.Find(StackFixture.Platform, new ProductRef("zdep", "1.0"))!;
        // zdep has no sources: no unpack sandbox runs for it.
        var zdepLog = await ReadAsync(repo, head.Root, zdep.Log!);
        Assert.DoesNotContain("== unpack", zdepLog, StringComparison.Ordinal);
        Assert.Contains("== build: exit 0", zdepLog, StringComparison.Ordinal);
        Assert.Equal(["zlib/1.2.13"], zdep.Dependencies);
        // zdep saw zlib at its deployment path.
        Assert.Equal("/cvmfs/cairn.test/test/" + Platform.Detect().Os + "/" + Platform.Detect().Arch + "/zlib/1.2.13\n",
            await ReadAsync(repo, zdep.Root, "share/zdep/zlib-dir"));
        Assert.Empty(Directory.GetDirectories(Path.Combine(stack.Repository, "builds", StackBuilder.WorkFolder)));
    }

    [Fact]
    public async Task A_second_run_builds_nothing()
    {
        await using var repo = await StackFixture.OpenAsync(stack.Repository);
        var before = (await repo.HeadAsync(default)).Revision;
        var plan = await StackFixture.Builder(repo).PlanAsync(StackFixture.Options(stack.Recipes, stack.Repository), default);
        Assert.All(plan.Packages, p => Assert.Equal(PlanAction.UpToDate, p.Action));

        var again = await StackFixture.Builder(repo).BuildAsync(StackFixture.Options(stack.Recipes, stack.Repository), null, default);
        Assert.All(again.Packages, p => Assert.Equal(PackageStatus.UpToDate, p.Status));
        // A hang guard only, far above any real run: how fast planning is, is measured in benchmarks/build
        // (docs/performance.md), never timed here.
        Assert.True(again.Duration < TimeSpan.FromMinutes(2), $"an up-to-date run took {again.Duration}: hung?");
        Assert.Equal(before, (await repo.HeadAsync(default)).Revision);
    }

    [Fact]
    public async Task Changing_zlib_rebuilds_zlib_and_its_dependents_and_nothing_else()
    {
        using var copy = stack.Copy();
        var script = Path.Combine(copy.Recipes, "zlib", "build.sh");
        File.AppendAllText(script, "echo changed > \"$SOFT_DIR/share/cairn-changed\"\n");
        await using var repo = await StackFixture.OpenAsync(copy.Repository);
        var options = StackFixture.Options(copy.Recipes, copy.Repository);

        var plan = await StackFixture.Builder(repo).PlanAsync(options, default);
        Assert.Equal(
            [("hello", PlanAction.UpToDate), ("zlib", PlanAction.Build), ("zdep", PlanAction.After)],
            plan.Packages.Select(p => (p.Name, p.Action)));
        Assert.Contains("build key changed", plan.Packages[1].Reason, StringComparison.Ordinal);
        Assert.Equal(["zlib"], plan.Packages[2].Waits);

        var result = await StackFixture.Builder(repo).BuildAsync(options, null, default);
        Assert.True(result.Succeeded, StackFixture.Describe(result));
        Assert.Equal(
            [("hello", PackageStatus.UpToDate), ("zlib", PackageStatus.Built), ("zdep", PackageStatus.Built)],
            result.Packages.Select(p => (p.Name, p.Status)));
        Assert.All(result.Packages.Where(p => p.Status == PackageStatus.Built), p => Assert.True(p.Replaced));

        var zlib = (await StackFixture.CatalogAsync(repo)).Find(StackFixture.Platform, new ProductRef("zlib", "1.2.13"))!;
        var replaced = Assert.Single(zlib.Replaced!);
        Assert.StartsWith("rebuilt: build key changed", replaced.Reason, StringComparison.Ordinal);
        Assert.NotEqual(stack.FirstBuild.Packages[1].BuildKey, zlib.BuildKey);

        var again = await StackFixture.Builder(repo).BuildAsync(options, null, default);
        Assert.All(again.Packages, p => Assert.Equal(PackageStatus.UpToDate, p.Status));
    }

    [Fact]
    public async Task With_no_replace_a_changed_recipe_is_refused_and_blocks_its_dependents()
    {
        using var copy = stack.Copy();
        File.AppendAllText(Path.Combine(copy.Recipes, "zlib", "check-build.sh"), "# changed\n");
        await using var repo = await StackFixture.OpenAsync(copy.Repository);
        var before = (await repo.HeadAsync(default)).Revision;
        var options = StackFixture.Options(copy.Recipes, copy.Repository) with { WhenKeyChanged = ChangedKeyPolicy.Refuse, KeepGoing = true };
        var result = await StackFixture.Builder(repo).BuildAsync(options, null, default);
        var zlib = result.Packages.Single(p => p.Name == "zlib");
        Assert.Equal((PackageStatus.Failed, "CAIRN-E0610"), (zlib.Status, zlib.Code));
        Assert.Equal(PackageStatus.Blocked, result.Packages.Single(p => p.Name == "zdep").Status);
        Assert.Equal(PackageStatus.UpToDate, result.Packages.Single(p => p.Name == "hello").Status);
        Assert.Equal(before, (await repo.HeadAsync(default)).Revision);
    }

    [Fact]
    public async Task A_failing_check_publishes_nothing_and_blocks_its_dependents()
    {
        using var copy = stack.Copy();
        StackFixture.AddRecipe(copy.Recipes, "bad", """
            name: bad
            version: "1.0"
            dependencies: [zlib]
            build: |
              mkdir -p "$SOFT_DIR/bin"; echo built > "$SOFT_DIR/bin/bad"
              echo "bad: the build ran"
            check: |
              echo "bad: the check fails"
              exit 3
            """);
        StackFixture.AddRecipe(copy.Recipes, "afterbad", "name: afterbad\nversion: \"1.0\"\ndependencies: [bad]\nbuild: {run: 'mkdir -p $SOFT_DIR'}\ncheck: {run: 'true'}\n");
        await using var repo = await StackFixture.OpenAsync(copy.Repository);
        var before = await repo.HeadAsync(default);
        var options = StackFixture.Options(copy.Recipes, copy.Repository) with { Only = ["afterbad"] };

        var result = await StackFixture.Builder(repo).BuildAsync(options, null, default);
        Assert.False(result.Succeeded);
        var bad = result.Packages.Single(p => p.Name == "bad");
        Assert.Equal((PackageStatus.Failed, "CAIRN-E0612"), (bad.Status, bad.Code));
        Assert.Equal("check: exit 3", bad.Reason);
        var afterbad = result.Packages.Single(p => p.Name == "afterbad");
        Assert.Equal(PackageStatus.Blocked, afterbad.Status);
        Assert.Equal(["bad"], afterbad.BlockedBy);

        // Nothing was published, not even partly: same revision, same root.
        var after = await repo.HeadAsync(default);
        Assert.Equal((before.Revision, before.Root), (after.Revision, after.Root));

        // The log and a record are kept under REPO/builds, outside the content-addressed state.
        Assert.StartsWith(Path.Combine(copy.Repository, "builds", "bad", "1.0"), bad.LogFile, StringComparison.Ordinal);
        var log = File.ReadAllText(bad.LogFile!);
        Assert.Contains("bad: the build ran", log, StringComparison.Ordinal);
        Assert.Contains("bad: the check fails", log, StringComparison.Ordinal);
        Assert.Contains("nothing is published", log, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(bad.LogFile)!, "build.json")));
        Assert.False(Directory.Exists(Path.Combine(Path.GetDirectoryName(bad.LogFile)!, "workspace")));

        // The plan now says that the last build with this key failed, and where its log is.
        var plan = await StackFixture.Builder(repo).PlanAsync(options, default);
        Assert.Contains("the last build with this key failed (check: exit 3)", plan.Packages.Single(p => p.Name == "bad").Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Keep_going_builds_what_does_not_depend_on_a_failure_and_junit_reports_are_recorded()
    {
        using var copy = stack.Copy();
        StackFixture.AddRecipe(copy.Recipes, "broken", "name: broken\nversion: \"1.0\"\nbuild: {run: 'echo broken; exit 2'}\ncheck: {run: 'true'}\n");
        StackFixture.AddRecipe(copy.Recipes, "junit", """
            name: junit
            version: "1.0"
            build: {run: 'mkdir -p $SOFT_DIR/share'}
            check: |
              mkdir -p "$WORKSPACE/junit"
              cat > "$WORKSPACE/junit/results.xml" <<'X'
              <testsuite name="t" tests="3"><testcase name="a"/><testcase name="b"/><testcase name="c"><skipped/></testcase></testsuite>
              X
            """);
        StackFixture.AddRecipe(copy.Recipes, "junitfail", """
            name: junitfail
            version: "1.0"
            build: {run: 'mkdir -p $SOFT_DIR/share'}
            check: |
              mkdir -p "$WORKSPACE/junit"
              echo '<testsuite><testcase name="a"><failure message="no"/></testcase><testcase name="b"/></testsuite>' > "$WORKSPACE/junit/r.xml"
            """);
        await using var repo = await StackFixture.OpenAsync(copy.Repository);
        var options = StackFixture.Options(copy.Recipes, copy.Repository);

        var stopped = await StackFixture.Builder(repo).BuildAsync(options, null, default);
        Assert.Equal((PackageStatus.Failed, "CAIRN-E0611"), (stopped.Packages[0].Status, stopped.Packages[0].Code));
        Assert.Contains(stopped.Packages, p => p.Status == PackageStatus.NotStarted);

        var result = await StackFixture.Builder(repo).BuildAsync(options with { KeepGoing = true }, null, default);
        var status = result.Packages.ToDictionary(p => p.Name);
        Assert.Equal(PackageStatus.Failed, status["broken"].Status);
        Assert.Equal(PackageStatus.Built, status["junit"].Status);
        Assert.Equal((PackageStatus.Failed, "CAIRN-E0612"), (status["junitfail"].Status, status["junitfail"].Code));
        Assert.Equal(PackageStatus.UpToDate, status["zlib"].Status);

        var head = await repo.HeadAsync(default);
        var record = (await repo.CatalogAsync(head, default)).Find(StackFixture.Platform, new ProductRef("junit", "1.0"))!;
        Assert.Equal((2, 0, 1), (record.Tests!.Passed, record.Tests.Failed, record.Tests.Skipped));
        Assert.Contains("junit/results.xml", record.Tests.Report, StringComparison.Ordinal);
        Assert.Contains("<testcase name=\"a\"/>", await ReadAsync(repo, head.Root, "logs/linux-x86_64/junit/1.0/junit/results.xml"), StringComparison.Ordinal);
        Assert.Null((await repo.CatalogAsync(head, default)).Find(StackFixture.Platform, new ProductRef("junitfail", "1.0")));
    }

    [Fact]
    public async Task Plan_on_an_empty_repository_says_what_waits_for_what_and_what_is_blocked()
    {
        using var copy = stack.Copy();
        StackBuilder.DeleteTree(copy.Repository);
        File.Delete(Path.Combine(copy.Recipes, "sources", "zlib_1.2.13.dfsg.orig.tar.bz2"));
        await using var repo = await Cairn.Repository.FileSystem.DirectoryRepository.InitAsync(copy.Repository, "empty", StackFixture.Platform, TimeProvider.System, null, default);
        var plan = await StackFixture.Builder(repo).PlanAsync(StackFixture.Options(copy.Recipes, copy.Repository), default);
        var byName = plan.Packages.ToDictionary(p => p.Name);
        Assert.Equal((PlanAction.Build, "not published yet"), (byName["hello"].Action, byName["hello"].Reason));
        Assert.Equal((PlanAction.Error, "CAIRN-E0607"), (byName["zlib"].Action, byName["zlib"].Code));
        Assert.Equal((PlanAction.Blocked, "blocked by zlib"), (byName["zdep"].Action, byName["zdep"].Reason));
    }

    internal static async Task<string> ReadAsync(ProductRepository repo, Digest root, string path)
    {
        var entry = await repo.Trees.LookupAsync(root, path, default);
        Assert.True(entry is { IsFile: true }, $"{path} is not a file in the tree");
        using var buffer = new MemoryStream();
        await repo.Trees.CopyContentAsync(entry!, buffer, default);
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
