using System.Text;
using System.Text.RegularExpressions;
using Cairn.Build.Recipes;
using Cairn.Core;
using Cairn.Sandbox;

namespace Cairn.Build.CodeRade;

/// <summary>
/// What a <c>layout: code-rade</c> recipe's sandbox adds to Cairn's contract, so that a CODE-RADE <c>*-deploy</c>
/// repository's build.sh and check-build.sh run as they are (docs/recipes.md, "Coming from CODE-RADE"):
/// environment-modules' <c>/etc/profile.d/modules.sh</c>; modules <c>ci</c>, <c>deploy</c>, <c>gcc/$GCC_VERSION</c>,
/// the recipe's host modules and every dependency's generated modulefile on MODULEPATH; a writable directory on
/// MODULEPATH for the modulefiles the scripts write (<c>$LIBRARIES_MODULES</c>, <c>$COMPILERS_MODULES</c>); a writable
/// SRC_DIR holding the sources read-only under the names the scripts expect; <c>wget</c>/<c>curl</c> that refuse with
/// a message naming the wanted file; the recipe folder copied into WORKSPACE (a Jenkins checkout); and every
/// product also at CODE-RADE's CI path <c>/data/ci-build/SITE/OS/ARCH/NAME/VERSION</c>, read-only, for the
/// modulefiles check-build.sh writes with that path.
/// </summary>
public sealed partial class CodeRadeEnvironment
{
    /// <summary>Generated modulefiles (ci, deploy, gcc, host modules; dependencies under deps/), read-only.</summary>
    public const string ModulesPath = "/cairn/modules";

    /// <summary>Where the scripts' own modulefiles go ($MODULES; $LIBRARIES_MODULES is its libraries/), writable.</summary>
    public const string WrittenModulesPath = "/cairn/modules-written";

    /// <summary>The wget and curl that refuse to download, first on PATH.</summary>
    public const string ShimsPath = "/cairn/bin";

    /// <summary>CODE-RADE's CI build area: the path check-build.sh modulefiles hard-code for the tested product.</summary>
    public const string CiBuildRoot = "/data/ci-build";

    /// <summary>What the refusing wget/curl print first; <see cref="BuildFailureHints"/> looks for it in the log.</summary>
    public const string DownloadRefusedMarker = "cairn: refused download:";

    /// <summary>Cairn builds each build key once: a fixed Jenkins build number keeps paths like build-${BUILD_NUMBER} reproducible.</summary>
    public const string BuildNumber = "1";

    private const string HostModulesFile = "/etc/profile.d/modules.sh";

    // The contract's variables that CODE-RADE's ci and deploy modules set too.
    private static readonly string[] ContractVariables = ["SITE", "OS", "ARCH", "CVMFS_DIR", "REPO_DIR", "SOFT_DIR", "SRC_DIR", "WORKSPACE"];

    // The host files environment-modules (and Lmod, when installed) need besides /usr, bound read-only when present.
    private static readonly string[] HostModuleFiles = [HostModulesFile, "/etc/environment-modules", "/etc/profile.d/lmod.sh", "/etc/lmod"];

    // True when the sandbox uses the host's /usr and /etc: the host's modules init files are bound in. A chosen
    // root file system brings its own /etc.
    private readonly bool _hostRootFileSystem;

    private CodeRadeEnvironment(string hostRoot, string? gccVersion, bool hostRootFileSystem)
    {
        HostRoot = hostRoot;
        GccVersion = gccVersion;
        _hostRootFileSystem = hostRootFileSystem;
    }

    /// <summary>The host directory holding modules/, modules-written/, bin/ and src/.</summary>
    public string HostRoot { get; }

    /// <summary>The build environment's gcc version (e.g. 12), or null when it has no gcc.</summary>
    public string? GccVersion { get; }

    /// <summary>Host directory of the modulefiles the scripts wrote (kept with the build record).</summary>
    public string WrittenModules => Path.Combine(HostRoot, "modules-written");

