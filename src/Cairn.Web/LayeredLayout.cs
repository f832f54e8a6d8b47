namespace Cairn.Web;

/// <summary>
/// A layered drawing of a directed acyclic graph (the Sugiyama framework, docs/dashboard.md "The dependency graph"):
/// <list type="number">
/// <item>cycles, which a catalog should not have, are broken by ignoring the edges a depth-first search finds going back;</item>
/// <item>layering by longest path: a node with no dependencies is in layer 0, any other one layer after its deepest dependency;</item>
/// <item>an edge spanning several layers gets a dummy node in each layer between, so it is routed and ordered like the rest;</item>
/// <item>crossing reduction by the barycenter heuristic: sweeping right and left, each layer is sorted by the mean position
/// of its neighbours in the layer just fixed; the ordering with the fewest crossings is kept;</item>
/// <item>coordinates: layers are columns (dependencies left, dependants right), nodes are stacked in their order.</item>
/// </list>
/// Columns keep a wide graph readable: 300 packages make a tall picture that scrolls, not an unreadable wide one.
/// </summary>
public static class LayeredLayout
{
    public sealed record Node(int Id, int Layer, int Position, bool Dummy);

    /// <summary>An edge of the original graph, drawn through <paramref name="Points"/> (its dummy nodes' ids, in order).</summary>
    public sealed record Route(int From, int To, IReadOnlyList<int> Points);

    public sealed record Result(IReadOnlyList<Node> Nodes, IReadOnlyList<Route> Routes, int Layers, int Crossings);

    /// <param name="count">Nodes 0..count-1, in the order used to break ties (sort them by name first for a stable picture).</param>
    /// <param name="edges">(dependency, dependant): the dependency is drawn to the left.</param>
    public static Result Compute(int count, IReadOnlyList<(int From, int To)> edges, int sweeps = 12)
    {
        ArgumentNullException.ThrowIfNull(edges);
        var outgoing = Enumerable.Range(0, count).Select(_ => new List<int>()).ToArray();
        foreach (var (from, to) in edges.Distinct())
        {
            if (from != to) outgoing[from].Add(to);
        }

        var acyclic = RemoveBackEdges(count, outgoing);

        // Longest-path layering, dependencies first (Kahn's order).
        var layer = new int[count];
        var indegree = new int[count];
        foreach (var (_, to) in acyclic) indegree[to]++;
        var queue = new Queue<int>(Enumerable.Range(0, count).Where(n => indegree[n] == 0));
        var forward = Enumerable.Range(0, count).Select(_ => new List<int>()).ToArray();
        foreach (var (from, to) in acyclic) forward[from].Add(to);
        while (queue.Count > 0)
        {
            var n = queue.Dequeue();
            foreach (var m in forward[n])
            {
                layer[m] = Math.Max(layer[m], layer[n] + 1);
                if (--indegree[m] == 0) queue.Enqueue(m);
            }
        }

        var layers = count == 0 ? 0 : layer.Max() + 1;

        // Dummy nodes for long edges.
        var nodeLayer = new List<int>(layer);
        var dummy = new List<bool>(Enumerable.Repeat(false, count));
        var segments = new List<(int From, int To)>();
        var routes = new List<Route>();
        foreach (var (from, to) in acyclic)
        {
            var points = new List<int>();
            var previous = from;
            for (var l = layer[from] + 1; l < layer[to]; l++)
            {
                var d = nodeLayer.Count;
                nodeLayer.Add(l);
                dummy.Add(true);
                points.Add(d);
                segments.Add((previous, d));
                previous = d;
            }

            segments.Add((previous, to));
            routes.Add(new Route(from, to, points));
        }

        var total = nodeLayer.Count;
        var left = Enumerable.Range(0, total).Select(_ => new List<int>()).ToArray();
        var right = Enumerable.Range(0, total).Select(_ => new List<int>()).ToArray();
        foreach (var (from, to) in segments)
        {
            right[from].Add(to);
            left[to].Add(from);
        }

        var order = Enumerable.Range(0, layers).Select(l => Enumerable.Range(0, total).Where(n => nodeLayer[n] == l).ToList()).ToArray();
        var best = order.Select(o => o.ToList()).ToArray();
        var bestCrossings = Crossings(order, right);
        for (var sweep = 0; sweep < sweeps && bestCrossings > 0; sweep++)
        {
            var rightward = sweep % 2 == 0;
            for (var i = 1; i < layers; i++)
            {
                var l = rightward ? i : layers - 1 - i;
                var fixedLayer = order[rightward ? l - 1 : l + 1];
                var position = new Dictionary<int, int>();
                for (var p = 0; p < fixedLayer.Count; p++) position[fixedLayer[p]] = p;
                var neighbours = rightward ? left : right;
                var current = order[l];
                var currentIndex = current.Select((n, p) => (n, p)).ToDictionary(x => x.n, x => x.p);
                order[l] = [.. current.OrderBy(n =>
                {
                    var ns = neighbours[n];
                    // A node without neighbours on that side keeps its place.
                    return ns.Count == 0 ? currentIndex[n] : ns.Average(m => (double)position[m]);
                }).ThenBy(n => currentIndex[n])];
            }

            var crossings = Crossings(order, right);
            if (crossings < bestCrossings)
            {
                bestCrossings = crossings;
                best = order.Select(o => o.ToList()).ToArray();
            }
        }

        var nodes = new Node[total];
        for (var l = 0; l < layers; l++)
        {
            for (var p = 0; p < best[l].Count; p++) nodes[best[l][p]] = new Node(best[l][p], l, p, dummy[best[l][p]]);
        }

        return new Result(nodes, routes, layers, bestCrossings);
    }

