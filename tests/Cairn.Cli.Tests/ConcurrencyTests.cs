using Cairn.Cli.Tests.Infrastructure;

namespace Cairn.Cli.Tests;

/// <summary>Several cairn processes on one repository: no update lost, and gc never takes what a publish uses.</summary>
public sealed class ConcurrencyTests : CliTest
{
    [Fact]
    public async Task Four_concurrent_publishes_all_succeed_and_none_is_lost()
    {
        using var temp = new TempDir("cairn-concurrent");
        var hello = await Sources.UnpackAsync(Sources.Hello, temp.Sub("hello"), Ct);
        var repo = await TestRepository.CreateAsync(temp.File("repo"), Ct);
        var trees = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            var tree = temp.File($"tree{i}");
            await Exec.ToolAsync(Ct, "cp", "-R", hello, tree);
            await File.WriteAllTextAsync(Path.Combine(tree, "which"), $"copy {i}\n", Ct);
            trees.Add(tree);
        }

        var before = await repo.StateAsync(Ct);
        var results = await Task.WhenAll(trees.Select((t, i) => repo.RunAsync(Ct, "publish", $"p{i}/1", t)));

        Assert.All(results, r => Assert.True(r.ExitCode == 0, r.ToString()));
        var after = await repo.StateAsync(Ct);
        Assert.Equal(before.Head + 4, after.Head);
        Assert.Equal(before.Revisions + 4, after.Revisions);
        for (var i = 0; i < 4; i++) Assert.True(after.Has($"p{i}/1"), after.ToString());
        await repo.VerifyFullOkAsync(Ct);
    }

    [Fact]
    public async Task Gc_running_during_publishes_never_deletes_what_they_reference()
    {
        using var temp = new TempDir("cairn-gc-race");
        var hello = await Sources.UnpackAsync(Sources.Hello, temp.Sub("hello"), Ct);
        var libpng = await Sources.UnpackAsync(Sources.Libpng, temp.Sub("libpng"), Ct);
        var repo = await TestRepository.CreateAsync(temp.File("repo"), Ct);
        const int rounds = 3;
        for (var i = 0; i < rounds; i++)
        {
            // Content that becomes garbage (its product is replaced) and that a concurrent publish stores again:
            // a publisher that trusted what it saw before gc swept would reference deleted objects.
            var tree = temp.File($"tree{i}");
            await Exec.ToolAsync(Ct, "cp", "-R", i % 2 == 0 ? hello : libpng, tree);
            await File.WriteAllTextAsync(Path.Combine(tree, "round"), $"{i}\n", Ct);
            await repo.OkAsync(Ct, "publish", $"victim/{i}", tree);
            await repo.OkAsync(Ct, "publish", $"victim/{i}", hello, "--replace", "--reason", "make the old content garbage");

            // The overlap is certain, not left to timing: the publish stops itself (SIGSTOP) after writing its
            // objects and before taking the commit lock, and gc starts while it stands there.
            using var publish = Exec.Start(Exec.CairnCommand("--repo", repo.Path, "publish", $"again/{i}", tree),
                new Dictionary<string, string> { ["CAIRN_FAULT_POINT"] = "after-objects:stop" });
            var publishOut = publish.StandardOutput.ReadToEndAsync(Ct);
            var publishErr = publish.StandardError.ReadToEndAsync(Ct);
            await WaitUntilStoppedAsync(publish);
            var gcRun = repo.RunAsync(Ct, "--json", "gc", "--keep", "1");

            // gc must wait for the publish it would otherwise sweep under (the publish holds the objects lock);
            // give it time to do the wrong thing, then let the publish go on.
            if (await Task.WhenAny(gcRun, Task.Delay(TimeSpan.FromSeconds(2), Ct)) == gcRun)
            {
                Assert.Fail($"gc finished while a publish stood between its objects and its commit: {await gcRun}");
            }

            Assert.False(publish.HasExited);
            Kill(publish.Id, "CONT");
            await publish.WaitForExitAsync(Ct);
            var gc = await gcRun;

            Assert.True(publish.ExitCode == 0, $"publish exited {publish.ExitCode}: {await publishOut}{await publishErr}");
            Assert.True(gc.ExitCode == 0, gc.ToString());

            // gc's own report: it removed the revisions beyond the newest and deleted what only they reached (the
            // replaced victim's catalogs at least), so it really swept while the publish was in flight.
            using var report = System.Text.Json.JsonDocument.Parse(gc.Stdout);
            Assert.NotEmpty(report.RootElement.GetProperty("revisionsRemoved").EnumerateArray());
            Assert.True(report.RootElement.GetProperty("objects").GetProperty("objectsDeleted").GetInt64() > 0, gc.Stdout);
            await repo.VerifyFullOkAsync(Ct);
            var dest = temp.File($"dest{i}");
            await repo.OkAsync(Ct, "materialize", "--no-cache", $"again/{i}", dest);
            await TreeAssert.EqualAsync(tree, ImportTests.ProductDir(dest, "again", i.ToString(System.Globalization.CultureInfo.InvariantCulture)), Ct);
        }

        var state = await repo.StateAsync(Ct);
        for (var i = 0; i < rounds; i++) Assert.True(state.Has($"again/{i}") && state.Has($"victim/{i}"), state.ToString());
    }

    /// <summary>Waits until the process has stopped itself at its fault point (state T in /proc).</summary>
    private static async Task WaitUntilStoppedAsync(System.Diagnostics.Process process)
    {
        for (var i = 0; i < 600; i++)
        {
            if (process.HasExited) Assert.Fail($"the process exited ({process.ExitCode}) before reaching its fault point");
            var stat = await File.ReadAllTextAsync($"/proc/{process.Id}/stat");
            if (stat[(stat.LastIndexOf(')') + 2)..].StartsWith('T')) return;
            await Task.Delay(100);
        }

        Assert.Fail("the process did not reach its fault point within a minute");
    }

    private static void Kill(int pid, string signal)
    {
        using var kill = System.Diagnostics.Process.Start("kill", [$"-{signal}", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }
}
