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

            var publish = repo.RunAsync(Ct, "publish", $"again/{i}", tree);
            var gc = await repo.RunAsync(Ct, "gc", "--keep", "1");
            var published = await publish;

            Assert.True(gc.ExitCode == 0, gc.ToString());
            Assert.True(published.ExitCode == 0, published.ToString());
            await repo.VerifyFullOkAsync(Ct);
            var dest = temp.File($"dest{i}");
            await repo.OkAsync(Ct, "materialize", "--no-cache", $"again/{i}", dest);
            await TreeAssert.EqualAsync(tree, ImportTests.ProductDir(dest, "again", i.ToString(System.Globalization.CultureInfo.InvariantCulture)), Ct);
        }

        var state = await repo.StateAsync(Ct);
        for (var i = 0; i < rounds; i++) Assert.True(state.Has($"again/{i}") && state.Has($"victim/{i}"), state.ToString());
    }
}
