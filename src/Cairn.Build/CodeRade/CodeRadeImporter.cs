using System.Text;
using System.Text.RegularExpressions;
using Cairn.Build.Recipes;
using Cairn.Core;

namespace Cairn.Build.CodeRade;

/// <summary>What <see cref="CodeRadeImporter.Import"/> was asked: a *-deploy checkout and what the user adds.</summary>
/// <param name="Directory">The checkout; recipe.yml is written here, and its parent is taken as the recipes directory.</param>
/// <param name="Name">NAME, when the Jenkinsfile has none (or a wrong one).</param>
/// <param name="Version">VERSION, likewise.</param>
/// <param name="Sources">Source files to use: each becomes a source with its sha256, named in SRC_DIR as the script expects.</param>
/// <param name="Force">Replace an existing recipe.yml.</param>
public sealed record CodeRadeImportRequest(string Directory, string? Name = null, string? Version = null, IReadOnlyList<string>? Sources = null, bool Force = false);

/// <summary>The written recipe.yml and what could not be mapped.</summary>
public sealed record CodeRadeImportResult(string RecipeFile, string Yaml, IReadOnlyList<string> Mapped, IReadOnlyList<string> NotMapped);

/// <summary>
/// <c>cairn recipe import DIR</c>: a recipe.yml with <c>layout: code-rade</c> for a CODE-RADE <c>*-deploy</c>
/// checkout, from its Jenkinsfile's <c>environment</c> block (NAME, VERSION) and scripts (build.sh,
/// check-build.sh; <c>module add</c> lines become dependencies or host modules; the modulefile the check writes
/// gives extra modulefile variables; SOURCE_FILE and wget lines say which source it wants). See docs/recipes.md.
/// </summary>
public static partial class CodeRadeImporter
{
    private static readonly string[] ContextModules = ["ci", "deploy"];

    public static CodeRadeImportResult Import(CodeRadeImportRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var dir = Path.GetFullPath(request.Directory);
        if (!System.IO.Directory.Exists(dir))
        {
            throw new CairnException(ErrorCode.RecipeImportIncomplete, $"{request.Directory}: no such directory", "give the checkout of a CODE-RADE *-deploy repository");
        }

        var notes = new ImportNotes();
        var (name, version) = ReadIdentity(request, dir, notes);
        var (build, check) = FindScripts(dir, notes);
        var buildText = File.ReadAllText(Path.Combine(dir, build));
        var checkText = File.ReadAllText(Path.Combine(dir, check));
        var recipesDir = Path.GetDirectoryName(dir)!;
        var (dependencies, hostModules) = ReadModules(buildText + "\n" + checkText, name, version, recipesDir, notes);
        var variables = ReadVariables(checkText, name, notes);
        var (sources, url) = ReadSources(request, buildText, name, version, recipesDir, notes);

        var yaml = new StringBuilder();
        yaml.Append("# Imported from a CODE-RADE *-deploy repository by cairn recipe import; see docs/recipes.md, \"Coming from CODE-RADE\".\n");
        yaml.Append($"name: {name}\nversion: \"{version}\"\nlayout: {RecipeParser.CodeRadeLayout}\n");
        if (sources.Count > 0)
        {
            yaml.Append("sources:\n");
            foreach (var (path, asName, sha) in sources)
            {
                yaml.Append($"  - path: {path}\n");
                if (asName != path) yaml.Append($"    as: {asName}\n");
                if (url is not null) yaml.Append($"    url: {url}\n");
                yaml.Append($"    sha256: {sha}\n");
            }
        }

        if (dependencies.Count > 0) yaml.Append($"dependencies: [{string.Join(", ", dependencies)}]\n");
        if (hostModules.Count > 0) yaml.Append($"host-modules: [{string.Join(", ", hostModules)}]\n");
        yaml.Append($"build: {build}\ncheck: {check}\n");
        if (variables.Count > 0)
        {
            yaml.Append("modules:\n  variables:\n");
            foreach (var (k, v) in variables) yaml.Append($"    {k}: \"{v}\"\n");
        }

        var target = Path.Combine(dir, RecipeParser.FileName);
        var text = yaml.ToString();
        WriteRecipe(target, text, dir, request.Force);
        return new CodeRadeImportResult(target, text, notes.Mapped, notes.NotMapped);
    }

