using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Sandbox;

namespace Cairn.Build.Tests.Stack;

/// <summary>
/// A recipes directory with the real hello and zlib recipes plus zdep (a small program linked against zlib), built
/// once with real bubblewrap into a repository that the tests share (about 40 s). Tests that change anything work
/// on copies (<see cref="CopyAsync"/>).
/// </summary>
public sealed class StackFixture : IAsyncLifetime
{
    public const string Platform = "linux-x86_64";

    public const string ZdepRecipe = """
        name: zdep
        version: "1.0"
        description: a program linked against zlib
        dependencies: [zlib]
        build: |
          mkdir -p "$SOFT_DIR/bin" "$SOFT_DIR/share/zdep"
          cat > zdep.c <<'C'
          #include <stdio.h>
          #include <zlib.h>
          int main(void) { printf("zdep uses zlib %s\n", zlibVersion()); return 0; }
          C
          cc zdep.c -lz -o "$SOFT_DIR/bin/zdep"
          echo "$ZLIB_DIR" > "$SOFT_DIR/share/zdep/zlib-dir"
        check: |
          "$SOFT_DIR/bin/zdep" | grep -x "zdep uses zlib 1.2.13"
        modules:
          variables:
            ZDEP_DATA: ${SOFT_DIR}/share/zdep
        """;

    public string Root { get; } = Directory.CreateTempSubdirectory("cairn-stack-").FullName;

    public string Recipes => Path.Combine(Root, "recipes");

    public string Repository => Path.Combine(Root, "repo");

    public StackBuildResult FirstBuild { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var examples = Path.Combine(RecipeDir.RepoRoot(), "examples", "stack");
        foreach (var name in new[] { "hello", "zlib" }) CopyDirectory(Path.Combine(examples, name), Path.Combine(Recipes, name));
        Directory.CreateDirectory(Path.Combine(Recipes, "sources"));
        foreach (var tarball in new[] { "hello_2.10.orig.tar.gz", "zlib_1.2.13.dfsg.orig.tar.bz2" })
        {
            File.Copy(Path.Combine(examples, "sources", tarball), Path.Combine(Recipes, "sources", tarball));
        }

        AddRecipe(Recipes, "zdep", ZdepRecipe);
        await using (var repo = await DirectoryRepository.InitAsync(Repository, "test", Platform, TimeProvider.System, null, default))
        {
            FirstBuild = await Builder(repo).BuildAsync(Options(Recipes, Repository), null, default);
        }

        Assert.True(FirstBuild.Succeeded, Describe(FirstBuild));
    }

    public Task DisposeAsync()
    {
        StackBuilder.DeleteTree(Root);
        return Task.CompletedTask;
    }

    public static StackBuilder Builder(ProductRepository repo) => new(repo, new BubblewrapSandbox(), TimeProvider.System);

    /// <summary>The key every stack build here signs its products' statements with (the CLI's is --signing-key or $CAIRN_STATE/builder.key).</summary>
    public static Cairn.Trust.KeyPair BuilderKey { get; } = Cairn.Trust.Keys.Generate(Cairn.Trust.KeyKind.Builder);

    public static StackOptions Options(string recipes, string repository) => new()
    {
        BuilderKey = BuilderKey,
        RecipesDirectory = recipes,
        BuildsDirectory = Path.Combine(repository, "builds"),
        CacheDirectory = DirectoryRepository.DefaultCacheDirectory(repository),
        DeploymentSite = "test",
        BuildSite = "test",
        DeploymentRoot = "/cvmfs/cairn.test",
        Limits = new SandboxLimits { WallTime = TimeSpan.FromMinutes(10) },
    };

    public static Task<WritableRepository> OpenAsync(string repository) =>
        DirectoryRepository.OpenAsync(repository, TimeProvider.System, null, TimeSpan.FromMinutes(1), default);

    public static string Describe(StackBuildResult result) =>
        string.Join("\n", result.Packages.Select(p => $"{p.Id}: {p.Status} {p.Code} {p.Reason} {p.LogFile}" +
            (p.LogFile is not null && File.Exists(p.LogFile) ? "\n" + File.ReadAllText(p.LogFile) : "")));

    public static string AddRecipe(string recipes, string name, string yaml)
    {
        var dir = Directory.CreateDirectory(Path.Combine(recipes, name)).FullName;
        File.WriteAllText(Path.Combine(dir, "recipe.yml"), yaml.ReplaceLineEndings("\n") + "\n");
        return dir;
    }

    /// <summary>A private copy of the built recipes and repository (without cache and failed builds).</summary>
    public StackCopy Copy()
    {
        var copy = new StackCopy(Directory.CreateTempSubdirectory("cairn-stack-copy-").FullName);
        CopyDirectory(Recipes, copy.Recipes);
        CopyDirectory(Repository, copy.Repository, skip: ["cache", "builds"]);
        return copy;
    }

    public static async Task<Catalog> CatalogAsync(ProductRepository repo) => await repo.CatalogAsync(await repo.HeadAsync(default), default);

    private static void CopyDirectory(string source, string target, string[]? skip = null)
    {
        Directory.CreateDirectory(target);
        foreach (var file in Directory.GetFiles(source))
        {
            var dest = Path.Combine(target, Path.GetFileName(file));
            File.Copy(file, dest);
            File.SetUnixFileMode(dest, File.GetUnixFileMode(file));
        }

        foreach (var dir in Directory.GetDirectories(source))
        {
            if (skip?.Contains(Path.GetFileName(dir)) == true) continue;
            CopyDirectory(dir, Path.Combine(target, Path.GetFileName(dir)));
        }
    }
}

/// <summary>One built stack for every test class that needs it (the build is the expensive part).</summary>
[CollectionDefinition(Name)]
public sealed class StackCollection : ICollectionFixture<StackFixture>
{
    public const string Name = "built stack";
}

public sealed class StackCopy(string root) : IDisposable
{
    public string Root => root;

    public string Recipes => Path.Combine(root, "recipes");

    public string Repository => Path.Combine(root, "repo");

    public void Dispose() => StackBuilder.DeleteTree(root);
}
