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
        await RoundTripAsync(temp, tree, name, thorough: true, Ct);
    }

    internal static async Task RoundTripAsync(TempDir temp, string tree, string name, bool thorough, CancellationToken ct)
    {
        Tools.Require("zstd");
        var repo = await TestRepository.CreateAsync(temp.File("repo"), ct);
        await repo.OkAsync(ct, "publish", $"{name}/1.0", tree);

        // Materialize twice: through the hardlink cache, and as plain copies.
        var linked = temp.File("linked");
        await repo.OkAsync(ct, "materialize", $"{name}/1.0", linked);
        await TreeAssert.EqualAsync(tree, ImportTests.ProductDir(linked, name, "1.0"), ct);
        if (thorough)
        {
            var copied = temp.File("copied");
            await repo.OkAsync(ct, "materialize", "--no-cache", $"{name}/1.0", copied);
            await TreeAssert.EqualAsync(tree, ImportTests.ProductDir(copied, name, "1.0"), ct);
        }

        // Export, and unpack with nothing but tar.
        var export = temp.File($"{name}.tar.zst");
        await repo.OkAsync(ct, "export", $"{name}/1.0", "-o", export);
        var unpacked = temp.Sub("unpacked");
        await Exec.ToolAsync(ct, "tar", "--zstd", "-xf", export, "-C", unpacked);
        await TreeAssert.EqualAsync(tree, ImportTests.ProductDir(unpacked, name, "1.0"), ct);

        await repo.VerifyFullOkAsync(ct);
        if (!thorough) return;

        // And the export imports into a second repository as the very same tree.
        var other = await TestRepository.CreateAsync(temp.File("other"), ct);
        await other.OkAsync(ct, "import", export);
        Assert.Equal(await repo.RootAsync($"{name}/1.0", ct), await other.RootAsync($"{name}/1.0", ct));
    }
}

/// <summary>The biggest tree, in a class of its own so that it runs beside the others.</summary>
public sealed class UsrIncludeRoundTripTests : CliTest
{
    [Fact]
    public async Task Usr_include_round_trips_through_materialize_and_export()
    {
        Assert.True(Directory.Exists("/usr/include"), "/usr/include is missing: apt-get install -y libc6-dev");
        using var temp = new TempDir("cairn-roundtrip-include");
        // Not re-imported: /usr/include holds symlinks that leave the tree (clang/*/include -> ../../../lib/...),
        // which import refuses by design (CAIRN-E0304) while publish keeps them as they are.
        await RoundTripTests.RoundTripAsync(temp, "/usr/include", "include", thorough: false, Ct);
    }
}

/// <summary>The same tree has the same root digest wherever and however it was copied.</summary>
public sealed class DeterminismTests : CliTest
{
    [Fact]
    public async Task Root_digest_depends_on_content_and_exec_bits_only_not_on_umask_mtime_or_location()
    {
        using var temp = new TempDir("cairn-determinism");
        var tree = await Sources.UnpackAsync(Sources.Hello, temp.Sub("src"), Ct);
        // Two copies made under different umasks, then given different mtimes and group/other bits.
        var a = temp.File("a/hello");
        var b = temp.File("elsewhere/deeper/b/hello");
        Directory.CreateDirectory(Path.GetDirectoryName(a)!);
        Directory.CreateDirectory(Path.GetDirectoryName(b)!);
        await Exec.ShellAsync($"umask 022 && cp -R '{tree}' '{a}'", Ct);
        await Exec.ShellAsync($"umask 077 && cp -R '{tree}' '{b}'", Ct);
        await Exec.ShellAsync($"find '{a}' -exec touch -h -d '2001-02-03 04:05:06' {{}} +", Ct);
        await Exec.ShellAsync($"find '{b}' -exec touch -h -d '2024-12-31 23:59:59' {{}} + && find '{b}' -type f -exec chmod g+w,o-r {{}} +", Ct);

        var repo = await TestRepository.CreateAsync(temp.File("repo"), Ct);
        var second = await TestRepository.CreateAsync(temp.File("second"), Ct);
        await repo.OkAsync(Ct, "publish", "hello-a/1", a);
        await second.OkAsync(Ct, "publish", "hello-b/1", b);
        var rootA = await repo.RootAsync("hello-a/1", Ct);
        var rootB = await second.RootAsync("hello-b/1", Ct);
        Assert.Equal(rootA, rootB);

        // The digest is not blind: flipping one exec bit changes it.
        var script = Directory.EnumerateFiles(b, "*", SearchOption.AllDirectories).First(f => new FileInfo(f).LinkTarget is null);
        File.SetUnixFileMode(script, File.GetUnixFileMode(script) ^ UnixFileMode.UserExecute);
        await second.OkAsync(Ct, "publish", "hello-c/1", b);
        Assert.NotEqual(rootA, await second.RootAsync("hello-c/1", Ct));
    }
}
