using Cairn.Build.Recipes;
using Cairn.Core;

namespace Cairn.Build.Tests;

public sealed class SourceResolverTests : IDisposable
{
    private readonly RecipeDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private Recipe WithSource(string name, Digest sha) => RecipeParser.Load(_dir.Add("p",
        $"name: p\nversion: 1\nsources:\n  - path: {name}\n    url: https://example.org/{name}\n    sha256: {sha}\nbuild: {{run: make}}\ncheck: {{run: make}}\n"));

    [Fact]
    public void Finds_by_name_then_by_digest_and_verifies()
    {
        var a = Directory.CreateDirectory(Path.Combine(_dir.Root, "a")).FullName;
        var b = Directory.CreateDirectory(Path.Combine(_dir.Root, "b")).FullName;
        File.WriteAllText(Path.Combine(b, "renamed.tar.gz"), "content");
        File.WriteAllText(Path.Combine(b, "SHA256SUMS"), $"{Digest.Of("content"u8)}  renamed.tar.gz\n");
        var recipe = WithSource("p.tar.gz", Digest.Of("content"u8));
        Assert.Equal(Path.Combine(b, "renamed.tar.gz"), new SourceResolver([a, b]).Resolve(recipe, recipe.Sources[0]));

        File.WriteAllText(Path.Combine(a, "p.tar.gz"), "content");
        Assert.Equal(Path.Combine(a, "p.tar.gz"), new SourceResolver([a, b]).Resolve(recipe, recipe.Sources[0]));
    }

    [Fact]
    public void A_wrong_digest_is_refused()
    {
        var a = Directory.CreateDirectory(Path.Combine(_dir.Root, "a")).FullName;
        File.WriteAllText(Path.Combine(a, "p.tar.gz"), "tampered");
        var recipe = WithSource("p.tar.gz", Digest.Of("content"u8));
        var e = Assert.Throws<CairnException>(() => new SourceResolver([a]).Resolve(recipe, recipe.Sources[0]));
        Assert.Equal(ErrorCode.SourceDigestMismatch, e.Code);
        Assert.Contains(Digest.Of("tampered"u8).ToString(), e.Message);
    }

    [Fact]
    public void A_missing_source_says_where_it_looked_and_what_to_fetch()
    {
        var recipe = WithSource("p.tar.gz", Digest.Of("content"u8));
        var e = Assert.Throws<CairnException>(() => new SourceResolver([_dir.Root]).Resolve(recipe, recipe.Sources[0]));
        Assert.Equal(ErrorCode.RecipeSourceMissing, e.Code);
        Assert.Contains(_dir.Root, e.Message);
        Assert.Contains("https://example.org/p.tar.gz", e.Hint);
    }

    [Fact]
    public void The_example_sources_match_their_recipes()
    {
        var stack = Path.Combine(RecipeDir.RepoRoot(), "examples", "stack");
        var graph = RecipeGraph.Load(stack);
        var resolver = new SourceResolver([SourceResolver.DefaultDirectory(stack), RecipeDir.SharedSources()]);
        Assert.Contains(graph.Recipes, r => r.Name == "gsl");
        foreach (var recipe in graph.Recipes)
        {
            foreach (var s in recipe.Sources) Assert.True(File.Exists(resolver.Resolve(recipe, s)));
        }
    }
}
