using Cairn.Core;

namespace Cairn.Build.Recipes;

/// <summary>A place in a recipe file, for messages: "recipes/zlib/recipe.yml:4:3".</summary>
public readonly record struct SourceLocation(string File, long Line, long Column)
{
    public override string ToString() => $"{File}:{Line}:{Column}";
}

/// <summary>One package's recipe: a folder holding recipe.yml and its scripts. See docs/recipes.md.</summary>
public sealed record Recipe
{
    public required string Name { get; init; }

    public required string Version { get; init; }

    public string? Description { get; init; }

    /// <summary>The recipe folder; every file in it goes into the build key.</summary>
    public required string Directory { get; init; }

    /// <summary>Path of recipe.yml.</summary>
    public required string File { get; init; }

    public IReadOnlyList<RecipeSource> Sources { get; init; } = [];

    public IReadOnlyList<RecipeDependency> Dependencies { get; init; } = [];

    public required RecipeScript Build { get; init; }

    public required RecipeScript Check { get; init; }

    /// <summary>Extra variables for both scripts; values may use ${VAR} of the variable contract.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>Product reference of a root file system to build in; null: the host's /usr.</summary>
    public string? BuildEnvironment { get; init; }

    public ModuleSettings Modules { get; init; } = ModuleSettings.Empty;

    /// <summary>How the scripts expect to be run: Cairn's contract, or CODE-RADE's (docs/recipes.md, "Coming from CODE-RADE").</summary>
    public RecipeLayout Layout { get; init; } = RecipeLayout.Cairn;

    /// <summary>
    /// CODE-RADE layout: module names the scripts load (<c>module add cmake</c>) for tools the build environment
    /// already provides; each gets an empty modulefile so that loading it succeeds.
    /// </summary>
    public IReadOnlyList<string> HostModules { get; init; } = [];

    /// <summary>"name/version".</summary>
    public string Id => $"{Name}/{Version}";

    public override string ToString() => Id;
}

/// <summary>How a recipe's scripts are run (recipe.yml <c>layout:</c>).</summary>
public enum RecipeLayout
{
    /// <summary>Cairn's contract: sources unpacked for the script, the check sees a read-only prefix.</summary>
    Cairn,

    /// <summary>
    /// A CODE-RADE <c>*-deploy</c> repository as it is: the scripts unpack their sources from SRC_DIR, the check
    /// installs into the prefix, and <c>module</c> (with ci, deploy, gcc and the dependencies' modules) works.
    /// </summary>
    CodeRade,
}

/// <summary>A source archive or file: found by <see cref="FileName"/> in the source directories, checked by digest.</summary>
/// <param name="As">The file name the scripts see in SRC_DIR (CODE-RADE's ${NAME}-${VERSION}.tar.gz); null: <see cref="FileName"/>.</param>
public sealed record RecipeSource(string? Path, Uri? Url, Digest Sha256, SourceLocation Location, string? As = null)
{
    /// <summary>The name looked up in source directories: the path, or the last segment of the URL.</summary>
    public string FileName => Path ?? System.IO.Path.GetFileName(Url!.AbsolutePath);

    /// <summary>The name the file has in SRC_DIR inside the sandbox.</summary>
    public string NameInSandbox => As ?? FileName;
}

/// <summary>A dependency by name, optionally pinned to one version.</summary>
public sealed record RecipeDependency(string Name, string? Version, SourceLocation Location)
{
    public override string ToString() => Version is null ? Name : $"{Name}/{Version}";
}

/// <summary>A script: a file in the recipe folder, or inline text.</summary>
public sealed record RecipeScript(string? FileName, string? Inline)
{
    public static RecipeScript FromFile(string fileName) => new(fileName, null);

    public static RecipeScript FromText(string text) => new(null, text);

    /// <summary>The script text: the inline text, or the file read from the recipe folder.</summary>
    public string ReadText(Recipe recipe)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        return Inline ?? System.IO.File.ReadAllText(System.IO.Path.Combine(recipe.Directory, FileName!));
    }
}

/// <summary>Additions to the generated modulefiles beyond the standard paths.</summary>
public sealed record ModuleSettings(
    IReadOnlyDictionary<string, IReadOnlyList<string>> Paths,
    IReadOnlyDictionary<string, string> Variables)
{
    public static ModuleSettings Empty { get; } = new(new Dictionary<string, IReadOnlyList<string>>(), new Dictionary<string, string>());
}
