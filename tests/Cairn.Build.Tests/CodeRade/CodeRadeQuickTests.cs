using System.Text;
using Cairn.Build.CodeRade;
using Cairn.Build.Recipes;
using Cairn.Build.Tests.Stack;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Sandbox;

namespace Cairn.Build.Tests.CodeRade;

/// <summary>The parts of the CODE-RADE support that take seconds: hints, refused downloads, cmake's lib/, import, parsing.</summary>
public sealed class CodeRadeQuickTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cairn-coderade-quick-").FullName;

    public void Dispose() => StackBuilder.DeleteTree(_root);

    private string Recipes => Path.Combine(_root, "recipes");

    private string Repository => Path.Combine(_root, "repo");

    private async Task<StackBuildResult> BuildAsync()
    {
        await using var repo = await DirectoryRepository.InitAsync(Repository, "test", StackFixture.Platform, TimeProvider.System, null, default);
        return await StackFixture.Builder(repo).BuildAsync(StackFixture.Options(Recipes, Repository), null, default);
    }

    [Fact]
    public async Task A_check_that_writes_the_read_only_prefix_fails_with_a_hint_naming_the_code_rade_layout()
    {
        StackFixture.AddRecipe(Recipes, "installer", """
            name: installer
            version: "1.0"
            build: |
              mkdir -p "$SOFT_DIR/bin"
              printf '#!/bin/sh\necho hi\n' > "$SOFT_DIR/bin/hi"
            check: |
              install -m 755 /dev/null "$SOFT_DIR/bin/again"
            """);
        var result = await BuildAsync();
        var package = Assert.Single(result.Packages);
        Assert.Equal(PackageStatus.Failed, package.Status);
        Assert.Equal("CAIRN-E0612", package.Code);
        var prefix = $"/cvmfs/cairn.test/test/{Platform.Detect().Os}/{Platform.Detect().Arch}/installer/1.0";
        Assert.Equal(
            $"check: exit 1; hint: the check tried to write into the product's prefix {prefix}, which is read-only during the check. " +
            "A CODE-RADE check-build.sh that runs 'make install' needs 'layout: code-rade' in recipe.yml (docs/recipes.md, \"Coming from CODE-RADE\"); " +
            "otherwise install in the build script and only test in the check",
            package.Reason);
    }

    [Fact]
    public async Task With_layout_code_rade_the_same_check_may_install_and_what_it_leaves_is_published()
    {
        StackFixture.AddRecipe(Recipes, "installer", """
            name: installer
            version: "1.0"
            layout: code-rade
            build: |
              echo built > built.txt
            check: |
              install -m 644 built.txt "$SOFT_DIR/installed-by-check.txt"
            """);
        var result = await BuildAsync();
        Assert.True(result.Succeeded, StackFixture.Describe(result));
        await using var repo = await StackFixture.OpenAsync(Repository);
        var record = (await StackFixture.CatalogAsync(repo)).Find(StackFixture.Platform, new ProductRef("installer", "1.0"))!;
        Assert.Equal("built\n", await StackBuildTests.ReadAsync(repo, record.Root, "installed-by-check.txt"));
    }

    [Fact]
    public async Task A_code_rade_script_that_downloads_its_source_fails_naming_the_file_and_how_to_provide_it()
    {
        // gsl-deploy as it is, imported without giving it the tarball: build.sh claims the download and runs wget.
        var dir = CodeRadeFixture.CopyFixture("gsl-deploy", Path.Combine(Recipes, "gsl"));
        var import = CodeRadeImporter.Import(new CodeRadeImportRequest(dir, "gsl", "2.7.1"));
        Assert.Contains(import.NotMapped, l => l.StartsWith("build.sh wants $SRC_DIR/gsl-2.7.1.tar.gz (it would download http://mirror.ufs.ac.za/gnu/gsl/gsl-2.7.1.tar.gz)", StringComparison.Ordinal));
        var result = await BuildAsync();
        var package = Assert.Single(result.Packages);
        Assert.Equal(PackageStatus.Failed, package.Status);
        Assert.Equal("CAIRN-E0640", package.Code);
        Assert.Equal(
            $"build: exit 4; the script tried to download gsl-2.7.1.tar.gz (wget http://mirror.ufs.ac.za/gnu/gsl/gsl-2.7.1.tar.gz -> /cairn/src/gsl-2.7.1.tar.gz), " +
            $"but builds have no network: add it to {Path.Combine(dir, "recipe.yml")} as a source (sources: [{{path: FILE, as: gsl-2.7.1.tar.gz, sha256: SHA256}}]) " +
            "and put FILE in the recipes' sources/ or a --sources DIR",
            package.Reason);
        Assert.Contains("cairn: builds have no network, so gsl-2.7.1.tar.gz must be in $SRC_DIR", File.ReadAllText(package.LogFile!), StringComparison.Ordinal);
    }

    private const string CmakeLists = """
        cmake_minimum_required(VERSION 3.13)
        project(cmk C)
        include(GNUInstallDirs)
        file(WRITE ${CMAKE_BINARY_DIR}/cmk.c "int cmk(void) { return 1; }\n")
        add_library(cmk SHARED ${CMAKE_BINARY_DIR}/cmk.c)
        install(TARGETS cmk)
        file(WRITE ${CMAKE_BINARY_DIR}/libdir.txt "${CMAKE_INSTALL_LIBDIR}")
        """;

    [Fact]
    public async Task A_cmake_package_installs_into_the_same_library_folder_as_on_the_host()
    {
        StackFixture.AddRecipe(Recipes, "cmk", """
            name: cmk
            version: "1.0"
            build: |
              cat /etc/debian_version
              cmake -S /cairn/recipe -B build -DCMAKE_INSTALL_PREFIX="$SOFT_DIR" >/dev/null
              cmake --build build >/dev/null
              cmake --install build
            check: |
              ls "$SOFT_DIR"/lib*/libcmk.so
            """);
        File.WriteAllText(Path.Combine(Recipes, "cmk", "CMakeLists.txt"), CmakeLists);
        var result = await BuildAsync();
        Assert.True(result.Succeeded, StackFixture.Describe(result));

        // The host's CMake, configuring the same project for the same prefix, picks the folder the sandbox must match.
        var host = Path.Combine(_root, "host-cmake");
        var prefix = $"/cvmfs/cairn.test/test/{Platform.Detect().Os}/{Platform.Detect().Arch}/cmk/1.0";
        UpstreamTarballs.Shell($"cmake -S '{Path.Combine(Recipes, "cmk")}' -B '{host}' -DCMAKE_INSTALL_PREFIX='{prefix}' >/dev/null");
        var hostLibDir = File.ReadAllText(Path.Combine(host, "libdir.txt"));
        if (File.Exists("/etc/debian_version")) Assert.Equal("lib", hostLibDir);

        await using var repo = await StackFixture.OpenAsync(Repository);
        var record = (await StackFixture.CatalogAsync(repo)).Find(StackFixture.Platform, new ProductRef("cmk", "1.0"))!;
        Assert.NotNull(await repo.Trees.LookupAsync(record.Root, $"{hostLibDir}/libcmk.so", default));
        if (hostLibDir == "lib") Assert.Null(await repo.Trees.LookupAsync(record.Root, "lib64", default));
        if (File.Exists("/etc/debian_version"))
        {
            var log = await StackBuildTests.ReadAsync(repo, (await repo.HeadAsync(default)).Root, record.Log!);
            Assert.Contains(File.ReadAllText("/etc/debian_version"), log, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Import_without_a_jenkinsfile_and_without_name_says_what_to_give()
    {
        var dir = CodeRadeFixture.CopyFixture("bzlib-deploy", Path.Combine(Recipes, "bzip2"));
        var e = Assert.Throws<CairnException>(() => CodeRadeImporter.Import(new CodeRadeImportRequest(dir)));
        Assert.Equal(ErrorCode.RecipeImportIncomplete, e.Code);
        Assert.Equal($"{dir}: there is no Jenkinsfile to read NAME and VERSION", e.Message);
        Assert.Contains("--name NAME --version VERSION", e.Hint, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir, "recipe.yml")));

        // With them, the written recipe loads, and a second import does not overwrite it without --force.
        var tarball = Path.Combine(_root, "bzip2-1.0.8.tar.bz2");
        File.WriteAllText(tarball, "not really a tarball");
        var result = CodeRadeImporter.Import(new CodeRadeImportRequest(dir, "bzip2", "1.0.8", [tarball]));
        var recipe = RecipeParser.Load(dir);
        Assert.Equal(RecipeLayout.CodeRade, recipe.Layout);
        Assert.Equal("bzip2-1.0.8.tar.bz2", recipe.Sources.Single().NameInSandbox);
        // bzlib-deploy's wget names bzip2 1.0.6 whatever VERSION is: not a URL to record for 1.0.8.
        Assert.Null(recipe.Sources.Single().Url);
        Assert.Contains(result.NotMapped, l => l == "build.sh downloads https://snapshot.debian.org/archive/debian/20111204T160411Z/pool/main/b/bzip2/bzip2_1.0.6.orig.tar.bz2, which does not name version 1.0.8: not recorded as the source's url");
        Assert.Equal("${SOFT_DIR}", recipe.Modules.Variables["BZLIB_DIR"]);
        Assert.Contains(result.Mapped, l => l == "build.sh → build");
        var again = Assert.Throws<CairnException>(() => CodeRadeImporter.Import(new CodeRadeImportRequest(dir, "bzip2", "1.0.8")));
        Assert.Contains("--force", again.Hint, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("layout: nonsense\n", "'layout' is 'nonsense'; expected 'cairn' (the default) or 'code-rade'")]
    [InlineData("host-modules: [cmake]\n", "'host-modules' is only for 'layout: code-rade' recipes")]
    [InlineData("layout: code-rade\nhost-modules: [../x]\n", "'../x' is not a module name")]
    public void Recipe_layout_keys_are_checked(string yaml, string expected)
    {
        var dir = Directory.CreateDirectory(Path.Combine(_root, "r", "p")).FullName;
        File.WriteAllText(Path.Combine(dir, "recipe.yml"), $"name: p\nversion: \"1\"\nbuild: {{run: make}}\ncheck: {{run: make}}\n{yaml}");
        var e = Assert.Throws<CairnException>(() => RecipeParser.Load(dir));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dependency_search_paths_name_lib64_and_multiarch_folders_when_the_product_has_them()
    {
        var product = Directory.CreateDirectory(Path.Combine(_root, "product")).FullName;
        Directory.CreateDirectory(Path.Combine(product, "lib64"));
        Directory.CreateDirectory(Path.Combine(product, "lib", "x86_64-linux-gnu"));
        Directory.CreateDirectory(Path.Combine(product, "lib", "pkgconfig"));
        Assert.Equal(["lib", "lib64", "lib/x86_64-linux-gnu"], LibraryFolders.Of(product));
        var dir = Directory.CreateDirectory(Path.Combine(_root, "r", "user")).FullName;
        File.WriteAllText(Path.Combine(dir, "recipe.yml"), "name: user\nversion: \"1\"\nbuild: {run: make}\ncheck: {run: make}\n");
        var layout = new DeploymentLayout("/cvmfs/x", "s", new Platform("debian12", "x86_64"));
        var env = BuildVariables.Compute(RecipeParser.Load(dir), layout, [("dep", "/cvmfs/x/s/debian12/x86_64/dep/1")], libraryFolders: new Dictionary<string, IReadOnlyList<string>> { ["dep"] = LibraryFolders.Of(product) });
        const string P = "/cvmfs/x/s/debian12/x86_64/dep/1";
        Assert.Equal($"{P}/lib:{P}/lib64:{P}/lib/x86_64-linux-gnu", env["LD_LIBRARY_PATH"]);
        Assert.Equal(env["LD_LIBRARY_PATH"], env["LIBRARY_PATH"]);
        Assert.Equal($"{P}/lib/pkgconfig:{P}/lib64/pkgconfig:{P}/lib/x86_64-linux-gnu/pkgconfig:{P}/share/pkgconfig", env["PKG_CONFIG_PATH"]);
        var module = ModuleFile.Generate(RecipeParser.Load(dir), "linux-x86_64", product, [], null);
        Assert.Contains("prepend-path LD_LIBRARY_PATH \"$prefix/lib/x86_64-linux-gnu\"", module, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_sandbox_shows_the_distribution_identity_files_read_only()
    {
        var present = new[] { "debian_version", "lsb-release", "redhat-release", "system-release" }.Where(n => File.Exists(Path.Combine("/etc", n))).ToList();
        Assert.NotEmpty(present);
        using var output = new MemoryStream();
        var script = string.Join("; ", present.Select(n => $"cat /etc/{n}; ! echo x 2>/dev/null >> /etc/{n}"));
        var run = await new BubblewrapSandbox().RunAsync(new SandboxSpec { Command = ["/bin/sh", "-ec", script] }, output, default);
        Assert.True(run.Succeeded, run.Describe() + Encoding.UTF8.GetString(output.ToArray()));
        Assert.Equal(string.Concat(present.Select(n => File.ReadAllText(Path.Combine("/etc", n)))), Encoding.UTF8.GetString(output.ToArray()));
    }
}
