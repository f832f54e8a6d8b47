using Cairn.Cli.Tests.Infrastructure;

namespace Cairn.Cli.Tests;

/// <summary>
/// fsync failures injected with strace, and a really full file system (a 2 MiB tmpfs): publish fails cleanly
/// with exit 6, the previous revision stays the head, verify passes, and the next publish succeeds.
/// </summary>
public sealed class IoFaultTests : CliTest
{
    [Theory]
    [InlineData("EIO", null, "CAIRN-E0401")]          // every fsync fails: the first pack
    [InlineData("ENOSPC", null, "CAIRN-E0402")]
    [InlineData("EIO", "packs", "CAIRN-E0401")]       // only the packs directory, after a pack's rename
    [InlineData("EIO", "revisions", "CAIRN-E0401")]   // only revisions/, after the revision file's rename
    [InlineData("EIO", "", "CAIRN-E0401")]            // only the repository directory, after the head's rename
    public async Task Fsync_failure_fails_publish_cleanly(string errno, string? onlyDirectory, string code)
    {
        Tools.Require("strace");
        using var temp = new TempDir("cairn-fsync-" + errno);
        var base1 = temp.Sub("base");
        await File.WriteAllTextAsync(Path.Combine(base1, "README"), "already published\n", Ct);
        var libpng = await Sources.UnpackAsync(Sources.Libpng, temp.Sub("libpng"), Ct);
        var repo = await TestRepository.CreateAsync(temp.File("repo"), Ct);
        await repo.OkAsync(Ct, "publish", "base/1", base1);
        var before = await repo.StateAsync(Ct);

        // -P limits the injection to fsyncs of that directory's descriptor.
        string[] only = onlyDirectory is null ? [] : ["-P", Path.TrimEndingDirectorySeparator(Path.Combine(repo.Path, onlyDirectory))];
        // --seccomp-bpf stops the child only at fsync; without it strace stops at every syscall and is ~6x slower.
        var r = await Exec.RunAsync(["strace", "-f", "--seccomp-bpf", "-o", "/dev/null", .. only, "-e", "trace=fsync", "-e", $"inject=fsync:error={errno}",
            .. repo.Command("publish", "libpng/1.6.39", libpng)], Ct);

        CairnAssert.Fails(r, 6, code);
        Assert.Contains("previous revision is intact", r.Stderr, StringComparison.Ordinal);
        var after = await repo.StateAsync(Ct);
        Assert.Equal((before.Head, before.Revisions, before.Products), (after.Head, after.Revisions, after.Products));
        Assert.Empty(Directory.GetFiles(Path.Combine(repo.Path, "tmp")));
        await repo.VerifyFullOkAsync(Ct);

        await repo.OkAsync(Ct, "publish", "libpng/1.6.39", libpng);
        Assert.True((await repo.StateAsync(Ct)).Has("libpng/1.6.39"));
        await repo.VerifyFullOkAsync(Ct);
    }

    [Fact]
    public async Task Full_file_system_fails_publish_cleanly_and_frees_its_space()
    {
        Tools.Require("mount");
        using var temp = new TempDir("cairn-enospc");
        var gsl = await Sources.UnpackAsync(Sources.Gsl, temp.Sub("gsl"), Ct);
        var small = temp.Sub("small");
        await File.WriteAllTextAsync(Path.Combine(small, "README"), "small\n", Ct);
        var mountPoint = temp.Sub("tmpfs");
        var mount = await Exec.RunAsync(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mountPoint], Ct);
        Assert.True(mount.ExitCode == 0, "mounting a tmpfs needs root (CAP_SYS_ADMIN): " + mount);
        try
        {
            var repo = await TestRepository.CreateAsync(Path.Combine(mountPoint, "repo"), Ct);
            await repo.OkAsync(Ct, "publish", "small/1", small);
            var before = await repo.StateAsync(Ct);
            var free = new DriveInfo(mountPoint).AvailableFreeSpace;

            // gsl compresses to several MiB: it cannot fit.
            var r = await repo.RunAsync(Ct, "publish", "gsl/2.7.1", gsl);

            CairnAssert.Fails(r, 6, "CAIRN-E0402");
            var after = await repo.StateAsync(Ct);
            Assert.Equal(before, after);
            Assert.Empty(Directory.GetFiles(Path.Combine(repo.Path, "tmp")));
            Assert.True(new DriveInfo(mountPoint).AvailableFreeSpace >= free - (64 << 10), "the failed publish left its partial pack behind");
            await repo.VerifyFullOkAsync(Ct);
            await repo.OkAsync(Ct, "publish", "small/2", small);
            await repo.VerifyFullOkAsync(Ct);
        }
        finally
        {
            await Exec.RunAsync(["umount", "-l", mountPoint], CancellationToken.None);
        }
    }
}