    /// <summary>What the import carried over into the recipe, and what it did not (with why), for the user to read.</summary>
    private sealed class ImportNotes
    {
        public List<string> Mapped { get; } = [];

        public List<string> NotMapped { get; } = [];
    }

    /// <summary>NAME and VERSION: given, or from the Jenkinsfile's environment block.</summary>
    private static (string Name, string Version) ReadIdentity(CodeRadeImportRequest request, string dir, ImportNotes notes)
    {
        var jenkins = ReadJenkinsEnvironment(Path.Combine(dir, "Jenkinsfile"));
        var name = Pick("NAME", request.Name, jenkins, notes.Mapped, notes.NotMapped);
        var version = Pick("VERSION", request.Version, jenkins, notes.Mapped, notes.NotMapped);
        if (name is null || version is null)
        {
            throw new CairnException(ErrorCode.RecipeImportIncomplete,
                $"{dir}: {(File.Exists(Path.Combine(dir, "Jenkinsfile")) ? "the Jenkinsfile's environment block does not set" : "there is no Jenkinsfile to read")} {(name is null ? "NAME" : "")}{(name is null && version is null ? " and " : "")}{(version is null ? "VERSION" : "")}",
                "give them: cairn recipe import DIR --name NAME --version VERSION (the values Jenkins set for the job)");
        }

        if (!RecipeParser.NamePattern().IsMatch(name)) throw new CairnException(ErrorCode.RecipeImportIncomplete, $"NAME '{name}' is not a package name (letters, digits, . _ + -)");
        foreach (var (k, v) in jenkins.Where(kv => kv.Key is not ("NAME" or "VERSION")))
        {
            notes.NotMapped.Add($"Jenkinsfile sets {k}={v}: not used; cairn sets {k} itself (docs/recipes.md, the variable contract)");
        }

        return (name, version);
    }

    /// <summary>build.sh and check-build.sh become the recipe's scripts; deploy.sh and other scripts are not run.</summary>
    private static (string Build, string Check) FindScripts(string dir, ImportNotes notes)
    {
        string? Script(string file, string role)
        {
            if (File.Exists(Path.Combine(dir, file)))
            {
                notes.Mapped.Add($"{file} → {role}");
                return file;
            }

            return null;
        }

        var build = Script("build.sh", "build");
        var check = Script("check-build.sh", "check");
        if (build is null || check is null)
        {
            throw new CairnException(ErrorCode.RecipeImportIncomplete,
                $"{dir}: {(build is null ? "build.sh" : "check-build.sh")} is missing; a *-deploy repository has build.sh and check-build.sh",
                "write the missing script, or write recipe.yml by hand (docs/recipes.md)");
        }

        if (File.Exists(Path.Combine(dir, "deploy.sh")))
        {
            notes.NotMapped.Add("deploy.sh: not run; cairn builds for the deployment path in build.sh and publishes the prefix the check tested (docs/recipes.md, \"Coming from CODE-RADE\")");
        }

        foreach (var other in System.IO.Directory.GetFiles(dir, "*.sh").Select(Path.GetFileName).Order(StringComparer.Ordinal))
        {
            if (other is not ("build.sh" or "check-build.sh" or "deploy.sh")) notes.NotMapped.Add($"{other}: not a build or check script; it stays in the recipe folder (and WORKSPACE) for the scripts to use");
        }

        return (build, check);
    }

