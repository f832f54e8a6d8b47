namespace Cairn.Build.Tests;

/// <summary>A throw-away recipes directory.</summary>
public sealed class RecipeDir : IDisposable
{
    public RecipeDir() => Root = Directory.CreateTempSubdirectory("cairn-recipes-").FullName;

    public string Root { get; }

    public string Add(string name, string yaml, params (string File, string Text)[] files)
    {
        var dir = Path.Combine(Root, name);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "recipe.yml"), yaml.ReplaceLineEndings("\n"));
        foreach (var (file, text) in files) File.WriteAllText(Path.Combine(dir, file), text);
        return dir;
    }

    /// <summary>A minimal valid recipe with inline scripts.</summary>
    public string AddSimple(string name, string version = "1.0", params string[] deps)
    {
        var d = deps.Length == 0 ? "" : "dependencies: [" + string.Join(", ", deps) + "]\n";
        return Add(name, $"name: {name}\nversion: \"{version}\"\n{d}build: |\n  make\n  make install\ncheck: |\n  make check\n");
    }

    /// <summary>
    /// The source tarballs that are not committed (gsl's, for one): CAIRN_TEST_SOURCES, else ../shared/sources beside
    /// the checkout. Fails the test, saying where it looked, when they are not there.
    /// </summary>
    public static string SharedSources()
    {
        var dir = Environment.GetEnvironmentVariable("CAIRN_TEST_SOURCES") is { Length: > 0 } env
            ? env
            : Path.GetFullPath(Path.Combine(RepoRoot(), "..", "shared", "sources"));
        Assert.True(Directory.Exists(dir), $"the shared source tarballs are not at {dir}: put them in ../shared/sources beside the checkout, or set CAIRN_TEST_SOURCES");
        return dir;
    }

    /// <summary>The checkout: above the test binaries, or (built with --artifacts-path elsewhere) above this source file.</summary>
    public static string RepoRoot([System.Runtime.CompilerServices.CallerFilePath] string sourceFile = "")
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile) })
        {
            for (var dir = start; !string.IsNullOrEmpty(dir); dir = Path.GetDirectoryName(dir))
            {
                if (File.Exists(Path.Combine(dir, "Cairn.slnx"))) return dir;
            }
        }

        throw new InvalidOperationException("cannot find the checkout (Cairn.slnx)");
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);
}