    /// <summary>
    /// Lays out the host side under <paramref name="work"/>/code-rade and copies the recipe folder into the workspace.
    /// Throws <see cref="ErrorCode.ModulesUnavailable"/> when the build environment has no environment-modules.
    /// </summary>
    /// <param name="dependencies">Every transitive dependency and its product on the host.</param>
    /// <param name="directDependencies">A dependency's direct dependencies (its modulefile loads them).</param>
    public static CodeRadeEnvironment Prepare(
        string work,
        string workspace,
        Recipe recipe,
        DeploymentLayout layout,
        IReadOnlyList<(Recipe Recipe, string HostPrefix)> dependencies,
        Func<Recipe, IReadOnlyList<Recipe>> directDependencies,
        string? rootFileSystem)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(dependencies);
        ArgumentNullException.ThrowIfNull(directDependencies);
        var root = rootFileSystem ?? "/";
        if (!File.Exists(Path.Combine(root, HostModulesFile.TrimStart('/'))))
        {
            throw new CairnException(ErrorCode.ModulesUnavailable,
                $"{recipe.File}: layout: {RecipeParser.CodeRadeLayout} runs scripts that source {HostModulesFile}, which the build environment ({(rootFileSystem is null ? "this host" : recipe.BuildEnvironment)}) does not have",
                rootFileSystem is null ? "install environment-modules (apt-get install environment-modules; scripts/install-deps.sh)" : "make the build environment with environment-modules (scripts/make-rootfs.sh --include environment-modules,…)");
        }

        var env = new CodeRadeEnvironment(Directory.CreateDirectory(Path.Combine(work, "code-rade")).FullName, DetectGccVersion(root), rootFileSystem is null);
        var modules = Directory.CreateDirectory(Path.Combine(env.HostRoot, "modules")).FullName;
        var baseDir = Directory.CreateDirectory(Path.Combine(modules, "base")).FullName;
        var deps = Directory.CreateDirectory(Path.Combine(modules, "deps")).FullName;
        Directory.CreateDirectory(Path.Combine(env.WrittenModules, "libraries"));
        Directory.CreateDirectory(Path.Combine(env.WrittenModules, "compilers"));
        Directory.CreateDirectory(Path.Combine(env.HostRoot, "src"));

        var variables = env.ModuleVariables(recipe, layout);
        WriteModule(baseDir, "ci", ContextModule("ci", "the CI build of", variables));
        WriteModule(baseDir, "deploy", ContextModule("deploy", "the deployment of", variables));
        if (env.GccVersion is { } gcc)
        {
            WriteModule(baseDir, $"gcc/{gcc}",
                "#%Module1.0\n" +
                $"## gcc/{gcc}: the build environment's compiler (/usr/bin/gcc), generated by cairn build for CODE-RADE scripts\n" +
                $"module-whatis \"gcc {gcc} of the build environment\"\n" +
                $"setenv GCC_VERSION {gcc}\nsetenv GCC_DIR /usr\n");
        }

        foreach (var name in recipe.HostModules)
        {
            WriteModule(baseDir, name,
                "#%Module1.0\n" +
                $"## {name}: provided by the build environment (recipe.yml host-modules); loading it changes nothing\n" +
                $"module-whatis \"{name} of the build environment\"\n");
        }

        foreach (var (dep, hostPrefix) in dependencies)
        {
            var text = ModuleFile.Generate(dep, $"{layout.Platform.Os}/{layout.Platform.Arch}", hostPrefix, directDependencies(dep), null,
                fixedPrefix: layout.PrefixOf(dep.Name, dep.Version));
            WriteModule(deps, dep.Id, text);
        }

        var bin = Directory.CreateDirectory(Path.Combine(env.HostRoot, "bin")).FullName;
        WriteShim(bin, "wget", "-O", "--output-document");
        WriteShim(bin, "curl", "-o", "--output");

