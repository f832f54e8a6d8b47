using System.Diagnostics;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Build.Tests.Stack;

/// <summary>
/// The generated modulefiles, loaded by the real environment-modules (the Tcl VERSION file) and the real Lmod (the
/// Lua VERSION.lua file beside it, which Lmod prefers) from a materialized copy of the repository tree: paths
/// point into the copy (relocatable), loading zdep loads zlib, and a program compiles and runs against zlib.
/// </summary>
[Collection(StackCollection.Name)]
public sealed class ModuleFileTests(StackFixture stack)
{
    private const string EnvironmentModulesInit = "/usr/share/modules/init/bash";

    private static readonly string[] LmodLocations =
        ["/usr/share/lmod/lmod/libexec/lmod", "/opt/lmod/usr/share/lmod/lmod/libexec/lmod"];

    /// <summary>Loads zdep, then prints what the tests check; $1 is the deployment copy.</summary>
    private const string Probe = """
        module use "$1/modules/linux-x86_64"
        module load zdep
        echo "LOADED=$LOADEDMODULES"
        echo "FILES=$_LMFILES_"
        echo "ZLIB_DIR=$ZLIB_DIR"
        echo "ZDEP_DIR=$ZDEP_DIR"
        echo "ZDEP_DATA=$ZDEP_DATA"
        echo "PATH=$PATH"
        echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
        echo "LIBRARY_PATH=$LIBRARY_PATH"
        echo "CPATH=$CPATH"
        echo "PKG_CONFIG_PATH=$PKG_CONFIG_PATH"
        echo "RUN=$(zdep)"
        printf '#include <zlib.h>\n#include <stdio.h>\nint main(void){printf("%%s\\n", zlibVersion());return 0;}\n' > "$1/v.c"
        cc "$1/v.c" -lz -o "$1/v" && echo "COMPILED=$("$1/v")"
        echo "PKGCONFIG=$(pkg-config --modversion zlib 2>/dev/null)"
        module unload zdep
        echo "AFTER=${LOADEDMODULES:-}"
        """;

