using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;

namespace Cairn.Fuse.Tests.Stack;

/// <summary>
/// Issue 7 on a real stack: freetype (with zlib and libpng) served by `cairn serve` and mounted over loopback, used
/// by a compiler directly and as the dependency source of a build (--deps-from mount:URL), and fetched lazily.
/// </summary>
[Collection(FreetypeStackCollection.Name)]
public sealed class FreetypeMountTests(FreetypeStackFixture stack) : IAsyncLifetime
{
    private const string Program = """
        #include <stdio.h>
        #include <ft2build.h>
        #include FT_FREETYPE_H
        int main(void) {
            FT_Library library;
            FT_Int major, minor, patch;
            if (FT_Init_FreeType(&library) != 0) return 1;
            FT_Library_Version(library, &major, &minor, &patch);
            printf("freetype %d.%d.%d from the mount\n", major, minor, patch);
            return FT_Done_FreeType(library);
        }
        """;

    private const string FontAppRecipe = """
        name: fontapp
        version: "1.0"
        dependencies: [freetype]
        build: |
          mkdir -p "$SOFT_DIR/bin"
          cat > fontapp.c <<'C'
          #include <stdio.h>
          #include <ft2build.h>
          #include FT_FREETYPE_H
          int main(void) {
              FT_Library library;
              FT_Int major, minor, patch;
              if (FT_Init_FreeType(&library) != 0) return 1;
              FT_Library_Version(library, &major, &minor, &patch);
              printf("fontapp uses freetype %d.%d.%d\n", major, minor, patch);
              return FT_Done_FreeType(library);
          }
          C
          cc -I"$FREETYPE_DIR/include/freetype2" fontapp.c -L"$FREETYPE_DIR/lib" -lfreetype -o "$SOFT_DIR/bin/fontapp"
          # The dependency is the mount's tree, bound read-only: the build cannot change it.
          if touch "$FREETYPE_DIR/lib/written" 2>/dev/null; then echo "freetype is writable"; exit 1; fi
        check: |
          "$SOFT_DIR/bin/fontapp" | grep -x "fontapp uses freetype 2.12.1"
        """;

    private readonly string _root = Directory.CreateTempSubdirectory("cairn-fuse-ft-").FullName;

    private string MountPoint => Path.Combine(_root, "mnt");

    private async Task MountAsync(string cache)
    {
        Directory.CreateDirectory(MountPoint);
        var r = await Shell.CairnAsync("mount", stack.Url, MountPoint, "--cache", cache, "--log", Path.Combine(_root, "mount.log"));
        Assert.True(r.ExitCode == 0, r.ToString());
    }

