using Cairn.Cli.Tests.Infrastructure;

namespace Cairn.Cli.Tests;

/// <summary>Genuine tarballs import and come back byte for byte.</summary>
public sealed class ImportTests : CliTest
{
    [Fact]
    public async Task Code_rade_era_tar_gz_imports_and_materializes_byte_identical()
    {
        Tools.Require("bzip2");
        using var temp = new TempDir("cairn-import-zlib");
        // A CODE-RADE-era product tarball: .tar.gz with one top directory, made here from the zlib sources.
        var tarball = temp.File("zlib-1.2.13.tar.gz");
        await Exec.ShellAsync($"bzip2 -dc '{Sources.Zlib}' | gzip -6 > '{tarball}'", Ct);
        var expected = await Sources.UnpackAsync(Sources.Zlib, temp.Sub("expected"), Ct);
        var repo = await TestRepository.CreateAsync(temp.File("repo"), Ct);

        await repo.OkAsync(Ct, "import", tarball, "--as", "zlib/1.2.13", "--strip-components", "1");
        var dest = temp.File("dest");
        await repo.OkAsync(Ct, "materialize", "zlib/1.2.13", dest);

        await TreeAssert.EqualAsync(expected, ProductDir(dest, "zlib", "1.2.13"), Ct);
        // The same tree published from disk has the same root: import adds nothing and loses nothing.
        await repo.OkAsync(Ct, "publish", "zlib-disk/1.2.13", expected);
        Assert.Equal(await repo.RootAsync("zlib/1.2.13", Ct), await repo.RootAsync("zlib-disk/1.2.13", Ct));
        await repo.VerifyFullOkAsync(Ct);
    }

    [Fact]
    public async Task Hardlinks_within_the_product_import_and_special_bits_are_stripped()
    {
        using var temp = new TempDir("cairn-import-links");
        var src = temp.Sub("src/pkg-1.0");
        Directory.CreateDirectory(Path.Combine(src, "bin"));
        await File.WriteAllTextAsync(Path.Combine(src, "bin", "tool"), "#!/bin/sh\necho tool\n", Ct);
        File.SetUnixFileMode(Path.Combine(src, "bin", "tool"), (UnixFileMode)0xDED); // setuid, sticky, 0755
        await Exec.ToolAsync(Ct, "ln", Path.Combine(src, "bin", "tool"), Path.Combine(src, "bin", "tool-alias"));
        await File.WriteAllTextAsync(Path.Combine(src, "shared.txt"), "world-writable\n", Ct);
        File.SetUnixFileMode(Path.Combine(src, "shared.txt"), (UnixFileMode)0x1B6);
        File.CreateSymbolicLink(Path.Combine(src, "bin", "t"), "tool");
        var tarball = temp.File("pkg.tar.gz");
        // GNU tar stores the second name of a hardlinked file as a hardlink entry.
        await Exec.ToolAsync(Ct, "tar", "-czf", tarball, "-C", temp.File("src"), "pkg-1.0");
        var listing = await Exec.ToolAsync(Ct, "tar", "-tvzf", tarball);
        Assert.Contains(" link to ", listing.Stdout, StringComparison.Ordinal);

        var repo = await TestRepository.CreateAsync(temp.File("repo"), Ct);
        await repo.OkAsync(Ct, "import", tarball, "--as", "pkg/1.0", "--strip-components", "1");
        var dest = temp.File("dest");
        await repo.OkAsync(Ct, "materialize", "--copy", "pkg/1.0", dest);
        var product = ProductDir(dest, "pkg", "1.0");
        await TreeAssert.EqualAsync(src, product, Ct);
        foreach (var f in Directory.EnumerateFiles(product, "*", SearchOption.AllDirectories).Where(f => new FileInfo(f).LinkTarget is null))
        {
            var mode = File.GetUnixFileMode(f);
            Assert.True((mode & (UnixFileMode.SetUser | UnixFileMode.SetGroup | UnixFileMode.StickyBit | UnixFileMode.OtherWrite)) == 0, $"{f} kept mode {mode}");
        }
    }

    public static string ProductDir(string dest, string name, string version)
    {
        var platforms = Directory.GetDirectories(dest);
        Assert.Single(platforms);
        return Path.Combine(platforms[0], name, version);
    }
}