    /// <summary>
    /// Edge crossings between adjacent layers: two segments cross when their ends are in opposite order. Counted as
    /// inversions with a Fenwick tree (segments sorted by their left end, then right end), O(E log V) per pair of
    /// layers, so a 2,000-package graph is re-counted after every sweep without cost.
    /// </summary>
    public static int Crossings(IReadOnlyList<List<int>> order, IReadOnlyList<List<int>> right)
    {
        ArgumentNullException.ThrowIfNull(order);
        ArgumentNullException.ThrowIfNull(right);
        var crossings = 0L;
        for (var l = 0; l + 1 < order.Count; l++)
        {
            var next = new Dictionary<int, int>();
            for (var p = 0; p < order[l + 1].Count; p++) next[order[l + 1][p]] = p;
            var segs = new List<(int A, int B)>();
            for (var p = 0; p < order[l].Count; p++)
            {
                foreach (var m in right[order[l][p]])
                {
                    if (next.TryGetValue(m, out var q)) segs.Add((p, q));
                }
            }

            segs.Sort();
            var tree = new int[order[l + 1].Count + 1];
            var seen = 0;
            foreach (var (_, b) in segs)
            {
                // Segments already added whose right end is strictly greater than b cross this one.
                var atMost = 0;
                for (var i = b + 1; i > 0; i -= i & -i) atMost += tree[i];
                crossings += seen - atMost;
                for (var i = b + 1; i < tree.Length; i += i & -i) tree[i]++;
                seen++;
            }
        }

        return (int)Math.Min(int.MaxValue, crossings);
    }

    private static List<(int From, int To)> RemoveBackEdges(int count, List<int>[] outgoing)
    {
        var state = new byte[count]; // 0 new, 1 on the stack, 2 done
        var kept = new List<(int, int)>();
        for (var start = 0; start < count; start++)
        {
            if (state[start] != 0) continue;
            var stack = new Stack<(int Node, int Next)>();
            stack.Push((start, 0));
            state[start] = 1;
            while (stack.Count > 0)
            {
                var (n, i) = stack.Pop();
                if (i < outgoing[n].Count)
                {
                    stack.Push((n, i + 1));
                    var m = outgoing[n][i];
                    if (state[m] == 1) continue; // a back edge: ignored
                    kept.Add((n, m));
                    if (state[m] == 0)
                    {
                        state[m] = 1;
                        stack.Push((m, 0));
                    }
                }
                else
                {
                    state[n] = 2;
                }
            }
        }

        return kept;
    }
}
