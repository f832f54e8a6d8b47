using Cairn.Core;

namespace Cairn.Build.Recipes;

/// <summary>
/// All recipes of a recipes directory and their dependency edges, checked: every dependency exists (in the pinned
/// version, if pinned) and there is no cycle. Orders are deterministic: ties are broken by ordinal name.
/// </summary>
public sealed class RecipeGraph
{
    private readonly SortedDictionary<string, Recipe> _recipes;
    private readonly Dictionary<string, List<string>> _dependents = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _position = new(StringComparer.Ordinal);

    // Every recipe's transitive dependencies as ascending topological positions, all computed at the first
    // request in one pass over the topological order (each closure from its direct dependencies' closures), and
    // the same as Recipe lists, materialized per recipe on demand. The graph is immutable.
    private readonly Lazy<int[][]> _closures;
    private readonly Recipe[]?[] _transitive;
    private readonly int[] _nameRank;
    private readonly Recipe[] _byName;

    private RecipeGraph(SortedDictionary<string, Recipe> recipes)
    {
        _recipes = recipes;
        foreach (var r in recipes.Values)
        {
            _dependents[r.Name] = [];
        }

        foreach (var r in recipes.Values)
        {
            foreach (var d in r.Dependencies)
            {
                var target = recipes.GetValueOrDefault(d.Name) ?? throw new CairnException(ErrorCode.RecipeDependencyMissing,
                    $"{d.Location}: {r.Name} depends on '{d.Name}', but there is no recipe named '{d.Name}'",
                    $"add a folder {d.Name}/ with a recipe.yml, or remove the dependency");
                if (d.Version is not null && d.Version != target.Version)
                {
                    throw new CairnException(ErrorCode.RecipeDependencyMissing,
                        $"{d.Location}: {r.Name} depends on {d}, but the recipe {target.File} has version {target.Version}");
                }

                _dependents[d.Name].Add(r.Name);
            }
        }

        foreach (var list in _dependents.Values) list.Sort(StringComparer.Ordinal);
        TopologicalOrder = Sort();
        for (var i = 0; i < TopologicalOrder.Count; i++) _position[TopologicalOrder[i].Name] = i;
        _byName = [.. recipes.Values];
        _nameRank = new int[_byName.Length];
        for (var i = 0; i < _byName.Length; i++) _nameRank[_position[_byName[i].Name]] = i;
        _transitive = new Recipe[]?[_byName.Length];
        _closures = new Lazy<int[][]>(Closures);
    }

    /// <summary>Loads every subfolder that holds a recipe.yml; other folders (sources/, .git/) are ignored.</summary>
    public static RecipeGraph Load(string recipesDirectory)
    {
        if (!Directory.Exists(recipesDirectory))
        {
            throw new CairnException(ErrorCode.RecipeFileMissing, $"{recipesDirectory}: no such recipes directory");
        }

        var dirs = Directory.GetDirectories(recipesDirectory).Order(StringComparer.Ordinal)
            .Where(dir => !Path.GetFileName(dir).StartsWith('.') && File.Exists(Path.Combine(dir, RecipeParser.FileName))).ToArray();

        // Reading and parsing thousands of recipe.yml files is a good part of `cairn plan`'s time: in parallel, but
        // the outcome is as if in order (the first folder's error in ordinal order is the one reported).
        var recipes = new Recipe?[dirs.Length];
        var errors = new Exception?[dirs.Length];
        Parallel.For(0, dirs.Length, i =>
        {
            try
            {
                recipes[i] = LoadOne(dirs[i]);
            }
            catch (Exception e)
            {
                errors[i] = e;
            }
        });
        if (errors.FirstOrDefault(e => e is not null) is { } first) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
        return FromRecipes(recipes!);
    }

    private static Recipe LoadOne(string dir)
    {
        var recipe = RecipeParser.Load(dir);
        if (recipe.Name != Path.GetFileName(dir))
        {
            throw new CairnException(ErrorCode.RecipeInvalid,
                $"{recipe.File}:1:1: the recipe is named '{recipe.Name}' but its folder is '{Path.GetFileName(dir)}'; they must match");
        }

        return recipe;
    }

    public static RecipeGraph FromRecipes(IEnumerable<Recipe> recipes)
    {
        ArgumentNullException.ThrowIfNull(recipes);
        var map = new SortedDictionary<string, Recipe>(StringComparer.Ordinal);
        foreach (var r in recipes)
        {
            if (map.TryGetValue(r.Name, out var other))
            {
                throw new CairnException(ErrorCode.RecipeDuplicate, $"{r.File}: a second recipe named '{r.Name}' (the first is {other.File})");
            }

            map[r.Name] = r;
        }

        return new RecipeGraph(map);
    }

    public IReadOnlyCollection<Recipe> Recipes => _recipes.Values;

    public int Count => _recipes.Count;

    public Recipe this[string name] => _recipes.TryGetValue(name, out var r) ? r
        : throw new CairnException(ErrorCode.RecipeDependencyMissing, $"there is no recipe named '{name}'");

    public bool Contains(string name) => _recipes.ContainsKey(name);

    /// <summary>Every recipe after all of its dependencies; among those ready at once, by ordinal name.</summary>
    public IReadOnlyList<Recipe> TopologicalOrder { get; }

