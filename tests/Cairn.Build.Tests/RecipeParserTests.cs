using Cairn.Build.Recipes;
using Cairn.Core;

namespace Cairn.Build.Tests;

public sealed class RecipeParserTests : IDisposable
{
    private readonly RecipeDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Parses_every_field()
    {
        var dir = _dir.Add("libpng", """
            name: libpng
            version: 1.6.39
            description: PNG library
            sources:
              - path: libpng.tar.gz
                sha256: a00e9d2f2f664186e4202db9299397f851aea71b36a35e74910b8820e380d441
              - url: https://example.org/dl/extra.tar.xz
                sha256: 71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1
            dependencies:
              - zlib
              - bzip2/1.0.8
              - name: xz
                version: "5.4"
            build: build.sh
            check: |
              make check
              echo done
            env:
              CFLAGS: -O2 -I${ZLIB_DIR}/include
            environment: debian-12
            modules:
              paths:
                MANPATH: [share/man]
              variables:
                PNG_HOME: here
            """, ("build.sh", "make\n"));
        var r = RecipeParser.Load(dir);
        Assert.Equal("libpng/1.6.39", r.Id);
        Assert.Equal("PNG library", r.Description);
        Assert.Equal(2, r.Sources.Count);
        Assert.Equal("libpng.tar.gz", r.Sources[0].FileName);
        Assert.Equal("extra.tar.xz", r.Sources[1].FileName);
        Assert.Equal(["zlib", "bzip2/1.0.8", "xz/5.4"], r.Dependencies.Select(d => d.ToString()));
        Assert.Equal("build.sh", r.Build.FileName);
        Assert.Equal("make check\necho done\n", r.Check.Inline);
        Assert.Equal("-O2 -I${ZLIB_DIR}/include", r.Environment["CFLAGS"]);
        Assert.Equal("debian-12", r.BuildEnvironment);
        Assert.Equal(["share/man"], r.Modules.Paths["MANPATH"]);
        Assert.Equal("here", r.Modules.Variables["PNG_HOME"]);
        Assert.Equal(11, r.Dependencies[1].Location.Line);
    }

    [Theory]
    [InlineData("name: zlib\nversion: [1\n", ErrorCode.RecipeSyntax, ":3:1: not valid YAML")]
    [InlineData("name: zlib\nname: again\n", ErrorCode.RecipeSyntax, ":2:1")]
    [InlineData("- a list\n", ErrorCode.RecipeInvalid, ":1:1: expected the recipe")]
    [InlineData("name: zlib\nversion: 1\nbuild: |\n  x\n  y\ncheck: |\n  x\n  y\ncolour: red\n", ErrorCode.RecipeInvalid, ":9:1: unknown key 'colour' in recipe; expected one of")]
    [InlineData("version: 1\nbuild: |\n  x\n  y\ncheck: |\n  x\n  y\n", ErrorCode.RecipeInvalid, ":1:1: missing 'name'")]
    [InlineData("name: zlib\nversion: 1\nsources:\n  - path: z.tgz\n    sha256: ABC\nbuild: |\n  x\n  y\ncheck: |\n  x\n  y\n", ErrorCode.RecipeInvalid, ":5:13: 'sha256' is 'ABC'; expected the lowercase hex SHA-256")]
    [InlineData("name: zlib\nversion: 1\nsources:\n  - sha256: x\n", ErrorCode.RecipeInvalid, ":4:5: expected a source: a mapping with 'path' or 'url', and 'sha256'; neither")]
    [InlineData("name: zlib\nversion: 1\nsources:\n  - path: ../../etc/passwd\n    sha256: x\n", ErrorCode.RecipeInvalid, ":4:11: 'path' is '../../etc/passwd'")]
    [InlineData("name: zlib\nversion: 1\ndependencies: zlib\n", ErrorCode.RecipeInvalid, ":3:15: expected a list of dependencies, found 'zlib'")]
    [InlineData("name: zlib\nversion: 1\ndependencies: [zlib]\n", ErrorCode.RecipeInvalid, "'zlib' depends on itself")]
    [InlineData("name: zlib\nversion: 1\nbuild: build.sh\n", ErrorCode.RecipeFileMissing, ":3:8: 'build' names 'build.sh', which is not in")]
    [InlineData("name: zlib\nversion: 1\nbuild: {run: make, file: x}\n", ErrorCode.RecipeInvalid, ":3:8: expected exactly one of 'file' or 'run'")]
    [InlineData("name: zlib\nversion: 1\nbuild: {run: make}\n", ErrorCode.RecipeInvalid, ":1:1: missing 'check'")]
    [InlineData("name: zlib\nversion: 1\nbuild: {run: make}\ncheck: {run: make}\nenv:\n  HOME: /root\n", ErrorCode.RecipeInvalid, ":6:3: HOME is fixed by the sandbox")]
    [InlineData("name: z lib\n", ErrorCode.RecipeInvalid, ":1:7: 'name' is 'z lib'; expected a package name")]
    public void Errors_name_file_line_column_and_what_is_expected(string yaml, ErrorCode code, string expected)
    {
        var dir = _dir.Add("zlib", yaml);
        var e = Assert.Throws<CairnException>(() => RecipeParser.Load(dir));
        Assert.Equal(code, e.Code);
        Assert.StartsWith(Path.Combine(dir, "recipe.yml") + ":", e.Message);
        Assert.True(e.Message.Contains(expected, StringComparison.Ordinal), e.Message);
    }

    [Fact]
    public void A_missing_recipe_file_is_named()
    {
        var e = Assert.Throws<CairnException>(() => RecipeParser.Load(Path.Combine(_dir.Root, "nothing")));
        Assert.Equal(ErrorCode.RecipeFileMissing, e.Code);
        Assert.Contains("recipe.yml", e.Message);
    }

    [Fact]
    public void The_example_stack_parses()
    {
        var graph = RecipeGraph.Load(Path.Combine(RecipeDir.RepoRoot(), "examples", "stack"));
        Assert.Equal(["gsl", "hello", "zlib", "libpng", "freetype"], graph.TopologicalOrder.Select(r => r.Name));
    }
}