    private static string Expand(string text, string name, string version) =>
        text.Replace("${NAME}", name, StringComparison.Ordinal).Replace("$NAME", name, StringComparison.Ordinal)
            .Replace("${VERSION}", version, StringComparison.Ordinal).Replace("$VERSION", version, StringComparison.Ordinal);

    /// <summary>Modules the scripts load: the recipes beside this one are dependencies; the rest, tools of the environment.</summary>
    private static (List<string> Dependencies, List<string> HostModules) ReadModules(string scripts, string name, string version, string recipesDir, ImportNotes notes)
    {
        var dependencies = new List<string>();
        var hostModules = new List<string>();
        foreach (Match m in ModuleLoad().Matches(scripts))
        {
            var module = Expand(m.Groups[1].Value, name, version);
            var moduleName = module.Split('/')[0];
            if (ContextModules.Contains(moduleName) || moduleName == name || moduleName.Contains('$', StringComparison.Ordinal)) continue;
            if (moduleName == "gcc")
            {
                if (!notes.Mapped.Any(l => l.StartsWith("module gcc", StringComparison.Ordinal))) notes.Mapped.Add("module gcc/$GCC_VERSION → the build environment's gcc (generated module)");
                continue;
            }

            if (dependencies.Contains(moduleName) || hostModules.Contains(module)) continue;
            if (File.Exists(Path.Combine(recipesDir, moduleName, RecipeParser.FileName)))
            {
                dependencies.Add(moduleName);
                notes.Mapped.Add($"module add {module} → dependency {moduleName} (its generated modulefile is on MODULEPATH)");
            }
            else
            {
                hostModules.Add(module);
                notes.NotMapped.Add($"module add {module}: no recipe '{moduleName}' in {recipesDir}; listed under host-modules (an empty module: the build environment must provide it). Import or write that recipe and make it a dependency if cairn should build it");
            }
        }

        return (dependencies, hostModules);
    }

    /// <summary>Variables the check's own modulefile sets that cairn's generated one would not (BZLIB_DIR for bzip2).</summary>
    private static SortedDictionary<string, string> ReadVariables(string checkText, string name, ImportNotes notes)
    {
        var variables = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (Match m in SetEnv().Matches(checkText))
        {
            var variable = m.Groups[1].Value;
            var value = m.Groups[2].Value.Trim();
            if (variable == BuildVariables.DirVariable(name)) continue;
            if (variable.EndsWith("_DIR", StringComparison.Ordinal) && value.Contains("$NAME/$VERSION", StringComparison.Ordinal)) variables[variable] = "${SOFT_DIR}";
            else if (value is "$VERSION" or "${VERSION}") variables[variable] = "${VERSION}";
            else notes.NotMapped.Add($"check-build.sh's modulefile sets {variable} {value}: not carried over; add it under modules: variables: if the published modulefile needs it");
        }

        foreach (var (k, v) in variables) notes.Mapped.Add($"modulefile setenv {k} → modules: variables: {k}: {v}");
        return variables;
    }

