using System.CommandLine;
using Cairn.Build.CodeRade;
using Cairn.Core;

namespace Cairn.Cli.Commands.RecipeImport;

/// <summary><c>cairn recipe import DIR...</c>: recipe.yml for CODE-RADE *-deploy checkouts (docs/recipes.md, "Coming from CODE-RADE").</summary>
public static class RecipeCommand
{
    public static Command Create()
    {
        var dirs = new Argument<string[]>("dir") { Description = "Checkouts of CODE-RADE *-deploy repositories, each a folder of the recipes directory", Arity = ArgumentArity.OneOrMore };
        var name = new Option<string?>("--name") { Description = "NAME, when the Jenkinsfile has none (one DIR only)" };
        var version = new Option<string?>("--version") { Description = "VERSION, when the Jenkinsfile has none (one DIR only)" };
        var sources = new Option<string[]>("--source") { Description = "A source file the scripts expect in $SRC_DIR (one DIR only; repeatable)", AllowMultipleArgumentsPerToken = false };
        var force = new Option<bool>("--force") { Description = "Replace an existing recipe.yml" };
        var import = new Command("import", "Write recipe.yml (layout: code-rade) for CODE-RADE *-deploy checkouts and list what could not be mapped") { dirs, name, version, sources, force };
        import.SetHandler((ctx, ct) =>
        {
            var list = ctx.Parse.GetValue(dirs) ?? [];
            var given = (Name: ctx.Parse.GetValue(name), Version: ctx.Parse.GetValue(version), Sources: ctx.Parse.GetValue(sources) ?? []);
            if (list.Length > 1 && (given.Name is not null || given.Version is not null || given.Sources.Length > 0))
            {
                throw new CairnException(ErrorCode.Usage, "--name, --version and --source apply to one DIR; import the checkouts one by one");
            }

            var results = new List<CodeRadeImportResult>();
            foreach (var dir in list)
            {
                ct.ThrowIfCancellationRequested();
                var (n, v) = (given.Name, given.Version);
                var jenkins = CodeRadeImporter.ReadJenkinsEnvironment(Path.Combine(dir, "Jenkinsfile"));

                // Without a Jenkinsfile that says, ask on a terminal (as Jenkins' job configuration would have).
                if (!Console.IsInputRedirected && !ctx.Json)
                {
                    if (n is null && !jenkins.ContainsKey("NAME")) n = Ask(ctx, dir, "NAME");
                    if (v is null && !jenkins.ContainsKey("VERSION")) v = Ask(ctx, dir, "VERSION");
                }

                results.Add(CodeRadeImporter.Import(new CodeRadeImportRequest(dir, n, v, given.Sources, ctx.Parse.GetValue(force))));
            }

            ctx.Write<IReadOnlyList<CodeRadeImportResult>>(results, CliJson.Default.IReadOnlyListCodeRadeImportResult, o =>
            {
                foreach (var r in results)
                {
                    o.WriteLine($"wrote {r.RecipeFile}");
                    foreach (var m in r.Mapped) o.WriteLine($"  mapped: {m}");
                    foreach (var m in r.NotMapped) o.WriteLine($"  not mapped: {m}");
                }
            });
            return Task.FromResult(0);
        });
        return new Command("recipe", "Work with recipes") { import };
    }

    private static string? Ask(CliContext ctx, string dir, string what)
    {
        ctx.Error.Write($"{dir}: {what} (as the Jenkins job set it): ");
        var answer = Console.ReadLine()?.Trim();
        return string.IsNullOrEmpty(answer) ? null : answer;
    }
}
