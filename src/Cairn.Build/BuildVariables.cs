using System.Text;
using Cairn.Build.Recipes;
using Cairn.Core;
using Cairn.Sandbox;

namespace Cairn.Build;

/// <summary>The CODE-RADE variable contract of build and check scripts (docs/recipes.md).</summary>
public static class BuildVariables
{
    /// <summary>Where the sources lie inside the sandbox (read-only).</summary>
    public const string SourcesPath = "/cairn/src";

    /// <summary>The fresh, writable workspace inside the sandbox; archives are unpacked here.</summary>
    public const string WorkspacePath = "/cairn/workspace";

    private static readonly string[] Identity = ["NAME", "VERSION", "SITE", "OS", "ARCH", "SOFT_DIR", "SRC_DIR", "WORKSPACE", "REPO_DIR", "CVMFS_DIR"];

    /// <summary>"zlib" → ZLIB_DIR, "libxml2-dev" → LIBXML2_DEV_DIR.</summary>
    public static string DirVariable(string packageName)
    {
        ArgumentNullException.ThrowIfNull(packageName);
        var sb = new StringBuilder(packageName.Length + 4);
        foreach (var c in packageName)
        {
            sb.Append(char.IsAsciiLetterOrDigit(c) ? char.ToUpperInvariant(c) : '_');
        }

        return sb.Append("_DIR").ToString();
    }

    /// <summary>
    /// The variables a recipe's scripts get, on top of the sandbox's fixed ones.
    /// </summary>
    /// <param name="dependencies">All dependencies (transitive) with their deployment prefixes, nearest first:
    /// their directories come first in the search paths.</param>
    /// <param name="libraryFolders">Per dependency name, its library folders (<see cref="LibraryFolders.Of"/>: lib,
    /// and lib64 and lib/&lt;multiarch&gt; when it has them); a dependency not listed gets lib only.</param>
    public static Dictionary<string, string> Compute(
        Recipe recipe,
        DeploymentLayout layout,
        IReadOnlyList<(string Name, string Prefix)> dependencies,
        string sourcesPath = SourcesPath,
        string workspacePath = WorkspacePath,
        IReadOnlyDictionary<string, IReadOnlyList<string>>? libraryFolders = null)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(dependencies);
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["NAME"] = recipe.Name,
            ["VERSION"] = recipe.Version,
            ["SITE"] = layout.Site,
            ["OS"] = layout.Platform.Os,
            ["ARCH"] = layout.Platform.Arch,
            ["CVMFS_DIR"] = layout.CvmfsDir,
            ["REPO_DIR"] = layout.RepoDir,
            ["SOFT_DIR"] = layout.PrefixOf(recipe.Name, recipe.Version),
            ["SRC_DIR"] = sourcesPath,
            ["WORKSPACE"] = workspacePath,
        };

        foreach (var (name, prefix) in dependencies)
        {
            var variable = DirVariable(name);
            if (env.ContainsKey(variable))
            {
                throw new CairnException(ErrorCode.RecipeInvalid,
                    $"{recipe.File}: dependency '{name}' would set {variable}, which is already taken; rename the package");
            }

            env[variable] = prefix;
        }

        string Join(string suffix, string? tail = null) =>
            string.Join(':', dependencies.Select(d => $"{d.Prefix}/{suffix}").Concat(tail is null ? [] : [tail]));

        env["PATH"] = Join("bin", SandboxContract.DefaultPath);
        IReadOnlyList<string> Libs(string name) => libraryFolders?.GetValueOrDefault(name) ?? ["lib"];
        var libraryPath = string.Join(':', dependencies.SelectMany(d => Libs(d.Name).Select(l => $"{d.Prefix}/{l}")));
        env["LD_LIBRARY_PATH"] = libraryPath;
        env["LIBRARY_PATH"] = libraryPath;
        env["CPATH"] = Join("include");
        env["PKG_CONFIG_PATH"] = string.Join(':', dependencies.SelectMany(d => Libs(d.Name).Select(l => $"{d.Prefix}/{l}/pkgconfig").Append($"{d.Prefix}/share/pkgconfig")));

        var fixedNames = env.Keys.Where(k => Identity.Contains(k) || k.EndsWith("_DIR", StringComparison.Ordinal)).ToHashSet();
        foreach (var (name, value) in recipe.Environment)
        {
            if (fixedNames.Contains(name))
            {
                throw new CairnException(ErrorCode.RecipeInvalid, $"{recipe.File}: env sets {name}, which the build contract fixes");
            }

            env[name] = Expand(recipe, name, value, env);
        }

        return env;
    }

    /// <summary>Replaces ${VAR} with a contract variable (or an earlier env entry); $$ is a literal $.</summary>
    internal static string Expand(Recipe recipe, string name, string value, IReadOnlyDictionary<string, string> known)
    {
        var parts = VariableReferences.Split(value, known.ContainsKey, (variable, unclosed) =>
            new CairnException(ErrorCode.RecipeVariableUnknown,
                $"{recipe.File}: env {name} uses ${{{variable}}}{(unclosed ? " without a closing }" : "")}, which is not a build variable",
                "known here: " + string.Join(", ", known.Keys.Order(StringComparer.Ordinal))));
        return string.Concat(parts.Select(part => part.IsVariable ? known[part.Text] : part.Text));
    }
}