    [Fact]
    public async Task A_program_compiles_against_freetype_in_the_mount_and_runs()
    {
        await MountAsync(Path.Combine(_root, "cache"));
        string Dir(string name, string version) => Path.Combine(MountPoint, stack.ProductPath(name, version));
        var freetype = Dir("freetype", "2.12.1");
        await File.WriteAllTextAsync(Path.Combine(_root, "ft.c"), Program);
        var libs = string.Join(':', Dir("freetype", "2.12.1"), Dir("libpng", "1.6.39"), Dir("zlib", "1.2.13")).Split(':').Select(d => d + "/lib");
        var r = await Shell.ShAsync(
            $"export CPATH={Shell.Q(freetype + "/include/freetype2")} LIBRARY_PATH={Shell.Q(string.Join(':', libs))} LD_LIBRARY_PATH={Shell.Q(string.Join(':', libs))}; " +
            $"cc {Shell.Q(Path.Combine(_root, "ft.c"))} -lfreetype -o {Shell.Q(Path.Combine(_root, "ft"))} && {Shell.Q(Path.Combine(_root, "ft"))}");
        Assert.Equal("freetype 2.12.1 from the mount\n", r.Stdout);

        // The mount's digest attribute is the published product's root (what --deps-from mount:PATH puts in build keys).
        await using var repo = await DirectoryRepository.OpenAsync(stack.Repository, TimeProvider.System, null, TimeSpan.FromMinutes(1), default);
        var catalog = await repo.CatalogAsync(await repo.HeadAsync(default), default);
        var record = catalog.Find(FreetypeStackFixture.Platform, new ProductRef("freetype", "2.12.1"))!;
        // An existing mount point as the dependency source: cairn plan takes the three products from it.
        Directory.CreateDirectory(Path.Combine(_root, "empty"));
        r = await Shell.CairnAsync("init", Path.Combine(_root, "empty"), "--platform", FreetypeStackFixture.Platform);
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Shell.CairnAsync("--repo", Path.Combine(_root, "empty"), "plan", stack.Recipes, "--only", "freetype", "--deps-from", "mount:" + MountPoint,
            "--deployment-root", FreetypeStackFixture.DeploymentRoot, "--deployment-site", FreetypeStackFixture.Site);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains($"zlib/1.2.13", r.Stdout, StringComparison.Ordinal);
        Assert.Contains($"provided by mount:{MountPoint}", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("1 to build", r.Stdout, StringComparison.Ordinal);

        var seen = await new Cairn.Build.MountDependencySource(MountPoint, "mount:" + MountPoint).FindAsync(FreetypeStackFixture.Platform, "freetype", "2.12.1", default);
        Assert.Equal(record.Root, seen?.Root);
    }

    [Fact]
    public Task A_build_takes_freetype_from_a_mount_of_the_server_and_publishes_only_its_own_product() => BuildFontAppAsync("mount:" + stack.Url);

    [Fact]
    public Task A_build_takes_freetype_from_the_server_over_http_and_publishes_only_its_own_product() => BuildFontAppAsync(stack.Url);

    /// <summary>Builds fontapp (--only) into a new, empty repository with everything it needs from <paramref name="depsFrom"/>.</summary>
    private async Task BuildFontAppAsync(string depsFrom)
    {
        var recipes = Path.Combine(_root, "recipes");
        await Shell.ShAsync($"cp -a {Shell.Q(stack.Recipes)} {Shell.Q(recipes)}");
        Directory.CreateDirectory(Path.Combine(recipes, "fontapp"));
        await File.WriteAllTextAsync(Path.Combine(recipes, "fontapp", "recipe.yml"), FontAppRecipe.ReplaceLineEndings("\n") + "\n");
        var target = Path.Combine(_root, "target");
        var r = await Shell.CairnAsync("init", target, "--platform", FreetypeStackFixture.Platform);
        Assert.True(r.ExitCode == 0, r.ToString());
        string[] common = ["--repo", target, "--json", "plan", recipes, "--only", "fontapp", "--deps-from", depsFrom,
            "--deployment-root", FreetypeStackFixture.DeploymentRoot, "--deployment-site", FreetypeStackFixture.Site];

        // The mount's client cache: CAIRN_CACHE, private to this test.
        var build = await Shell.ShAsync($"CAIRN_CACHE={Shell.Q(Path.Combine(_root, "cache"))} {CairnUnderTest.ShellWords} " +
            string.Join(' ', common.Select(a => Shell.Q(a == "plan" ? "build" : a))), check: false, timeout: TimeSpan.FromMinutes(5));
        Assert.True(build.ExitCode == 0, build.ToString());
        using var json = System.Text.Json.JsonDocument.Parse(build.Stdout);
        var packages = json.RootElement.GetProperty("packages").EnumerateArray().ToDictionary(p => p.GetProperty("name").GetString()!);
        foreach (var dep in new[] { "zlib", "libpng", "freetype" })
        {
            Assert.Equal("upToDate", packages[dep].GetProperty("status").GetString());
            Assert.StartsWith("provided by " + depsFrom, packages[dep].GetProperty("reason").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal("built", packages["fontapp"].GetProperty("status").GetString());
        await using var repo = await DirectoryRepository.OpenAsync(target, TimeProvider.System, null, TimeSpan.FromMinutes(1), default);
        var catalog = await repo.CatalogAsync(await repo.HeadAsync(default), default);
        Assert.Equal(["fontapp"], catalog.Products.Select(p => p.Name));
        // cairn build mounted the server for the build only.
        Assert.DoesNotContain(MountTable.Read(), m => m.FsType == FuseMount.FsType && m.Source.Contains(stack.Url, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Opening_one_file_through_a_fresh_mount_fetches_only_its_objects_and_the_trees_above_it()
    {
        const string file = "include/freetype2/ft2build.h";
        await using var repo = await DirectoryRepository.OpenAsync(stack.Repository, TimeProvider.System, null, TimeSpan.FromMinutes(1), default);
        var head = await repo.HeadAsync(default);
        var record = (await repo.CatalogAsync(head, default)).Find(FreetypeStackFixture.Platform, new ProductRef("freetype", "2.12.1"))!;
        // What the mount needs: the catalog (statfs), the root tree, the trees of every directory on the path, the file.
        var path = $"{stack.ProductPath("freetype", "2.12.1")}/{file}".Split('/');
        var expected = new HashSet<Digest> { head.Catalog, head.Root };
        for (var i = 1; i <= path.Length; i++)
        {
            var entry = await repo.Trees.LookupAsync(head.Root, string.Join('/', path.Take(i)), default);
            Assert.NotNull(entry);
            expected.Add(entry.Digest);
        }

        var everything = 0;
        await foreach (var _ in repo.Trees.WalkAsync(record.Root, default)) everything++;

        var before = await stack.RequestsAsync("pack");
        await MountAsync(Path.Combine(_root, "fresh-cache"));
        await Shell.ShAsync($"head -c 100 {Shell.Q(Path.Combine(MountPoint, string.Join('/', path)))} > /dev/null");
        var fetched = await stack.RequestsAsync("pack") - before;

        // Each object is one range read of a pack: exactly the expected ones, out of the hundreds in freetype alone.
        Assert.True(fetched == expected.Count, $"the mount made {fetched} pack reads; the file, the catalog and the trees on its path are {expected.Count} objects (freetype holds {everything} entries)");
        Assert.True(everything > 5 * expected.Count, $"freetype holds only {everything} entries");
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (MountTable.Find(MountPoint) is not null) await Shell.CairnAsync("unmount", MountPoint);
        await Shell.ShAsync($"chmod -R u+w {Shell.Q(_root)}; rm -rf {Shell.Q(_root)}", check: false);
    }
}
