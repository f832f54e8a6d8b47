using System.Security.Cryptography;
using System.Text;
using Cairn.Build.Recipes;
using Cairn.Core;

namespace Cairn.Build.Tests;

/// <summary>
/// Closures, orders and build keys over a larger graph than the documented vector: the closures against a plain
/// walk, and every key and order against the outputs of the implementation before the planning rewrite (one
/// closure walk per recipe, keys encoded through strings), so a faster planner cannot change a key.
/// </summary>
public sealed class BuildKeyGraphTests : IDisposable
{
    private const int Count = 120;

    /// <summary>
    /// SHA-256 over the topological order and, per recipe in that order, its transitive dependencies and build key,
    /// as computed by commit cd03aaf (before the rewrite) for <see cref="DenseGraph"/>.
    /// </summary>
    private const string KnownOutputs = "8ac8b53ff69303ca37f9882a72ce091dce62ac86e11182417e43dbab82795613";

    private readonly RecipeDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>
    /// 120 recipes, each depending on up to four earlier ones (fixed pseudo-random choice), named so that name
    /// order and topological order differ; some have an executable build script, a source, a pinned dependency.
    /// </summary>
    private RecipeGraph DenseGraph()
    {
        var names = new string[Count];
        for (var i = 0; i < Count; i++) names[i] = $"{(char)('a' + (i * 7 % 26))}{i * 37 % Count:d3}";
        var state = 12345u;
        uint Next() => state = state * 1103515245 + 12345;
        for (var i = 0; i < Count; i++)
        {
            var deps = new SortedSet<string>(StringComparer.Ordinal);
            var want = i == 0 ? 0 : (int)(Next() >> 16) % 5;
            for (var k = 0; k < want; k++) deps.Add(names[(int)((Next() >> 16) % (uint)i)]);
            var yaml = new StringBuilder($"name: {names[i]}\nversion: \"{i % 4}.{i}\"\n");
            if (deps.Count > 0)
            {
                // Every fifth recipe pins its first dependency's version.
                var list = deps.Select((d, n) => n == 0 && i % 5 == 0 ? $"\"{d}/{Array.IndexOf(names, d) % 4}.{Array.IndexOf(names, d)}\"" : d);
                yaml.Append($"dependencies: [{string.Join(", ", list)}]\n");
            }

            if (i % 7 == 0)
            {
                yaml.Append($"sources:\n  - path: s{i}.tar.gz\n    sha256: {Digest.Of(Encoding.UTF8.GetBytes($"source {i}"))}\n");
            }

            yaml.Append(i % 3 == 0 ? "build: build.sh\n" : "build: {run: make}\n");
            yaml.Append("check: {run: make check}\n");
            var dir = i % 3 == 0 ? _dir.Add(names[i], yaml.ToString(), ("build.sh", $"make -j{i}\n")) : _dir.Add(names[i], yaml.ToString());
            if (i % 3 == 0) File.SetUnixFileMode(Path.Combine(dir, "build.sh"), i % 2 == 0 ? (UnixFileMode)0b111_101_101 : (UnixFileMode)0b110_100_100);
        }

        return RecipeGraph.Load(_dir.Root);
    }

    private static BuildKeyInputs Inputs(RecipeGraph graph) =>
        new(new Platform("debian12", "x86_64"), "/cvmfs/cairn/generic",
            graph.Recipes.ToDictionary(r => r.Name, r => Digest.Of(Encoding.UTF8.GetBytes($"product of {r.Id}")), StringComparer.Ordinal),
            SandboxContractVersion: 2);

    [Fact]
    public void Closures_are_what_a_walk_finds_in_topological_and_name_order()
    {
        var graph = DenseGraph();
        var position = graph.TopologicalOrder.Select((r, i) => (r.Name, i)).ToDictionary(x => x.Name, x => x.i, StringComparer.Ordinal);
        var largest = 0;
        foreach (var recipe in graph.Recipes)
        {
            var walked = new HashSet<string>(StringComparer.Ordinal);
            var stack = new Stack<string>(recipe.Dependencies.Select(d => d.Name));
            while (stack.TryPop(out var n))
            {
                if (!walked.Add(n)) continue;
                foreach (var d in graph[n].Dependencies) stack.Push(d.Name);
            }

            largest = Math.Max(largest, walked.Count);
            Assert.Equal(walked.OrderBy(n => position[n]), graph.TransitiveDependencies(recipe.Name).Select(r => r.Name));
            Assert.Equal(walked.Order(StringComparer.Ordinal), graph.TransitiveDependenciesByName(recipe.Name).Select(r => r.Name));
            Assert.All(graph.TransitiveDependencies(recipe.Name), d => Assert.True(position[d.Name] < position[recipe.Name]));
        }

        Assert.True(largest > 20, $"the graph should be dense; its largest closure has {largest}");
    }

    [Fact]
    public void Keys_and_orders_match_the_implementation_before_the_rewrite()
    {
        var graph = DenseGraph();
        var inputs = Inputs(graph);
        var text = new StringBuilder();
        text.Append(string.Join(' ', graph.TopologicalOrder.Select(r => r.Name))).Append('\n');
        foreach (var recipe in graph.TopologicalOrder)
        {
            var key = BuildKey.Compute(graph, recipe, inputs);
            Assert.Equal(Digest.Of(BuildKey.Encode(graph, recipe, inputs)), key);
            text.Append(recipe.Name).Append(':').Append(string.Join(' ', graph.TransitiveDependencies(recipe.Name).Select(r => r.Name)))
                .Append(':').Append(key).Append('\n');
        }

        Assert.Equal(KnownOutputs, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString()))));
    }
}