    public IReadOnlyList<Recipe> DirectDependencies(string name) =>
        [.. this[name].Dependencies.Select(d => _recipes[d.Name]).OrderBy(r => r.Name, StringComparer.Ordinal)];

    /// <summary>All dependencies, direct and indirect, in topological order (deepest first).</summary>
    public IReadOnlyList<Recipe> TransitiveDependencies(string name)
    {
        var position = PositionOf(name);
        if (_transitive[position] is { } done) return done;
        var closure = _closures.Value[position];
        var list = new Recipe[closure.Length];
        for (var i = 0; i < closure.Length; i++) list[i] = TopologicalOrder[closure[i]];
        // A race only computes the same array twice.
        return _transitive[position] = list;
    }

    /// <summary>The same as <see cref="TransitiveDependencies"/>, in ordinal name order (as a build key lists them).</summary>
    public IReadOnlyList<Recipe> TransitiveDependenciesByName(string name)
    {
        var closure = _closures.Value[PositionOf(name)];
        var ranks = new int[closure.Length];
        for (var i = 0; i < closure.Length; i++) ranks[i] = _nameRank[closure[i]];
        Array.Sort(ranks);
        var list = new Recipe[ranks.Length];
        for (var i = 0; i < ranks.Length; i++) list[i] = _byName[ranks[i]];
        return list;
    }

    private int PositionOf(string name) => _position.TryGetValue(name, out var p) ? p
        : throw new CairnException(ErrorCode.RecipeDependencyMissing, $"there is no recipe named '{name}'");

    /// <summary>
    /// Each recipe's closure is the union of its direct dependencies and their closures, which the topological
    /// order has computed before it: one pass, linear in the sum of the closures' sizes (a walk per recipe made
    /// planning 2,000 dense recipes take seconds). A stamp per position marks what the current union holds.
    /// </summary>
    private int[][] Closures()
    {
        var closures = new int[TopologicalOrder.Count][];
        var stamp = new int[TopologicalOrder.Count];
        var union = new List<int>();
        for (var p = 0; p < closures.Length; p++)
        {
            union.Clear();
            var mark = p + 1;
            foreach (var dep in TopologicalOrder[p].Dependencies)
            {
                var q = _position[dep.Name];
                if (stamp[q] != mark)
                {
                    stamp[q] = mark;
                    union.Add(q);
                }

                foreach (var r in closures[q])
                {
                    if (stamp[r] == mark) continue;
                    stamp[r] = mark;
                    union.Add(r);
                }
            }

            union.Sort();
            closures[p] = [.. union];
        }

        return closures;
    }

    /// <summary>All recipes that depend on <paramref name="name"/>, directly or not: what a failure blocks.</summary>
    public IReadOnlyList<Recipe> Downstream(string name)
    {
        var closure = Closure([name], r => _dependents[r.Name]);
        closure.Remove(name);
        return [.. TopologicalOrder.Where(r => closure.Contains(r.Name))];
    }

    /// <summary>The named recipes with everything they need (for --only).</summary>
    public RecipeGraph Only(IEnumerable<string> names)
    {
        var closure = Closure(names.Select(n => this[n].Name), r => r.Dependencies.Select(d => d.Name));
        return FromRecipes(_recipes.Values.Where(r => closure.Contains(r.Name)));
    }

    private HashSet<string> Closure(IEnumerable<string> start, Func<Recipe, IEnumerable<string>> next)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>(start);
        while (stack.TryPop(out var n))
        {
            if (!seen.Add(n)) continue;
            foreach (var m in next(_recipes[n])) stack.Push(m);
        }

        return seen;
    }

    private List<Recipe> Sort()
    {
        ThrowOnCycle();
        var remaining = _recipes.Values.ToDictionary(r => r.Name, r => r.Dependencies.Count, StringComparer.Ordinal);
        var ready = new SortedSet<string>(remaining.Where(kv => kv.Value == 0).Select(kv => kv.Key), StringComparer.Ordinal);
        var order = new List<Recipe>(_recipes.Count);
        while (ready.Min is { } n)
        {
            ready.Remove(n);
            order.Add(_recipes[n]);
            foreach (var dependent in _dependents[n])
            {
                if (--remaining[dependent] == 0) ready.Add(dependent);
            }
        }

        return order;
    }

    private void ThrowOnCycle()
    {
        // Depth-first search; a dependency found on the current path closes a cycle.
        var state = new Dictionary<string, int>(StringComparer.Ordinal);
        var path = new List<string>();
        foreach (var name in _recipes.Keys)
        {
            Visit(name);
        }

        void Visit(string name)
        {
            if (state.GetValueOrDefault(name) == 2) return;
            if (state.GetValueOrDefault(name) == 1)
            {
                var cycle = path[path.IndexOf(name)..].Append(name).ToList();
                var first = _recipes[cycle[0]];
                var edge = first.Dependencies.First(d => d.Name == cycle[1]);
                throw new CairnException(ErrorCode.RecipeCycle,
                    $"{edge.Location}: the recipes form a cycle: {string.Join(" -> ", cycle)}",
                    "a package cannot depend, even indirectly, on itself; remove one of these dependencies");
            }

            state[name] = 1;
            path.Add(name);
            foreach (var d in _recipes[name].Dependencies.Select(d => d.Name).Order(StringComparer.Ordinal))
            {
                Visit(d);
            }

            path.RemoveAt(path.Count - 1);
            state[name] = 2;
        }
    }
}
