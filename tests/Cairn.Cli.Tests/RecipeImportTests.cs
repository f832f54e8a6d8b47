using System.Text.Json;
using Cairn.Cli.Tests.Infrastructure;

namespace Cairn.Cli.Tests;

/// <summary>
/// <c>cairn recipe import</c> as a user runs it, on a copy of CODE-RADE's bzlib-deploy (tests/fixtures/code-rade),
/// which has no Jenkinsfile: without NAME/VERSION and no terminal to ask on it refuses and writes nothing; given
/// them it writes a code-rade recipe; a second import does not overwrite it.
/// </summary>
public sealed class RecipeImportTests : CliTest
{
    [Fact]
    public async Task A_deploy_checkout_without_a_jenkinsfile_needs_name_and_version_and_is_never_overwritten()
    {
        using var dir = new TempDir();
        var checkout = dir.Sub("bzip2");
        var fixture = Path.Combine(Sources.CheckoutRoot, "tests", "fixtures", "code-rade", "bzlib-deploy");
        foreach (var file in Directory.GetFiles(fixture)) File.Copy(file, Path.Combine(checkout, Path.GetFileName(file)));
        var recipe = Path.Combine(checkout, "recipe.yml");

        var unnamed = await Exec.CairnAsync(["recipe", "import", checkout], Ct);
        Assert.NotEqual(0, unnamed.ExitCode);
        Assert.Contains("CAIRN-E0642", unnamed.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(recipe), "a refused import wrote recipe.yml");

        var named = await Exec.CairnAsync(["recipe", "import", checkout, "--name", "bzip2", "--version", "1.0.8", "--json"], Ct);
        Assert.True(named.ExitCode == 0, named.Stderr);
        using (var json = JsonDocument.Parse(named.Stdout))
        {
            var result = Assert.Single(json.RootElement.EnumerateArray());
            Assert.Equal(recipe, result.GetProperty("recipeFile").GetString());
        }

        var written = await File.ReadAllTextAsync(recipe, Ct);
        Assert.Contains("name: bzip2\n", written, StringComparison.Ordinal);
        Assert.Contains("version: \"1.0.8\"\n", written, StringComparison.Ordinal);
        Assert.Contains("layout: code-rade\n", written, StringComparison.Ordinal);

        var again = await Exec.CairnAsync(["recipe", "import", checkout, "--name", "other", "--version", "2"], Ct);
        Assert.NotEqual(0, again.ExitCode);
        Assert.Contains("CAIRN-E0642", again.Stderr, StringComparison.Ordinal);
        Assert.Contains("--force", again.Stderr, StringComparison.Ordinal);
        Assert.Equal(written, await File.ReadAllTextAsync(recipe, Ct));
    }
}
