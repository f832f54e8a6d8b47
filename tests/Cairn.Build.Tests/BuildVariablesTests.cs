using Cairn.Build.Recipes;
using Cairn.Core;
using Cairn.Sandbox;

namespace Cairn.Build.Tests;

public sealed class BuildVariablesTests : IDisposable
{
    private static readonly DeploymentLayout Layout = new("/cvmfs/cairn.example", "generic", new Platform("debian12", "x86_64"));
    private readonly RecipeDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("zlib", "ZLIB_DIR")]
    [InlineData("libxml2-dev", "LIBXML2_DEV_DIR")]
    [InlineData("g++.x", "G___X_DIR")]
    public void Dependency_variables_are_upper_case_with_underscores(string name, string variable) =>
        Assert.Equal(variable, BuildVariables.DirVariable(name));

    [Fact]
    public void The_code_rade_contract_is_complete()
    {
        var dir = _dir.Add("freetype", "name: freetype\nversion: 2.12.1\nbuild: {run: make}\ncheck: {run: make}\nenv:\n  CFLAGS: -I${ZLIB_DIR}/include $${HOME}\n");
        var recipe = RecipeParser.Load(dir);
        var repo = "/cvmfs/cairn.example/generic/debian12/x86_64";
        var env = BuildVariables.Compute(recipe, Layout, [("libpng", $"{repo}/libpng/1.6.39"), ("zlib", $"{repo}/zlib/1.2.13")]);
        Assert.Equal("freetype", env["NAME"]);
        Assert.Equal("2.12.1", env["VERSION"]);
        Assert.Equal("generic", env["SITE"]);
        Assert.Equal("debian12", env["OS"]);
        Assert.Equal("x86_64", env["ARCH"]);
        Assert.Equal("/cvmfs/cairn.example", env["CVMFS_DIR"]);
        Assert.Equal(repo, env["REPO_DIR"]);
        Assert.Equal($"{repo}/freetype/2.12.1", env["SOFT_DIR"]);
        Assert.Equal(BuildVariables.SourcesPath, env["SRC_DIR"]);
        Assert.Equal(BuildVariables.WorkspacePath, env["WORKSPACE"]);
        Assert.Equal($"{repo}/zlib/1.2.13", env["ZLIB_DIR"]);
        Assert.Equal($"{repo}/libpng/1.6.39", env["LIBPNG_DIR"]);
        Assert.Equal($"{repo}/libpng/1.6.39/bin:{repo}/zlib/1.2.13/bin:{SandboxContract.DefaultPath}", env["PATH"]);
        Assert.Equal($"{repo}/libpng/1.6.39/lib:{repo}/zlib/1.2.13/lib", env["LD_LIBRARY_PATH"]);
        Assert.Equal($"{repo}/libpng/1.6.39/lib:{repo}/zlib/1.2.13/lib", env["LIBRARY_PATH"]);
        Assert.Equal($"{repo}/libpng/1.6.39/include:{repo}/zlib/1.2.13/include", env["CPATH"]);
        Assert.StartsWith($"{repo}/libpng/1.6.39/lib/pkgconfig:{repo}/libpng/1.6.39/share/pkgconfig:", env["PKG_CONFIG_PATH"]);
        Assert.Equal($"-I{repo}/zlib/1.2.13/include ${{HOME}}", env["CFLAGS"]);
    }

    [Fact]
    public void Unknown_variables_in_env_are_errors()
    {
        var dir = _dir.Add("x", "name: x\nversion: 1\nbuild: {run: make}\ncheck: {run: make}\nenv:\n  CFLAGS: -I${NOPE}/include\n");
        var e = Assert.Throws<CairnException>(() => BuildVariables.Compute(RecipeParser.Load(dir), Layout, []));
        Assert.Equal(ErrorCode.RecipeVariableUnknown, e.Code);
        Assert.Contains("${NOPE}", e.Message);
    }

    [Fact]
    public void Contract_variables_cannot_be_overridden()
    {
        var dir = _dir.Add("x", "name: x\nversion: 1\nbuild: {run: make}\ncheck: {run: make}\nenv:\n  SOFT_DIR: /usr\n");
        var e = Assert.Throws<CairnException>(() => BuildVariables.Compute(RecipeParser.Load(dir), Layout, []));
        Assert.Equal(ErrorCode.RecipeInvalid, e.Code);
    }
}
