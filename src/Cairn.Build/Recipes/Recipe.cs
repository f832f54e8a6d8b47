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

    /// <summary>"name/version".</summary>
    public string Id => $"{Name}/{Version}";

    public override string ToString() => Id;
}

/// <summary>A source archive or file: found by <see cref="FileName"/> in the source directories, checked by digest.</summary>
public sealed record RecipeSource(string? Path, Uri? Url, Digest Sha256, SourceLocation Location)
{
    /// <summary>The name looked up in source directories: the path, or the last segment of the URL.</summary>
    public string FileName => Path ?? System.IO.Path.GetFileName(Url!.AbsolutePath);
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