        CopyCheckout(recipe.Directory, workspace);
        return env;
    }

    /// <summary>The CODE-RADE variables the ci and deploy modules set, and the scripts get from the start too.</summary>
    private Dictionary<string, string> ModuleVariables(Recipe recipe, DeploymentLayout layout)
    {
        var libraries = $"{WrittenModulesPath}/libraries";
        var compilers = $"{WrittenModulesPath}/compilers";

        // The contract's own values, so that ci and deploy can never disagree with what the scripts start with.
        var contract = BuildVariables.Compute(recipe with { Environment = new Dictionary<string, string>() }, layout, []);
        var v = ContractVariables.ToDictionary(k => k, k => contract[k], StringComparer.Ordinal);
        v["MODULES"] = WrittenModulesPath;
        v["LIBRARIES_MODULES"] = v["LIBRARIES"] = libraries;
        v["COMPILERS_MODULES"] = v["COMPILERS"] = compilers;
        v["BUILD_NUMBER"] = BuildNumber;
        if (GccVersion is { } gcc) v["GCC_VERSION"] = gcc;
        return v;
    }

    /// <summary>Variables added to Cairn's contract for the scripts (<paramref name="contract"/> is changed in place).</summary>
    public void AddVariables(Recipe recipe, DeploymentLayout layout, IDictionary<string, string> contract)
    {
        ArgumentNullException.ThrowIfNull(contract);
        foreach (var (k, v) in ModuleVariables(recipe, layout)) contract[k] = v;
        contract["MODULEPATH"] = string.Join(':', $"{WrittenModulesPath}/libraries", $"{WrittenModulesPath}/compilers", $"{ModulesPath}/deps", $"{ModulesPath}/base");
        contract["PATH"] = ShimsPath + ":" + (contract.TryGetValue("PATH", out var path) ? path : SandboxContract.DefaultPath);

        // The scripts run tar as they did as Jenkins' unprivileged user; as uid 0 here GNU tar would try to give
        // the files the archive's owners, whom the sandbox's user namespace does not map, and fail.
        contract["TAR_OPTIONS"] = "--no-same-owner";
    }

    /// <summary>
    /// Mounts that go before the sources (a writable SRC_DIR the read-only source files are bound into), and the
    /// rest (modules, shims, the host's modules init, the CI-path aliases of the products).
    /// </summary>
    public (IReadOnlyList<SandboxMount> BeforeSources, IReadOnlyList<SandboxMount> After) Mounts(
        Recipe recipe, DeploymentLayout layout, IReadOnlyList<(Recipe Recipe, string HostPrefix)> dependencies, string hostPrefix)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(dependencies);
        var after = new List<SandboxMount>();
        if (_hostRootFileSystem)
        {
            foreach (var file in HostModuleFiles.Where(Path.Exists)) after.Add(SandboxMount.ReadOnly(file, file));
        }

        after.Add(SandboxMount.ReadOnly(Path.Combine(HostRoot, "modules"), ModulesPath));
        after.Add(SandboxMount.Writable(WrittenModules, WrittenModulesPath));
        after.Add(SandboxMount.ReadOnly(Path.Combine(HostRoot, "bin"), ShimsPath));
        var ci = new DeploymentLayout(CiBuildRoot, layout.Site, layout.Platform);
        if (ci.RepoDir != layout.RepoDir)
        {
            foreach (var (dep, depPrefix) in dependencies)
            {
                after.Add(SandboxMount.ReadOnly(Path.GetFullPath(depPrefix), ci.PrefixOf(dep.Name, dep.Version)));
            }

            after.Add(SandboxMount.ReadOnly(Path.GetFullPath(hostPrefix), ci.PrefixOf(recipe.Name, recipe.Version)));
        }

        return ([SandboxMount.Writable(Path.Combine(HostRoot, "src"), BuildVariables.SourcesPath)], after);
    }

    /// <summary>The modulefiles the scripts wrote, relative to $MODULES (e.g. libraries/gsl/2.7.1).</summary>
    public IReadOnlyList<string> WrittenModulefiles() =>
        !Directory.Exists(WrittenModules) ? [] :
        [.. Directory.EnumerateFiles(WrittenModules, "*", SearchOption.AllDirectories)
            .Where(f => new FileInfo(f).LinkTarget is null)
            .Select(f => Path.GetRelativePath(WrittenModules, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)];

    /// <summary>Where a script-written modulefile is kept in the repository tree: beside the build log.</summary>
    public static string KeptPathInTree(string platform, string name, string version, string relative) =>
        $"{StackBuilder.LogsDirectory}/{platform}/{name}/{version}/script-modules/{relative}";

    /// <summary>
    /// Lines for the build log comparing each script-written modulefile with Cairn's generated one: the variables
    /// the script's sets or prepends that Cairn's does not, and how to carry them over (modules: in recipe.yml).
    /// </summary>
    public IReadOnlyList<string> Compare(string generatedModulefile)
    {
        ArgumentNullException.ThrowIfNull(generatedModulefile);
        var ours = Touched(generatedModulefile);
        var lines = new List<string>();
        foreach (var relative in WrittenModulefiles())
        {
            var text = File.ReadAllText(Path.Combine(WrittenModules, relative));
            var theirs = Touched(text);
            var missing = theirs.Where(t => !ours.Contains(t)).ToList();
            lines.Add(missing.Count == 0
                ? $"script-written modulefile $MODULES/{relative}: every variable it sets or prepends to is also in cairn's modulefile"
                : $"script-written modulefile $MODULES/{relative} also sets {string.Join(", ", missing)}, which cairn's modulefile does not; to publish them, add them to recipe.yml 'modules: variables:' or 'modules: paths:'");
        }

        return lines;
    }

    private static SortedSet<string> Touched(string modulefile)
    {
        var set = new SortedSet<string>(StringComparer.Ordinal);
        foreach (Match m in ModulefileCommand().Matches(modulefile)) set.Add(m.Groups[2].Value);
        return set;
    }

    [GeneratedRegex(@"^\s*(setenv|prepend-path|append-path)\s+(?:-d\s+\S+\s+)?([A-Za-z_][A-Za-z0-9_]*)", RegexOptions.Multiline)]
    private static partial Regex ModulefileCommand();

    private static string ContextModule(string name, string what, IReadOnlyDictionary<string, string> variables)
    {
        var sb = new StringBuilder("#%Module1.0\n");
        sb.Append($"## {name}: the CODE-RADE variables for {what} this package, generated by cairn build.\n");
        sb.Append("## Cairn builds for the deployment path directly, so ci and deploy set the same values.\n");
        sb.Append($"module-whatis \"CODE-RADE {name} environment (cairn)\"\n");
        foreach (var (k, v) in variables.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            sb.Append($"setenv {k} \"{TclEscape(v)}\"\n");
        }

        return sb.ToString();
    }

    private static string TclEscape(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c is '\\' or '"' or '$' or '[' or ']' or '{' or '}') sb.Append('\\');
            sb.Append(c);
        }

        return sb.ToString();
    }

    private static void WriteModule(string directory, string name, string text)
    {
        var path = Path.Combine(directory, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    private static void WriteShim(string bin, string tool, string shortOption, string longOption)
    {
        var path = Path.Combine(bin, tool);
        File.WriteAllText(path, $$"""
            #!/bin/sh
            # cairn: build sandboxes have no network; say which file the script wanted and how to provide it.
            url=; out=
            while [ $# -gt 0 ]; do
              case "$1" in
                {{shortOption}}|{{longOption}}) out="$2"; shift 2 ;;
                {{longOption}}=*) out="${1#*=}"; shift ;;
                {{shortOption}}?*) out="${1#{{shortOption}}}"; shift ;;
                -*) shift ;;
                *) url="$1"; shift ;;
              esac
            done
            [ -n "$out" ] || out="${url##*/}"
            name="${out##*/}"
            echo "{{DownloadRefusedMarker}} {{tool}} $url -> $out" >&2
            echo "cairn: builds have no network, so $name must be in \$SRC_DIR before the build: add it to recipe.yml as a source," >&2
            echo "cairn:   sources: [{path: FILE, as: $name, sha256: SHA256}]  (FILE in the recipes' sources/ or a --sources DIR;" >&2
            echo "cairn:   download it yourself${url:+ from $url}; SHA256 from sha256sum FILE)" >&2
            exit 4

            """.Replace("\r\n", "\n", StringComparison.Ordinal));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
            UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
    }

    /// <summary>The recipe folder as Jenkins' checkout in WORKSPACE: check scripts compile test programs kept beside them.</summary>
    private static void CopyCheckout(string source, string target)
    {
        foreach (var dir in Directory.EnumerateDirectories(source, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(source, dir);
            if (relative.Split(Path.DirectorySeparatorChar)[0] == ".git") continue;
            Directory.CreateDirectory(Path.Combine(target, relative));
        }

        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(source, file);
            if (relative.Split(Path.DirectorySeparatorChar)[0] == ".git" || new FileInfo(file).LinkTarget is not null) continue;
            var dest = Path.Combine(target, relative);
            File.Copy(file, dest, overwrite: true);
            File.SetUnixFileMode(dest, File.GetUnixFileMode(file) | UnixFileMode.UserWrite);
        }
    }

    /// <summary>The environment's gcc version as <c>gcc -dumpversion</c> gives it: from the /usr/bin/gcc link (gcc-12), else the one folder in usr/lib/gcc/*/.</summary>
    internal static string? DetectGccVersion(string root)
    {
        var gcc = new FileInfo(Path.Combine(root, "usr", "bin", "gcc"));
        if (gcc.LinkTarget is { } target && GccLink().Match(Path.GetFileName(target)) is { Success: true } m) return m.Groups[1].Value;
        var lib = Path.Combine(root, "usr", "lib", "gcc");
        if (!Directory.Exists(lib)) return null;
        var versions = Directory.GetDirectories(lib).SelectMany(Directory.GetDirectories).Select(Path.GetFileName)
            .Where(v => v is { Length: > 0 } && char.IsAsciiDigit(v[0])).Distinct().ToList();
        return versions.Count == 1 ? versions[0] : versions.OrderByDescending(v => Version.TryParse(v!.Contains('.', StringComparison.Ordinal) ? v : v + ".0", out var p) ? p : new Version(0, 0)).FirstOrDefault();
    }

    [GeneratedRegex(@"^(?:[a-z0-9_]+-linux-gnu-)?gcc-([0-9][0-9.]*)$")]
    private static partial Regex GccLink();
}
