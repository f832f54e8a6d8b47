namespace Cairn.Cli.Tests.Infrastructure;

/// <summary>The real source tarballs the project keeps in ../shared/sources (relative to the repository root).</summary>
public static class Sources
{
    public static string Directory { get; } = Find();

    public static string Hello => Path.Combine(Directory, "hello_2.10.orig.tar.gz");
    public static string Zlib => Path.Combine(Directory, "zlib_1.2.13.dfsg.orig.tar.bz2");
    public static string Libpng => Path.Combine(Directory, "libpng1.6_1.6.39.orig.tar.gz");
    public static string Freetype => Path.Combine(Directory, "freetype_2.12.1+dfsg.orig.tar.xz");
    public static string Gsl => Path.Combine(Directory, "gsl_2.7.1+dfsg.orig.tar.gz");

    /// <summary>The checkout (the folder holding Cairn.slnx), e.g. for the fixtures under tests/fixtures.</summary>
    public static string CheckoutRoot => FindCheckout() ?? throw new InvalidOperationException($"cannot find the checkout (Cairn.slnx) above {AppContext.BaseDirectory}");

    private static string Find()
    {
        if (Environment.GetEnvironmentVariable("CAIRN_TEST_SOURCES") is { Length: > 0 } env) return env;
        // The checkout's sibling is shared/sources. Where it is missing, that is the path the tests name when they fail.
        return FindCheckout() is { } checkout
            ? Path.GetFullPath(Path.Combine(checkout, "..", "shared", "sources"))
            : throw new InvalidOperationException($"cannot find the checkout (Cairn.slnx) above {AppContext.BaseDirectory}; set CAIRN_TEST_SOURCES");
    }

    /// <summary>Walks up from the test binaries (or, built with --artifacts-path elsewhere, from this source file) to the checkout.</summary>
    private static string? FindCheckout([System.Runtime.CompilerServices.CallerFilePath] string sourceFile = "")
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile) })
        {
            for (var dir = string.IsNullOrEmpty(start) ? null : new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Cairn.slnx"))) return dir.FullName;
            }
        }

        return null;
    }

    /// <summary>Unpacks a source tarball with the real tar and returns its single top directory.</summary>
    public static async Task<string> UnpackAsync(string tarball, string into, CancellationToken ct)
    {
        Assert.True(File.Exists(tarball), $"source tarball '{tarball}' is missing (set CAIRN_TEST_SOURCES to the directory holding it)");
        Tools.Require("tar");
        if (tarball.EndsWith(".xz", StringComparison.Ordinal)) Tools.Require("xz");
        if (tarball.EndsWith(".bz2", StringComparison.Ordinal)) Tools.Require("bzip2");
        System.IO.Directory.CreateDirectory(into);
        await Exec.ToolAsync(ct, "tar", "-xf", tarball, "-C", into);
        var top = System.IO.Directory.GetFileSystemEntries(into);
        return top.Length == 1 && System.IO.Directory.Exists(top[0]) ? top[0] : into;
    }
}