    /// <summary>
    /// The given source files, named as the script wants them (SOURCE_FILE=…), and the URL it would download from
    /// when that names this version (null otherwise).
    /// </summary>
    private static (List<(string Path, string As, Digest Sha)> Sources, string? Url) ReadSources(CodeRadeImportRequest request, string buildText, string name, string version,
        string recipesDir, ImportNotes notes)
    {
        var wanted = SourceFile().Match(buildText) is { Success: true } sf ? Expand(sf.Groups[1].Value.Trim('"', '\''), name, version) : null;
        var url = Wget().Match(buildText) is { Success: true } w ? Expand(w.Groups[1].Value.Trim('"', '\''), name, version).Replace("${SOURCE_FILE}", wanted, StringComparison.Ordinal) : null;
        var sources = new List<(string Path, string As, Digest Sha)>();
        foreach (var file in request.Sources ?? [])
        {
            if (!File.Exists(file)) throw new CairnException(ErrorCode.RecipeImportIncomplete, $"--source {file}: no such file");
            var asName = wanted ?? Path.GetFileName(file);
            sources.Add((Path.GetFileName(file), asName, BuildKey.HashFile(file)));
            notes.Mapped.Add($"--source {Path.GetFileName(file)} → $SRC_DIR/{asName}; copy it into {Path.Combine(recipesDir, "sources")} or pass --sources to cairn build");
        }

        // A URL is only a hint for whoever fetches the file (CAIRN-E0607): one for another version would mislead.
        var useUrl = url is not null && Uri.TryCreate(url, UriKind.Absolute, out _) && url.Contains(version, StringComparison.Ordinal);
        if (url is not null && !useUrl && sources.Count > 0)
        {
            notes.NotMapped.Add($"build.sh downloads {url}, which does not name version {version}: not recorded as the source's url");
        }

        if (sources.Count == 0 && wanted is not null)
        {
            notes.NotMapped.Add($"build.sh wants $SRC_DIR/{wanted}{(url is null ? "" : $" (it would download {url})")}: no source given; run import again with --source FILE, or add sources: [{{path: FILE, as: {wanted}, sha256: …}}]");
        }

        return (sources, useUrl ? url : null);
    }

    /// <summary>Parses the recipe before writing it: an import that would not load is not written.</summary>
    private static void WriteRecipe(string target, string text, string dir, bool force)
    {
        if (File.Exists(target) && !force)
        {
            throw new CairnException(ErrorCode.RecipeImportIncomplete, $"{target} exists already", "pass --force to replace it");
        }

        var scratch = target + ".tmp";
        File.WriteAllText(scratch, text);
        try
        {
            RecipeParser.Parse(text, target, dir);
            File.Move(scratch, target, overwrite: true);
        }
        finally
        {
            File.Delete(scratch);
        }
    }

    private static string? Pick(string key, string? given, IReadOnlyDictionary<string, string> jenkins, List<string> mapped, List<string> notMapped)
    {
        var found = jenkins.GetValueOrDefault(key);
        if (given is not null)
        {
            if (found is not null && found != given) notMapped.Add($"Jenkinsfile sets {key}={found}; --{key.ToLowerInvariant()} {given} is used instead");
            else mapped.Add($"{key}={given} (given)");
            return given;
        }

        if (found is not null) mapped.Add($"Jenkinsfile environment {key}={found} → {key.ToLowerInvariant()}");
        return found;
    }

    /// <summary>KEY = 'value' lines of the Jenkinsfile's environment { } block.</summary>
    public static Dictionary<string, string> ReadJenkinsEnvironment(string jenkinsfile)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!File.Exists(jenkinsfile)) return result;
        var text = File.ReadAllText(jenkinsfile);
        var block = EnvironmentBlock().Match(text);
        if (!block.Success) return result;
        foreach (Match m in Assignment().Matches(block.Groups[1].Value)) result[m.Groups[1].Value] = m.Groups[2].Value;
        return result;
    }

    [GeneratedRegex(@"environment\s*\{([^}]*)\}")]
    private static partial Regex EnvironmentBlock();

    [GeneratedRegex(@"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*['""]([^'""]*)['""]", RegexOptions.Multiline)]
    private static partial Regex Assignment();

    [GeneratedRegex(@"^\s*module\s+(?:add|load)\s+([^\s#;]+)", RegexOptions.Multiline)]
    private static partial Regex ModuleLoad();

    [GeneratedRegex(@"^\s*setenv\s+([A-Za-z_][A-Za-z0-9_]*)\s+(.+)$", RegexOptions.Multiline)]
    private static partial Regex SetEnv();

    [GeneratedRegex(@"^\s*SOURCE_FILE=(\S+)", RegexOptions.Multiline)]
    private static partial Regex SourceFile();

    [GeneratedRegex(@"^\s*wget\s+(?:-\S+\s+)*(\S+)", RegexOptions.Multiline)]
    private static partial Regex Wget();
}
