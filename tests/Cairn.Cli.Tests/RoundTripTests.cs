using Cairn.Cli.Tests.Infrastructure;

namespace Cairn.Cli.Tests;

/// <summary>Real trees survive publish → materialize and publish → export → tar -x byte for byte.</summary>
public sealed class RoundTripTests : CliTest
{
    public static TheoryData<string> Tarballs => new() { "hello", "zlib", "libpng", "freetype", "gsl" };

    private static string TarballOf(string name) => name switch
    {
        "hello" => Sources.Hello,
        "zlib" => Sources.Zlib,
        "libpng" => Sources.Libpng,
        "freetype" => Sources.Freetype,
        _ => Sources.Gsl,
    };

    [Theory]
    [MemberData(nameof(Tarballs))]
    public async Task Source_tree_round_trips_through_materialize_and_export(string name)
    {
        using var temp = new TempDir("cairn-roundtrip-" + name);
        var tree = await Sources.UnpackAsync(TarballOf(name), temp.Sub("src"), Ct);
        await RoundTripAsync(temp, tree, name, thorough: true);
    }

    [Fact]
    public async Task Usr_include_round_trips_through_materialize_and_export()
    {
        Assert.True(Directory.Exists("/usr/include"), "/usr/include is missing: apt-get install -y libc6-dev");
        using var temp = new TempDir("cairn-roundtrip-include");
        // Not re-imported: /usr/include holds symlinks that leave the tree (clang/*/include -> ../../../lib/...),
        // which import refuses by design (CAIRN-E0304) while publish keeps them as they are.
        await RoundTripAsync(temp, "/usr/include", "include", thorough: false);
    }

    private async Task RoundTripAsync(TempDir temp, string tree, string name, bool thorough)
    {
        Tools.Require("zstd");
        var repo = await TestRepository.CreateAsync(temp.File("repo"), Ct);
        await repo.OkAsync(Ct, "publish", $"{name}/1.0", tree);

        // Materialize twice: through the hardlink cache, and as plain copies.
        var linked = temp.File("linked");
        await repo.OkAsync(Ct, "materialize", $"{name}/1.0", linked);
        await TreeAssert.EqualAsync(tree, ImportTests.ProductDir(linked, name, "1.0"), Ct);
        if (thorough)
        {
            var copied = temp.File("copied");
            await repo.OkAsync(Ct, "materialize", "--no-cache", $"{name}/1.0", copied);
            await TreeAssert.EqualAsync(tree, ImportTests.ProductDir(copied, name, "1.0"), Ct);
        }

        // Export, and unpack with nothing but tar.
        var export = temp.File($"{name}.tar.zst");
        await repo.OkAsync(Ct, "export", $"{name}/1.0", "-o", export);
        var unpacked = temp.Sub("unpacked");
        await Exec.ToolAsync(Ct, "tar", "--zstd", "-xf", export, "-C", unpacked);
        await TreeAssert.EqualAsync(tree, ImportTests.ProductDir(unpacked, name, "1.0"), Ct);

        await repo.VerifyFullOkAsync(Ct);
        if (!thorough) return;

        // And the export imports into a second repository as the very same tree.
        var other = await TestRepository.CreateAsync(temp.File("other"), Ct);
        await other.OkAsync(Ct, "import", export);
        Assert.Equal(await repo.RootAsync($"{name}/1.0", Ct), await other.RootAsync($"{name}/1.0", Ct));
    }

    [Fact]
    public async Task Root_digest_depends_on_content_and_exec_bits_only_not_on_umask_mtime_or_location()
    {
        using var temp = new TempDir("cairn-determinism");
        var tree = await Sources.UnpackAsync(Sources.Libpng, temp.Sub("src"), Ct);
        // Two copies made under different umasks, then given different mtimes and group/other bits.
        var a = temp.File("a/libpng");
        var b = temp.File("elsewhere/deeper/b/libpng");
        Directory.CreateDirectory(Path.GetDirectoryName(a)!);
        Directory.CreateDirectory(Path.GetDirectoryName(b)!);
        await Exec.ShellAsync($"umask 022 && cp -R '{tree}' '{a}'", Ct);
        await Exec.ShellAsync($"umask 077 && cp -R '{tree}' '{b}'", Ct);
        await Exec.ShellAsync($"find '{a}' -exec touch -h -d '2001-02-03 04:05:06' {{}} +", Ct);
        await Exec.ShellAsync($"find '{b}' -exec touch -h -d '2024-12-31 23:59:59' {{}} + && find '{b}' -type f -exec chmod g+w,o-r {{}} +", Ct);

        var repo = await TestRepository.CreateAsync(temp.File("repo"), Ct);
        var second = await TestRepository.CreateAsync(temp.File("second"), Ct);
        await repo.OkAsync(Ct, "publish", "libpng-a/1", a);
        await second.OkAsync(Ct, "publish", "libpng-b/1", b);
        var rootA = await repo.RootAsync("libpng-a/1", Ct);
        var rootB = await second.RootAsync("libpng-b/1", Ct);
        Assert.Equal(rootA, rootB);

        // The digest is not blind: flipping one exec bit changes it.
        var script = Directory.EnumerateFiles(b, "*", SearchOption.AllDirectories).First(f => new FileInfo(f).LinkTarget is null);
        File.SetUnixFileMode(script, File.GetUnixFileMode(script) ^ UnixFileMode.UserExecute);
        await second.OkAsync(Ct, "publish", "libpng-c/1", b);
        Assert.NotEqual(rootA, await second.RootAsync("libpng-c/1", Ct));
    }
}
