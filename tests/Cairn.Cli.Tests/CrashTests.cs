using System.Diagnostics;
using Cairn.Cli.Tests.Infrastructure;

namespace Cairn.Cli.Tests;

/// <summary>
/// A publish killed at any point leaves the old revision or the new one, never a mix; the repository verifies
/// clean and the next publish succeeds. Kills come from the test-only fault points (CAIRN_FAULT_POINT, which
/// SIGKILL the process there) and from SIGKILL at spread-out times during a publish of /usr/include.
/// </summary>
public sealed class CrashTests : CliTest
{
    [Theory]
    [InlineData("pack-written", false)]   // first pack fsynced in tmp/, not yet renamed
    [InlineData("pack-renamed", false)]   // pack under its real name, its index not yet written
    [InlineData("after-objects", false)]
    [InlineData("after-catalog", false)]
    [InlineData("after-revision", false)] // revision file written, head not replaced
    [InlineData("after-head", true)]
    public async Task Publish_killed_at_a_fault_point_leaves_a_whole_revision(string point, bool committed)
    {
        using var temp = new TempDir("cairn-crash-" + point);
        var base1 = temp.Sub("base");
        await File.WriteAllTextAsync(Path.Combine(base1, "README"), "already published\n", Ct);
        var libpng = await Sources.UnpackAsync(Sources.Libpng, temp.Sub("libpng"), Ct);
        var repo = await TestRepository.CreateAsync(temp.File("repo"), Ct);
        await repo.OkAsync(Ct, "publish", "base/1", base1);
        var before = await repo.StateAsync(Ct);

        var killed = await Exec.CairnAsync(["--repo", repo.Path, "publish", "libpng/1.6.39", libpng], Ct,
            env: new Dictionary<string, string> { ["CAIRN_FAULT_POINT"] = point });
        Assert.True(killed.ExitCode == 137, $"the fault point '{point}' was not reached (exit 137 = SIGKILL expected): {killed}");

        var after = await repo.StateAsync(Ct);
        if (committed)
        {
            Assert.Equal(before.Head + 1, after.Head);
            Assert.True(after.Has("libpng/1.6.39"), after.ToString());
        }
        else
        {
            Assert.Equal((before.Head, before.Revisions, before.Products), (after.Head, after.Revisions, after.Products));
        }

        await repo.VerifyFullOkAsync(Ct);
        await repo.OkAsync(Ct, "publish", "libpng/1.6.39", libpng);
        var final = await repo.StateAsync(Ct);
        Assert.True(final.Has("libpng/1.6.39") && final.Has("base/1"), final.ToString());
        var dest = temp.File("dest");
        await repo.OkAsync(Ct, "materialize", "libpng/1.6.39", dest);
        await TreeAssert.EqualAsync(libpng, ImportTests.ProductDir(dest, "libpng", "1.6.39"), Ct);
    }
}

/// <summary>SIGKILL at spread-out times during a publish of /usr/include (a class of its own, to run beside the others).</summary>
public sealed class RandomKillTests : CliTest
{
    [Fact]
    public async Task Publish_of_usr_include_sigkilled_at_random_times_never_leaves_a_mix()
    {
        using var temp = new TempDir("cairn-crash-random");
        var hello = await Sources.UnpackAsync(Sources.Hello, temp.Sub("hello"), Ct);
        // The reference: how long a publish takes here, and the root it must produce.
        var reference = await TestRepository.CreateAsync(temp.File("reference"), Ct);
        var clock = Stopwatch.StartNew();
        await reference.OkAsync(Ct, "publish", "include/ref", "/usr/include");
        var duration = clock.Elapsed;
        var expectedRoot = await reference.RootAsync("include/ref", Ct);

        var repo = await TestRepository.CreateAsync(temp.File("repo"), Ct);
        await repo.OkAsync(Ct, "publish", "hello/2.10", hello);
        var random = new Random(20240601);
        const int rounds = 4;
        var completed = 0;
        for (var i = 0; i < rounds; i++)
        {
            var before = await repo.StateAsync(Ct);
            // Spread the kills over the whole publish (plus a little past it, where it may have finished).
            var delay = duration * ((i + random.NextDouble()) / rounds) * 1.05;
            using var process = Exec.Start(repo.Command("publish", $"include/{i}", "/usr/include"));
            var stdout = process.StandardOutput.ReadToEndAsync(Ct);
            var stderr = process.StandardError.ReadToEndAsync(Ct);
            await Task.Delay(delay, Ct);
            try
            {
                process.Kill();
            }
            catch (InvalidOperationException)
            {
                // It finished first.
            }

            await process.WaitForExitAsync(Ct);
            var exit = process.ExitCode;
            Assert.True(exit is 0 or 137, $"publish exited {exit} after {delay.TotalMilliseconds:0} ms: {await stdout}{await stderr}");

            var after = await repo.StateAsync(Ct);
            if (after.Head == before.Head)
            {
                Assert.Equal((before.Revisions, before.Products), (after.Revisions, after.Products));
            }
            else
            {
                Assert.Equal(before.Head + 1, after.Head);
                Assert.Equal(expectedRoot, await repo.RootAsync($"include/{i}", Ct));
                completed++;
            }

            await repo.VerifyFullOkAsync(Ct);
        }

        await repo.OkAsync(Ct, "publish", "include/final", "/usr/include");
        Assert.Equal(expectedRoot, await repo.RootAsync("include/final", Ct));
        await repo.VerifyFullOkAsync(Ct);
        Assert.True(completed < rounds, "every publish finished before its kill: the kills tested nothing");
    }
}
