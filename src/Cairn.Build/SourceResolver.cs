using Cairn.Build.Recipes;
using Cairn.Core;

namespace Cairn.Build;

/// <summary>
/// Finds a recipe's sources in source directories (CODE-RADE's SRC_DIR): by file name, then through a
/// SHA256SUMS file by digest; whatever is found must match the recipe's sha256.
/// </summary>
public sealed class SourceResolver
{
    private readonly IReadOnlyList<string> _directories;

    public SourceResolver(IReadOnlyList<string> directories)
    {
        ArgumentNullException.ThrowIfNull(directories);
        _directories = directories;
    }

    /// <summary>The default: a sources/ folder inside the recipes directory (it has no recipe.yml).</summary>
    public static string DefaultDirectory(string recipesDirectory) => Path.Combine(recipesDirectory, "sources");

    public IReadOnlyList<string> Directories => _directories;

    /// <summary>The verified host path of <paramref name="source"/>.</summary>
    public string Resolve(Recipe recipe, RecipeSource source)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(source);
        string? mismatch = null;
        foreach (var dir in _directories)
        {
            foreach (var candidate in Candidates(dir, source))
            {
                if (!File.Exists(candidate)) continue;
                var actual = BuildKey.HashFile(candidate);
                if (actual == source.Sha256) return candidate;
                mismatch ??= $"{candidate} has sha256 {actual}";
            }
        }

        if (mismatch is not null)
        {
            throw new CairnException(ErrorCode.SourceDigestMismatch,
                $"{source.Location}: {recipe.Name} expects {source.FileName} with sha256 {source.Sha256}, but {mismatch}",
                "fix the sha256 in the recipe, or replace the file with the right one");
        }

        var where = _directories.Count == 0 ? "(no source directories given)" : string.Join(", ", _directories);
        throw new CairnException(ErrorCode.RecipeSourceMissing,
            $"{source.Location}: {recipe.Name} needs {source.FileName} (sha256 {source.Sha256}), which is in none of: {where}",
            source.Url is null ? "put the file in a source directory (--sources DIR)"
                               : $"download {source.Url} into a source directory (--sources DIR); builds never download");
    }

    private static IEnumerable<string> Candidates(string dir, RecipeSource source)
    {
        yield return Path.Combine(dir, source.FileName);
        var sums = Path.Combine(dir, "SHA256SUMS");
        if (!File.Exists(sums)) yield break;
        var digest = source.Sha256.ToString();
        foreach (var line in File.ReadLines(sums))
        {
            // "<hex>  <name>" or "<hex> *<name>" (binary mode), as sha256sum writes them.
            if (line.Length > 66 && line.StartsWith(digest, StringComparison.Ordinal) && line[64] == ' ')
            {
                var name = line[66..];
                if (!name.Contains('/', StringComparison.Ordinal) && name != source.FileName) yield return Path.Combine(dir, name);
            }
        }
    }
}
