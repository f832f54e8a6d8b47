using Cairn.Build.Tests.Stack;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;

namespace Cairn.Build.Tests.Deps;

/// <summary>
/// --deps-from with real bubblewrap on a small synthetic stack: "base" installs a data file and a tool, "app" reads
/// both at base's deployment path while building and checking. Each build takes about a second.
/// </summary>
public sealed class DependencySourceTests : IDisposable
{
    private const string BaseRecipe = """
        name: base
        version: "1.0"
        build: |
          mkdir -p "$SOFT_DIR/share/base" "$SOFT_DIR/bin"
          echo "base data $VERSION" > "$SOFT_DIR/share/base/data.txt"
          printf '#!/bin/sh\necho base tool\n' > "$SOFT_DIR/bin/base-tool"
          chmod +x "$SOFT_DIR/bin/base-tool"
        check: |
          test -x "$SOFT_DIR/bin/base-tool"
        """;

    private const string AppRecipe = """
        name: app
        version: "2.0"
        dependencies: [base]
        build: |
          mkdir -p "$SOFT_DIR/share"
          cat "$BASE_DIR/share/base/data.txt" > "$SOFT_DIR/share/from-base"
          base-tool >> "$SOFT_DIR/share/from-base"
          echo "$BASE_DIR" > "$SOFT_DIR/share/base-dir"
          if touch "$BASE_DIR/share/base/written" 2>/dev/null; then echo "dependency is writable"; exit 1; fi
        check: |
          grep -x "base data 1.0" "$SOFT_DIR/share/from-base"
          grep -x "base tool" "$SOFT_DIR/share/from-base"
        """;

    private readonly string _root = Directory.CreateTempSubdirectory("cairn-deps-").FullName;

    private string Recipes => Path.Combine(_root, "recipes");

    private async Task<ProductRepository> NewRepositoryAsync(string name) =>
        await DirectoryRepository.InitAsync(Path.Combine(_root, name), name, StackFixture.Platform, TimeProvider.System, null, default);

    private StackOptions Options(string repository) => StackFixture.Options(Recipes, Path.Combine(_root, repository));

    private void WriteRecipes()
    {
        StackFixture.AddRecipe(Recipes, "base", BaseRecipe);
        StackFixture.AddRecipe(Recipes, "app", AppRecipe);
    }

    /// <summary>Builds base (only) into a repository "origin" and exports it into DIR; returns base's product.</summary>
    private async Task<ProductRecord> OriginWithExportedBaseAsync(string exportDirectory)
    {
        WriteRecipes();
        await using var origin = await NewRepositoryAsync("origin");
        var built = await StackFixture.Builder(origin).BuildAsync(Options("origin") with { Only = ["base"] }, null, default);
        Assert.True(built.Succeeded, StackFixture.Describe(built));
        var record = (await StackFixture.CatalogAsync(origin)).Find(StackFixture.Platform, new ProductRef("base", "1.0"))!;
        Directory.CreateDirectory(exportDirectory);
        await using (var file = File.Create(Path.Combine(exportDirectory, "base-1.0.tar.zst")))
        {
            await new Exporter(origin.Trees).ExportAsync([record], file, default);
        }

        return record;
    }

    [Fact]
    public async Task The_default_source_is_the_repository_being_built_into()
    {
        WriteRecipes();
        await using var repo = await NewRepositoryAsync("repo");
        var result = await StackFixture.Builder(repo).BuildAsync(Options("repo"), null, default);
        Assert.True(result.Succeeded, StackFixture.Describe(result));
        Assert.All(result.Packages, p => Assert.Equal(PackageStatus.Built, p.Status));
        var catalog = await StackFixture.CatalogAsync(repo);
        var app = catalog.Find(StackFixture.Platform, new ProductRef("app", "2.0"))!;
        var from = await repo.Trees.LookupAsync(app.Root, "share/base-dir", default);
        using var text = new MemoryStream();
        await repo.Trees.CopyContentAsync(from!, text, default);
        Assert.Equal(new DeploymentLayout("/cvmfs/cairn.test", "test", Platform.Detect()).PrefixOf("base", "1.0") + "\n", System.Text.Encoding.UTF8.GetString(text.ToArray()));
    }

    [Fact]
    public async Task Tarballs_provide_the_dependencies_of_a_build_into_a_repository_that_lacks_them()
    {
        var exports = Path.Combine(_root, "exports");
        var origin = await OriginWithExportedBaseAsync(exports);

        await using var target = await NewRepositoryAsync("target");
        await using var source = new TarballDependencySource(exports, Path.Combine(_root, "scratch"), TimeProvider.System);
        var options = Options("target") with { Only = ["app"], Dependencies = source };

        var plan = await StackFixture.Builder(target).PlanAsync(options, default);
        Assert.Equal([("base", PlanAction.UpToDate), ("app", PlanAction.Build)], plan.Packages.Select(p => (p.Name, p.Action)));
        Assert.Contains("provided by tarballs:", plan.Packages[0].Reason, StringComparison.Ordinal);

        var result = await StackFixture.Builder(target).BuildAsync(options, null, default);
        Assert.True(result.Succeeded, StackFixture.Describe(result));
        var baseResult = result.Packages.Single(p => p.Name == "base");
        Assert.Equal(PackageStatus.UpToDate, baseResult.Status);
        // The tarball's verified tree has exactly the published product's root: the build key sees the same input.
        Assert.Equal(origin.Root, baseResult.Product);
        Assert.Equal(PackageStatus.Built, result.Packages.Single(p => p.Name == "app").Status);

        // Only app was published; base stays where it came from.
        var catalog = await StackFixture.CatalogAsync(target);
        Assert.Equal(["app"], catalog.Products.Select(p => p.Name));

        // Its build key is the one a build from the origin repository computes (same recipes, same base product).
        await using (var originRepo = await StackFixture.OpenAsync(Path.Combine(_root, "origin")))
        {
            var originPlan = await StackFixture.Builder(originRepo).PlanAsync(Options("origin"), default);
            Assert.Equal(catalog.Products[0].BuildKey, originPlan.Packages.Single(p => p.Name == "app").BuildKey);
        }

        // The scratch repositories and unpacked trees are gone after the build.
        Assert.Empty(Directory.GetDirectories(Path.Combine(_root, "target", "builds", StackBuilder.WorkFolder)));
    }

