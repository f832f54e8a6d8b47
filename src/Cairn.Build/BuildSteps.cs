using System.Text.Json.Serialization;
using Cairn.Build.Recipes;
using Cairn.Core;
using Cairn.Sandbox;

namespace Cairn.Build;

[JsonConverter(typeof(CamelCaseEnumConverter<BuildPhase>))]
public enum BuildPhase
{
    /// <summary>Unpacks the archives (and copies other sources) into the workspace.</summary>
    Unpack,

    /// <summary>Runs the build script; the prefix is writable.</summary>
    Build,

    /// <summary>Runs the check script against the installed product; the prefix is read-only.</summary>
    Check,
}

/// <summary>Host-side places of one build. The workspace is kept from unpack through check.</summary>
/// <param name="Sources">Resolved source files (see <see cref="SourceResolver"/>), in recipe order.</param>
/// <param name="Dependencies">Every transitive dependency and where its product is materialized on the host, nearest first.</param>
public sealed record BuildPaths(
    string Workspace,
    string Prefix,
    IReadOnlyList<string> Sources,
    IReadOnlyList<(Recipe Recipe, string HostPrefix)> Dependencies)
{
    /// <summary>The CODE-RADE additions of a <c>layout: code-rade</c> recipe (<see cref="CodeRade.CodeRadeEnvironment.Prepare"/>); null otherwise.</summary>
    public CodeRade.CodeRadeEnvironment? CodeRade { get; init; }
}

/// <summary>Turns a recipe phase into a sandbox spec following the contract in docs/recipes.md.</summary>
public static class BuildSteps
{
    /// <summary>Where the recipe folder is mounted, read-only.</summary>
    public const string RecipePath = "/cairn/recipe";

    private const string UnpackScript =
        "for f in \"$@\"; do case \"$f\" in *.tar|*.tar.*|*.tgz|*.tbz2|*.txz) tar --no-same-owner -xf \"$SRC_DIR/$f\" -C \"$WORKSPACE\" ;; *) cp \"$SRC_DIR/$f\" \"$WORKSPACE/\" ;; esac; done";

    /// <summary>
    /// The phases a package runs, each in its own sandbox. Without sources there is nothing to unpack, and a
    /// sandbox that would run an empty loop costs a namespace set-up and a process start for nothing.
    /// A CODE-RADE build.sh unpacks its sources from SRC_DIR itself.
    /// </summary>
    public static IReadOnlyList<BuildPhase> PhasesFor(BuildPaths paths) =>
        paths.Sources.Count == 0 || paths.CodeRade is not null ? [BuildPhase.Build, BuildPhase.Check] : [BuildPhase.Unpack, BuildPhase.Build, BuildPhase.Check];

    public static SandboxSpec Create(
        Recipe recipe,
        BuildPhase phase,
        DeploymentLayout layout,
        BuildPaths paths,
        SandboxLimits limits,
        string? rootFileSystem = null,
        long sourceDateEpoch = SandboxContract.DefaultSourceDateEpoch)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(paths);
        var prefix = layout.PrefixOf(recipe.Name, recipe.Version);
        var deps = paths.Dependencies.Select(d => (d.Recipe.Name, Prefix: layout.PrefixOf(d.Recipe.Name, d.Recipe.Version))).ToList();
        var libraries = paths.Dependencies.ToDictionary(d => d.Recipe.Name, d => LibraryFolders.Of(d.HostPrefix), StringComparer.Ordinal);
        var env = BuildVariables.Compute(recipe, layout, deps, libraryFolders: libraries);
        var codeRade = paths.CodeRade?.Mounts(recipe, layout, paths.Dependencies, paths.Prefix);
        paths.CodeRade?.AddVariables(recipe, layout, env);

        var mounts = new List<SandboxMount> { SandboxMount.ReadOnly(Path.GetFullPath(recipe.Directory), RecipePath) };
        if (codeRade is { } before) mounts.AddRange(before.BeforeSources);
        for (var i = 0; i < paths.Sources.Count; i++)
        {
            var source = paths.Sources[i];
            var name = i < recipe.Sources.Count ? recipe.Sources[i].As ?? Path.GetFileName(source) : Path.GetFileName(source);
            mounts.Add(SandboxMount.ReadOnly(Path.GetFullPath(source), $"{BuildVariables.SourcesPath}/{name}"));
        }

        mounts.Add(SandboxMount.Writable(Path.GetFullPath(paths.Workspace), BuildVariables.WorkspacePath));
        foreach (var (dep, hostPrefix) in paths.Dependencies)
        {
            mounts.Add(SandboxMount.ReadOnly(Path.GetFullPath(hostPrefix), layout.PrefixOf(dep.Name, dep.Version)));
        }

        var hostPrefixFull = Path.GetFullPath(paths.Prefix);
        // A CODE-RADE check-build.sh runs make install: its check may write the prefix; what it leaves is published
        // only if it passes.
        mounts.Add(phase == BuildPhase.Check && codeRade is null ? SandboxMount.ReadOnly(hostPrefixFull, prefix) : SandboxMount.Writable(hostPrefixFull, prefix));
        if (codeRade is { } extra) mounts.AddRange(extra.After);

        IReadOnlyList<string> command = phase switch
        {
            BuildPhase.Unpack => ["/bin/sh", "-ec", UnpackScript, "cairn-unpack", .. paths.Sources.Select((s, i) => i < recipe.Sources.Count && recipe.Sources[i].As is { } a ? a : Path.GetFileName(s))],
            BuildPhase.Build => ScriptCommand(recipe.Build, "build"),
            _ => ScriptCommand(recipe.Check, "check"),
        };

        return new SandboxSpec
        {
            Command = command,
            RootFileSystem = rootFileSystem,
            Mounts = mounts,
            Environment = env,
            WorkingDirectory = BuildVariables.WorkspacePath,
            SourceDateEpoch = sourceDateEpoch,
            Limits = limits,
        };
    }

    /// <summary>Scripts run under bash -e, as CODE-RADE's do, whatever their executable bit.</summary>
    private static string[] ScriptCommand(RecipeScript script, string what) => script.FileName is { } file
        ? ["/bin/bash", "-e", $"{RecipePath}/{file}"]
        : ["/bin/bash", "-e", "-c", script.Inline!, $"cairn-{what}"];
}
