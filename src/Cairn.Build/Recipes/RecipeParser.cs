using System.Text.RegularExpressions;
using Cairn.Core;
using Cairn.Sandbox;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Cairn.Build.Recipes;

/// <summary>
/// Reads recipe.yml strictly: unknown keys, wrong shapes and missing files are errors that name the file, line
/// and column and say what was expected.
/// </summary>
public static partial class RecipeParser
{
    public const string FileName = "recipe.yml";

    private static readonly string[] TopLevelKeys =
        ["name", "version", "description", "sources", "dependencies", "build", "check", "env", "environment", "modules", "layout", "host-modules"];

    /// <summary>The values of <c>layout:</c>.</summary>
    public const string CodeRadeLayout = "code-rade";

    public static Recipe Load(string recipeDirectory)
    {
        var file = Path.Combine(recipeDirectory, FileName);
        if (!File.Exists(file))
        {
            throw new CairnException(ErrorCode.RecipeFileMissing, $"{file}: no such file; every recipe folder holds a {FileName}");
        }

        return Parse(File.ReadAllText(file), file, recipeDirectory);
    }

    public static Recipe Parse(string text, string file, string recipeDirectory)
    {
        ArgumentNullException.ThrowIfNull(text);
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            var inner = e.InnerException?.Message is { } m ? $" ({m})" : "";
            throw new CairnException(ErrorCode.RecipeSyntax,
                $"{new SourceLocation(file, e.Start.Line, e.Start.Column)}: not valid YAML: {e.Message}{inner}");
        }

        var reader = new Reader(file);
        if (stream.Documents.Count != 1)
        {
            throw new CairnException(ErrorCode.RecipeSyntax, $"{file}:1:1: expected exactly one YAML document, found {stream.Documents.Count}");
        }

        var root = reader.Mapping(stream.Documents[0].RootNode, "the recipe (a mapping of name, version, sources, …)");
        reader.RejectUnknown(root, TopLevelKeys, "recipe");

        var name = reader.Required(root, "name", NamePattern(), "a package name (letters, digits, '.', '_', '+', '-')");
        var version = reader.Required(root, "version", VersionPattern(), "a version (letters, digits, '.', '_', '+', '~', '-')");
        var recipe = new Recipe
        {
            Name = name,
            Version = version,
            Description = reader.OptionalScalar(root, "description"),
            Directory = recipeDirectory,
            File = file,
            Sources = reader.Sources(root),
            Dependencies = reader.Dependencies(root, name),
            Build = reader.Script(root, "build", recipeDirectory, required: true)!,
            Check = reader.Script(root, "check", recipeDirectory, required: true)!,
            Environment = reader.Environment(root),
            BuildEnvironment = reader.OptionalScalar(root, "environment"),
            Modules = reader.Modules(root),
            Layout = reader.Layout(root),
            HostModules = reader.HostModules(root),
        };
        if (recipe.HostModules.Count > 0 && recipe.Layout != RecipeLayout.CodeRade)
        {
            throw new CairnException(ErrorCode.RecipeInvalid, $"{file}: 'host-modules' is only for 'layout: {CodeRadeLayout}' recipes, whose scripts run 'module add'");
        }

        var inSandbox = new HashSet<string>(StringComparer.Ordinal);
        foreach (var source in recipe.Sources)
        {
            if (!inSandbox.Add(source.NameInSandbox))
            {
                throw new CairnException(ErrorCode.RecipeInvalid, $"{source.Location}: two sources would be {BuildVariables.SourcesPath}/{source.NameInSandbox}; give one of them another 'as' name");
            }
        }