    [Fact]
    public async Task Environment_modules_loads_zdep_and_its_dependency_zlib()
    {
        Assert.True(File.Exists(EnvironmentModulesInit), "environment-modules is not installed: apt-get install environment-modules");
        using var deploy = await DeployAsync();
        var output = Run($"source {EnvironmentModulesInit}\n{Probe}", deploy.Root);
        Check(output, deploy.Root);

        // It loaded the Tcl files; the .lua files beside them (no #%Module cookie) are not modulefiles to it.
        Assert.Equal($"{deploy.Root}/modules/linux-x86_64/zlib/1.2.13:{deploy.Root}/modules/linux-x86_64/zdep/1.0", output["FILES"]);
        var avail = Run($"source {EnvironmentModulesInit}\nmodule use \"$1/modules/linux-x86_64\"\necho \"AVAIL=$(module -t avail zdep 2>&1 | tr '\\n' ' ')\"\necho AFTER=", deploy.Root);
        Assert.Contains("zdep/1.0", avail["AVAIL"], StringComparison.Ordinal);
        Assert.DoesNotContain(".lua", avail["AVAIL"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lmod_loads_the_lua_modulefiles()
    {
        var lmod = LmodLocations.FirstOrDefault(File.Exists);
        Assert.True(lmod is not null, "Lmod is not available: run scripts/install-lmod.sh (Debian's lmod conflicts with environment-modules)");
        using var deploy = await DeployAsync();
        var init = $"module() {{ eval \"$(lua5.3 {lmod} bash \"$@\")\"; }}\nexport LMOD_CACHE_DIR=/nonexistent\n";
        var output = Run(init + Probe, deploy.Root);
        Check(output, deploy.Root);
        Assert.Equal($"{deploy.Root}/modules/linux-x86_64/zlib/1.2.13.lua:{deploy.Root}/modules/linux-x86_64/zdep/1.0.lua", output["FILES"]);

        // 'module --raw show' prints the file Lmod would load, as it is: the generated Lua.
        var raw = Run(init + "module use \"$1/modules/linux-x86_64\"\nmodule --raw show zdep > \"$1/raw\" 2>&1\necho AFTER=", deploy.Root);
        var shown = File.ReadAllText(Path.Combine(deploy.Root, "raw"));
        Assert.Contains($"{deploy.Root}/modules/linux-x86_64/zdep/1.0.lua:", shown, StringComparison.Ordinal);
        Assert.Contains("depends_on(\"zlib/1.2.13\")", shown, StringComparison.Ordinal);
        Assert.DoesNotContain("#%Module", shown, StringComparison.Ordinal);
        Assert.Equal("", raw["AFTER"]);
    }

    [Fact]
    public async Task Lmod_still_reads_the_tcl_modulefiles_alone()
    {
        var lmod = LmodLocations.FirstOrDefault(File.Exists);
        Assert.True(lmod is not null, "Lmod is not available: run scripts/install-lmod.sh (Debian's lmod conflicts with environment-modules)");
        using var deploy = await DeployAsync(lua: false);
        var output = Run($"module() {{ eval \"$(lua5.3 {lmod} bash \"$@\")\"; }}\nexport LMOD_CACHE_DIR=/nonexistent\n{Probe}", deploy.Root);
        Check(output, deploy.Root);
        Assert.EndsWith("/zdep/1.0", output["FILES"], StringComparison.Ordinal);
    }

    [Fact]
    public void Modulefiles_escape_tcl_and_refuse_unknown_variables()
    {
        using var dir = new RecipeDir();
        var recipeDir = dir.Add("odd", """
            name: odd
            version: "1.0"
            description: has [brackets] and $dollars "quoted"
            build: {run: 'true'}
            check: {run: 'true'}
            modules:
              paths:
                PYTHONPATH: [lib/python3/site-packages]
              variables:
                ODD_HOME: ${SOFT_DIR}/share
                ODD_TEXT: costs $$5 [sic]
            """);
        var recipe = Recipes.RecipeParser.Load(recipeDir);
        var text = ModuleFile.Generate(recipe, "linux-x86_64", recipeDir, [], null);
        var lua = ModuleFile.GenerateLua(recipe, "linux-x86_64", recipeDir, [], null);
        Assert.Contains("whatis(\"odd 1.0: has [brackets] and $dollars \\\"quoted\\\"\")", lua, StringComparison.Ordinal);
        Assert.Contains("prepend_path(\"PYTHONPATH\", prefix .. \"/lib/python3/site-packages\")", lua, StringComparison.Ordinal);
        Assert.Contains("setenv(\"ODD_HOME\", prefix .. \"/share\")", lua, StringComparison.Ordinal);
        Assert.Contains("setenv(\"ODD_TEXT\", \"costs $5 [sic]\")", lua, StringComparison.Ordinal);
        Assert.Contains("module-whatis \"odd 1.0: has \\[brackets\\] and \\$dollars \\\"quoted\\\"\"", text, StringComparison.Ordinal);
        Assert.Contains("prepend-path PYTHONPATH \"$prefix/lib/python3/site-packages\"", text, StringComparison.Ordinal);
        Assert.Contains("setenv ODD_HOME \"$prefix/share\"", text, StringComparison.Ordinal);
        Assert.Contains("setenv ODD_TEXT \"costs \\$5 \\[sic\\]\"", text, StringComparison.Ordinal);

        var bad = Recipes.RecipeParser.Load(dir.Add("bad", "name: bad\nversion: \"1\"\nbuild: {run: 'true'}\ncheck: {run: 'true'}\nmodules:\n  variables:\n    X: ${HOME}/x\n"));
        var e = Assert.Throws<CairnException>(() => ModuleFile.Validate(bad));
        Assert.Equal(ErrorCode.RecipeVariableUnknown, e.Code);
    }

    private static void Check(Dictionary<string, string> output, string root)
    {
        var zlib = $"{root}/linux-x86_64/zlib/1.2.13";
        var zdep = $"{root}/linux-x86_64/zdep/1.0";
        Assert.Equal("zlib/1.2.13:zdep/1.0", output["LOADED"]);
        Assert.Equal(zlib, output["ZLIB_DIR"]);
        Assert.Equal(zdep, output["ZDEP_DIR"]);
        Assert.Equal($"{zdep}/share/zdep", output["ZDEP_DATA"]);
        Assert.StartsWith($"{zdep}/bin:", output["PATH"], StringComparison.Ordinal);
        Assert.Contains($"{zlib}/lib", output["LD_LIBRARY_PATH"].Split(':'));
        Assert.Contains($"{zlib}/lib", output["LIBRARY_PATH"].Split(':'));
        Assert.Contains($"{zlib}/include", output["CPATH"].Split(':'));
        Assert.Contains($"{zlib}/lib/pkgconfig", output["PKG_CONFIG_PATH"].Split(':'));
        Assert.Equal("zdep uses zlib 1.2.13", output["RUN"]);
        Assert.Equal("1.2.13", output["COMPILED"]);
        Assert.Equal("1.2.13", output["PKGCONFIG"]);
        Assert.Equal("", output["AFTER"]);
    }

    private static Dictionary<string, string> Run(string script, string root)
    {
        var psi = new ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add("probe");
        psi.ArgumentList.Add(root);
        // A clean login-like environment: no module system state from the test runner's shell.
        psi.Environment.Clear();
        psi.Environment["PATH"] = "/usr/local/bin:/usr/bin:/bin";
        psi.Environment["HOME"] = root;
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        var lines = stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var result = lines.Where(l => l.Contains('=', StringComparison.Ordinal)).GroupBy(l => l[..l.IndexOf('=', StringComparison.Ordinal)])
            .ToDictionary(g => g.Key, g => g.Last()[(g.Key.Length + 1)..]);
        Assert.True(result.ContainsKey("AFTER"), $"the probe did not finish (exit {process.ExitCode}):\n{stdout.Result}\n{stderr}");
        return result;
    }

    /// <summary>Materializes zlib and zdep with their modulefiles into a fresh directory, as 'cairn materialize --modules' does.</summary>
    private async Task<StackCopy> DeployAsync(bool lua = true)
    {
        var deploy = new StackCopy(Directory.CreateTempSubdirectory("cairn-deploy-").FullName);
        await using var repo = await StackFixture.OpenAsync(stack.Repository);
        var head = await repo.HeadAsync(default);
        var catalog = await repo.CatalogAsync(head, default);
        var products = DependencyClosure.Resolve(catalog, StackFixture.Platform, [new ProductRef("zdep", "1.0")]);
        Assert.Equal(["zlib", "zdep"], products.Select(p => p.Name));
        foreach (var product in products)
        {
            await new Materializer(repo.Trees).MaterializeAsync(product, deploy.Root, new MaterializeOptions(), null, default);
            var paths = new List<string> { ModuleFile.PathInTree(product.Platform, product.Name, product.Version) };
            if (lua) paths.Add(ModuleFile.LuaPathInTree(product.Platform, product.Name, product.Version));
            foreach (var path in paths)
            {
                var target = Path.Combine(deploy.Root, path);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                await File.WriteAllTextAsync(target, await StackBuildTests.ReadAsync(repo, head.Root, path));
            }
        }

        return deploy;
    }
}