    [Fact]
    public async Task A_product_missing_from_the_tarballs_is_named_and_blocks_its_dependants()
    {
        WriteRecipes();
        var exports = Directory.CreateDirectory(Path.Combine(_root, "exports")).FullName;
        await using var target = await NewRepositoryAsync("target");
        await using var source = new TarballDependencySource(exports, Path.Combine(_root, "scratch"), TimeProvider.System);
        var options = Options("target") with { Only = ["app"], Dependencies = source };

        var result = await StackFixture.Builder(target).BuildAsync(options, null, default);
        Assert.False(result.Succeeded);
        var missing = result.Packages.Single(p => p.Name == "base");
        Assert.Equal(PackageStatus.Failed, missing.Status);
        Assert.Equal(ErrorCodes.Name(ErrorCode.DepsProductMissing), missing.Code);
        Assert.Contains("base/1.0 (linux-x86_64)", missing.Reason, StringComparison.Ordinal);
        Assert.Contains(exports, missing.Reason, StringComparison.Ordinal);
        Assert.Equal(PackageStatus.Blocked, result.Packages.Single(p => p.Name == "app").Status);
        Assert.Empty((await StackFixture.CatalogAsync(target)).Products);
    }

    [Fact]
    public async Task A_tampered_tarball_is_refused_by_the_importers_checks()
    {
        WriteRecipes();
        var exports = Directory.CreateDirectory(Path.Combine(_root, "exports")).FullName;
        // A hand-made export whose symlink leaves the product.
        var tree = Path.Combine(_root, "evil", StackFixture.Platform, "base", "1.0");
        Directory.CreateDirectory(tree);
        File.CreateSymbolicLink(Path.Combine(tree, "escape"), "../../../../etc/passwd");
        using (var tar = System.Diagnostics.Process.Start("tar", ["-C", Path.Combine(_root, "evil"), "-cf", Path.Combine(exports, "base-1.0.tar"), StackFixture.Platform])!)
        {
            await tar.WaitForExitAsync();
            Assert.Equal(0, tar.ExitCode);
        }

        await using var target = await NewRepositoryAsync("target");
        await using var source = new TarballDependencySource(exports, Path.Combine(_root, "scratch"), TimeProvider.System);
        var result = await StackFixture.Builder(target).BuildAsync(Options("target") with { Only = ["app"], Dependencies = source }, null, default);
        var refused = result.Packages.Single(p => p.Name == "base");
        Assert.Equal(PackageStatus.Failed, refused.Status);
        Assert.Equal(ErrorCodes.Name(ErrorCode.ArchiveSymlinkEscape), refused.Code);
        Assert.Equal(PackageStatus.Blocked, result.Packages.Single(p => p.Name == "app").Status);
    }

    [Fact]
    public void Deps_from_values_parse_or_are_refused()
    {
        Assert.Equal(DependencySourceKind.Repository, DependencySourceSpec.Parse(null).Kind);
        Assert.Equal(DependencySourceKind.Repository, DependencySourceSpec.Parse("repo").Kind);
        Assert.Equal(new DependencySourceSpec(DependencySourceKind.Http, "http://a:1,http://b:2"), DependencySourceSpec.Parse("http://a:1,http://b:2"));
        Assert.Equal(new DependencySourceSpec(DependencySourceKind.Tarballs, "/srv/exports"), DependencySourceSpec.Parse("tarballs:/srv/exports"));
        Assert.Equal(new DependencySourceSpec(DependencySourceKind.Mount, "/cvmfs/ci"), DependencySourceSpec.Parse("mount:/cvmfs/ci"));
        Assert.Equal(new DependencySourceSpec(DependencySourceKind.Mount, "https://ci.example.org"), DependencySourceSpec.Parse("mount:https://ci.example.org"));
        foreach (var bad in new[] { "tarballs:", "mount:", "ftp://x", "/some/dir" })
        {
            Assert.Equal(ErrorCode.DepsSourceInvalid, Assert.Throws<CairnException>(() => DependencySourceSpec.Parse(bad)).Code);
        }
    }

    [Fact]
    public void A_directory_that_is_not_a_cairn_mount_is_refused()
    {
        var e = Assert.Throws<CairnException>(() => new MountDependencySource(_root, "mount:" + _root).Validate());
        Assert.Equal(ErrorCode.DepsMountInvalid, e.Code);
        Assert.Contains("user.cairn.digest", e.Message, StringComparison.Ordinal);
    }

    public void Dispose() => StackBuilder.DeleteTree(_root);
}