        return recipe;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._+-]*$")]
    internal static partial Regex NamePattern();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._+~-]*$")]
    private static partial Regex VersionPattern();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._+-]*(/[A-Za-z0-9][A-Za-z0-9._+-]*)?$")]
    private static partial Regex ModuleNamePattern();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex VariablePattern();

    private sealed class Reader(string file)
    {
        private SourceLocation At(YamlNode node) => new(file, node.Start.Line, node.Start.Column);

        private CairnException Invalid(YamlNode node, string message) =>
            new(ErrorCode.RecipeInvalid, $"{At(node)}: {message}");

        private static string Describe(YamlNode node) => node switch
        {
            YamlMappingNode => "a mapping",
            YamlSequenceNode => "a list",
            YamlScalarNode { Value: null or "" } => "nothing",
            YamlScalarNode s => $"'{s.Value}'",
            _ => "something else",
        };

        public YamlMappingNode Mapping(YamlNode node, string expected) =>
            node as YamlMappingNode ?? throw Invalid(node, $"expected {expected}, found {Describe(node)}");

        private YamlSequenceNode Sequence(YamlNode node, string expected) =>
            node as YamlSequenceNode ?? throw Invalid(node, $"expected {expected}, found {Describe(node)}");

        private string Scalar(YamlNode node, string expected) =>
            node is YamlScalarNode { Value: { Length: > 0 } v } ? v : throw Invalid(node, $"expected {expected}, found {Describe(node)}");

        private static YamlNode? Get(YamlMappingNode map, string key) =>
            map.Children.TryGetValue(new YamlScalarNode(key), out var v) ? v : null;

        public void RejectUnknown(YamlMappingNode map, string[] allowed, string what)
        {
            foreach (var key in map.Children.Keys)
            {
                var k = key is YamlScalarNode s ? s.Value : null;
                if (k is null || !allowed.Contains(k, StringComparer.Ordinal))
                {
                    throw Invalid(key, $"unknown key {Describe(key)} in {what}; expected one of: {string.Join(", ", allowed)}");
                }
            }
        }

        public string Required(YamlMappingNode map, string key, Regex pattern, string expected)
        {
            var node = Get(map, key) ?? throw Invalid(map, $"missing '{key}': expected {expected}");
            var value = Scalar(node, expected);
            return pattern.IsMatch(value) ? value : throw Invalid(node, $"'{key}' is '{value}'; expected {expected}");
        }

        public string? OptionalScalar(YamlMappingNode map, string key) =>
            Get(map, key) is { } node ? Scalar(node, $"a text value for '{key}'") : null;

        public List<RecipeSource> Sources(YamlMappingNode root)
        {
            const string Expected = "a source: a mapping with 'path' or 'url', and 'sha256'";
            var result = new List<RecipeSource>();
            if (Get(root, "sources") is not { } node) return result;
            foreach (var item in Sequence(node, "a list of sources").Children)
            {
                var map = Mapping(item, Expected);
                RejectUnknown(map, ["path", "url", "sha256", "as"], "source");
                var path = OptionalScalar(map, "path");
                var urlText = OptionalScalar(map, "url");
                if (path is null && urlText is null) throw Invalid(map, $"expected {Expected}; neither 'path' nor 'url' is given");
                if (path is not null && (Path.IsPathRooted(path) || path.Split('/').Any(s => s is "" or "." or "..")))
                {
                    throw Invalid(Get(map, "path")!, $"'path' is '{path}'; expected a relative path without . or .. segments, found in a source directory");
                }

                Uri? url = null;
                if (urlText is not null && (!Uri.TryCreate(urlText, UriKind.Absolute, out url) || url.Scheme is not ("http" or "https" or "ftp")
                    || Path.GetFileName(url.AbsolutePath).Length == 0))
                {
                    throw Invalid(Get(map, "url")!, $"'url' is '{urlText}'; expected an http, https or ftp URL ending in a file name");
                }

                var shaNode = Get(map, "sha256") ?? throw Invalid(map, "missing 'sha256': expected the lowercase hex SHA-256 of the file (64 characters)");
                var shaText = Scalar(shaNode, "the lowercase hex SHA-256 of the file (64 characters)");
                if (!Digest.TryParse(shaText, out var sha))
                {
                    throw Invalid(shaNode, $"'sha256' is '{shaText}'; expected the lowercase hex SHA-256 of the file (64 characters)");
                }

                var asName = OptionalScalar(map, "as");
                if (asName is not null && (asName.Contains('/', StringComparison.Ordinal) || asName is "." or ".." || asName.StartsWith('.')))
                {
                    throw Invalid(Get(map, "as")!, $"'as' is '{asName}'; expected a plain file name for $SRC_DIR (e.g. gsl-2.7.1.tar.gz)");
                }

                result.Add(new RecipeSource(path, url, sha, At(map), asName));
            }

            return result;
        }

        public List<RecipeDependency> Dependencies(YamlMappingNode root, string self)
        {
            const string Expected = "a dependency: 'name', 'name/version' or a mapping with 'name' and optional 'version'";
            var result = new List<RecipeDependency>();
            if (Get(root, "dependencies") is not { } node) return result;
            foreach (var item in Sequence(node, "a list of dependencies").Children)
            {
                string name;
                string? version = null;
                if (item is YamlMappingNode map)
                {
                    RejectUnknown(map, ["name", "version"], "dependency");
                    name = Required(map, "name", NamePattern(), "a package name");
                    version = Get(map, "version") is { } v ? Scalar(v, "a version") : null;
                }
                else
                {
                    var text = Scalar(item, Expected);
                    var slash = text.IndexOf('/', StringComparison.Ordinal);
                    name = slash < 0 ? text : text[..slash];
                    version = slash < 0 ? null : text[(slash + 1)..];
                }

                if (!NamePattern().IsMatch(name) || (version is not null && !VersionPattern().IsMatch(version)))
                {
                    throw Invalid(item, $"expected {Expected}, found {Describe(item)}");
                }

                if (name == self) throw Invalid(item, $"'{self}' depends on itself");
                if (result.Any(d => d.Name == name)) throw Invalid(item, $"'{name}' is listed twice");
                result.Add(new RecipeDependency(name, version, At(item)));
            }

            return result;
        }

        public RecipeScript? Script(YamlMappingNode root, string key, string recipeDirectory, bool required)
        {
            var expected = $"a script for '{key}': a file name in the recipe folder, a multi-line block (|), or a mapping with 'file' or 'run'";
            var node = Get(root, key);
            if (node is null)
            {
                return required ? throw Invalid(root, $"missing '{key}': expected {expected}") : null;
            }

            string? fileName;
            if (node is YamlMappingNode map)
            {
                RejectUnknown(map, ["file", "run"], key);
                var run = Get(map, "run");
                var fileNode = Get(map, "file");
                if ((run is null) == (fileNode is null)) throw Invalid(map, $"expected exactly one of 'file' or 'run' in '{key}'");
                if (run is not null) return RecipeScript.FromText(Scalar(run, "the script text"));
                fileName = Scalar(fileNode!, "a file name in the recipe folder");
                node = fileNode!;
            }
            else
            {
                var text = Scalar(node, expected);

                // One line names a file; several lines are the script itself.
                if (text.Contains('\n', StringComparison.Ordinal)) return RecipeScript.FromText(text);
                fileName = text;
            }

            if (fileName.Contains('/', StringComparison.Ordinal) || fileName is "." or "..")
            {
                throw Invalid(node, $"'{fileName}' is not a plain file name; scripts live in the recipe folder");
            }

            if (!File.Exists(Path.Combine(recipeDirectory, fileName)))
            {
                throw new CairnException(ErrorCode.RecipeFileMissing,
                    $"{At(node)}: '{key}' names '{fileName}', which is not in {recipeDirectory}",
                    "to give the script inline, write it as a block (|) or under 'run:'");
            }

            return RecipeScript.FromFile(fileName);
        }

        public Dictionary<string, string> Environment(YamlMappingNode root)
        {
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            if (Get(root, "env") is not { } node) return result;
            foreach (var (keyNode, valueNode) in Mapping(node, "a mapping of variable names to values").Children)
            {
                var key = Variable(keyNode);
                if (SandboxContract.IsReserved(key))
                {
                    throw Invalid(keyNode, $"{key} is fixed by the sandbox and cannot be set");
                }

                result[key] = valueNode is YamlScalarNode { Value: var v } ? v ?? "" : throw Invalid(valueNode, $"expected a text value for {key}, found {Describe(valueNode)}");
            }

            return result;
        }

        private string Variable(YamlNode node)
        {
            var name = Scalar(node, "a variable name");
            return VariablePattern().IsMatch(name) ? name : throw Invalid(node, $"'{name}' is not a variable name; expected letters, digits and '_', not starting with a digit");
        }

        public RecipeLayout Layout(YamlMappingNode root)
        {
            if (Get(root, "layout") is not { } node) return RecipeLayout.Cairn;
            return Scalar(node, $"'cairn' or '{CodeRadeLayout}'") switch
            {
                "cairn" => RecipeLayout.Cairn,
                CodeRadeLayout => RecipeLayout.CodeRade,
                var other => throw Invalid(node, $"'layout' is '{other}'; expected 'cairn' (the default) or '{CodeRadeLayout}' (a CODE-RADE *-deploy repository's scripts as they are)"),
            };
        }

        public List<string> HostModules(YamlMappingNode root)
        {
            var result = new List<string>();
            if (Get(root, "host-modules") is not { } node) return result;
            foreach (var item in Sequence(node, "a list of module names (e.g. [cmake])").Children)
            {
                var name = Scalar(item, "a module name");
                if (!ModuleNamePattern().IsMatch(name) || name.Split('/').Any(s => s is "." or ".."))
                {
                    throw Invalid(item, $"'{name}' is not a module name; expected NAME or NAME/VERSION (letters, digits, . _ + -)");
                }

                result.Add(name);
            }

            return result;
        }

        public ModuleSettings Modules(YamlMappingNode root)
        {
            if (Get(root, "modules") is not { } node) return ModuleSettings.Empty;
            var map = Mapping(node, "a mapping with 'paths' and 'variables'");
            RejectUnknown(map, ["paths", "variables"], "modules");
            var paths = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
            if (Get(map, "paths") is { } p)
            {
                foreach (var (k, v) in Mapping(p, "a mapping of variable names to lists of folders in the prefix").Children)
                {
                    var dirs = Sequence(v, "a list of folders relative to the install prefix").Children
                        .Select(d => Scalar(d, "a folder relative to the install prefix")).ToList();
                    foreach (var (dir, dnode) in dirs.Zip(((YamlSequenceNode)v).Children))
                    {
                        if (dir.StartsWith('/') || dir.Split('/').Contains("..")) throw Invalid(dnode, $"'{dir}' must be relative to the install prefix");
                    }

                    paths[Variable(k)] = dirs;
                }
            }

            var variables = new Dictionary<string, string>(StringComparer.Ordinal);
            if (Get(map, "variables") is { } vs)
            {
                foreach (var (k, v) in Mapping(vs, "a mapping of variable names to values").Children)
                {
                    variables[Variable(k)] = Scalar(v, "a text value");
                }
            }

            return new ModuleSettings(paths, variables);
        }
    }
}
