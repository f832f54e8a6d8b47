using System.Text;
using System.Text.RegularExpressions;
using Cairn.Build.Recipes;
using Cairn.Core;

namespace Cairn.Build.Tests;

public sealed partial class BuildKeyTests : IDisposable
{
    private static readonly Platform Debian = new("debian12", "x86_64");
    private readonly RecipeDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Builds exactly the test vector of docs/format/build-key.md.</summary>
    private RecipeGraph VectorGraph()
    {
        _dir.Add("zlib", "name: zlib\nversion: 1.2.13\nbuild: {run: make}\ncheck: {run: make}\n");
        var libpng = _dir.Add("libpng",
            "name: libpng\nversion: 1.6.39\nsources:\n  - path: libpng.tar.gz\n    sha256: a00e9d2f2f664186e4202db9299397f851aea71b36a35e74910b8820e380d441\ndependencies: [zlib]\nbuild: build.sh\ncheck: {run: make check}\n",
            ("build.sh", "make install\n"));
        File.SetUnixFileMode(Path.Combine(libpng, "build.sh"), (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(Path.Combine(libpng, "recipe.yml"), (UnixFileMode)0b110_100_100);
        return RecipeGraph.Load(_dir.Root);
    }

    private static BuildKeyInputs VectorInputs() =>
        new(Debian, "/cvmfs/cairn/generic", new Dictionary<string, Digest> { ["zlib"] = Digest.Of("zlib product"u8) }, SandboxContractVersion: 2);

    [Fact]
    public void The_documented_test_vector_holds()
    {
        var doc = File.ReadAllText(Path.Combine(RecipeDir.RepoRoot(), "docs", "format", "build-key.md"));
        var documented = KeyLine().Match(doc);
        Assert.True(documented.Success, "docs/format/build-key.md has no 'key: <hex>' line");
        var graph = VectorGraph();
        var bytes = BuildKey.Encode(graph, graph["libpng"], VectorInputs());
        Assert.Equal(documented.Groups[1].Value, BuildKey.Compute(graph, graph["libpng"], VectorInputs()).ToString());
        Assert.Equal(int.Parse(LengthLine().Match(doc).Groups[1].Value), bytes.Length);
        Assert.StartsWith("cairn-build-key\nformat\0\0\0\0\0\0\0\0\u00012sandbox\0", Encoding.Latin1.GetString(bytes));
    }

    [Fact]
    public void Every_input_changes_the_key()
    {
        var graph = VectorGraph();
        var libpng = graph["libpng"];
        var baseline = BuildKey.Compute(graph, libpng, VectorInputs());
        Assert.Equal(baseline, BuildKey.Compute(graph, libpng, VectorInputs()));
        Assert.NotEqual(baseline, BuildKey.Compute(graph, libpng, VectorInputs() with { Platform = new Platform("debian13", "x86_64") }));
        Assert.NotEqual(baseline, BuildKey.Compute(graph, libpng, VectorInputs() with { Deployment = "/cvmfs/other/generic" }));
        Assert.NotEqual(baseline, BuildKey.Compute(graph, libpng, VectorInputs() with { Deployment = "/cvmfs/cairn/site2" }));
        Assert.NotEqual(baseline, BuildKey.Compute(graph, libpng, VectorInputs() with { SandboxContractVersion = 99 }));
        Assert.NotEqual(baseline, BuildKey.Compute(graph, libpng, VectorInputs() with { BuildEnvironment = Digest.Of("rootfs"u8) }));
        Assert.NotEqual(baseline, BuildKey.Compute(graph, libpng, VectorInputs() with
        {
            DependencyProducts = new Dictionary<string, Digest> { ["zlib"] = Digest.Of("other zlib"u8) },
        }));

        // Any file in the folder counts, as does the executable bit.
        var patch = Path.Combine(libpng.Directory, "patches", "fix.patch");
        Directory.CreateDirectory(Path.GetDirectoryName(patch)!);
        File.WriteAllText(patch, "--- a\n");
        var withPatch = BuildKey.Compute(graph, libpng, VectorInputs());
        Assert.NotEqual(baseline, withPatch);
        File.SetUnixFileMode(patch, (UnixFileMode)0b111_101_101);
        Assert.NotEqual(withPatch, BuildKey.Compute(graph, libpng, VectorInputs()));
    }

    [Fact]
    public void Transitive_dependencies_count_and_must_be_known()
    {
        _dir.AddSimple("zlib", "1");
        _dir.AddSimple("libpng", "1", "zlib");
        _dir.AddSimple("freetype", "1", "libpng");
        var g = RecipeGraph.Load(_dir.Root);
        var products = new Dictionary<string, Digest> { ["libpng"] = Digest.Of("p"u8) };
        var e = Assert.Throws<CairnException>(() => BuildKey.Compute(g, g["freetype"], new BuildKeyInputs(Debian, "/cvmfs/cairn/generic", products)));
        Assert.Equal(ErrorCode.DependencyProductMissing, e.Code);
        Assert.Contains("zlib/1", e.Message);
        products["zlib"] = Digest.Of("z"u8);
        var k1 = BuildKey.Compute(g, g["freetype"], new BuildKeyInputs(Debian, "/cvmfs/cairn/generic", products));
        products["zlib"] = Digest.Of("z2"u8);
        Assert.NotEqual(k1, BuildKey.Compute(g, g["freetype"], new BuildKeyInputs(Debian, "/cvmfs/cairn/generic", products)));
    }

    [GeneratedRegex(@"^key: ([0-9a-f]{64})$", RegexOptions.Multiline)]
    private static partial Regex KeyLine();

    [GeneratedRegex(@"^length: (\d+)$", RegexOptions.Multiline)]
    private static partial Regex LengthLine();
}
