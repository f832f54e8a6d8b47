namespace Cairn.Web.Tests;

public sealed class LayeredLayoutTests
{
    [Fact]
    public void LayersAreLongestPathsFromTheLeaves()
    {
        // 0 ← 1 ← 2, and 0 ← 2 directly: 2 sits one layer after its deepest dependency.
        var r = LayeredLayout.Compute(3, [(0, 1), (1, 2), (0, 2)]);
        var layers = r.Nodes.Where(n => !n.Dummy).OrderBy(n => n.Id).Select(n => n.Layer).ToList();
        Assert.Equal([0, 1, 2], layers);
        Assert.Equal(3, r.Layers);
        // The long edge 0 → 2 passes through one dummy node in layer 1.
        var route = Assert.Single(r.Routes, x => x.From == 0 && x.To == 2);
        var dummy = Assert.Single(route.Points);
        Assert.Equal(1, r.Nodes.Single(n => n.Id == dummy).Layer);
    }

    [Fact]
    public void BarycenterOrderingRemovesAnAvoidableCrossing()
    {
        // Layer 0: a(0), b(1); layer 1: c(2) depends on b, d(3) depends on a. Initial order c, d crosses once.
        var r = LayeredLayout.Compute(4, [(1, 2), (0, 3)]);
        Assert.Equal(0, r.Crossings);
        var pos = r.Nodes.ToDictionary(n => n.Id, n => n.Position);
        Assert.Equal(pos[0] < pos[1], pos[3] < pos[2]);
    }

    [Fact]
    public void ACycleDoesNotHangAndEveryNodeIsPlacedOnce()
    {
        var r = LayeredLayout.Compute(3, [(0, 1), (1, 2), (2, 0)]);
        Assert.Equal([0, 1, 2], r.Nodes.Where(n => !n.Dummy).Select(n => n.Id).Order());
    }

    [Fact]
    public void ThreeHundredPackagesStayReadable()
    {
        // A random stack: each package depends on up to three earlier ones.
        var random = new Random(15);
        var edges = new List<(int, int)>();
        for (var n = 1; n < 300; n++)
        {
            for (var k = random.Next(0, 4); k > 0; k--) edges.Add((random.Next(0, n), n));
        }

        var r = LayeredLayout.Compute(300, edges);
        var real = r.Nodes.Where(n => !n.Dummy).ToList();
        Assert.Equal(300, real.Count);
        // Every dependency is drawn left of its dependant, and no two boxes share a slot.
        var layer = r.Nodes.ToDictionary(n => n.Id, n => n.Layer);
        Assert.All(edges.Distinct(), e => Assert.True(layer[e.Item1] < layer[e.Item2]));
        Assert.Equal(r.Nodes.Count, r.Nodes.Select(n => (n.Layer, n.Position)).Distinct().Count());

        // Barycenter sweeps must do better than the initial (id) order.
        var initial = Enumerable.Range(0, r.Layers).Select(l => r.Nodes.Where(n => n.Layer == l).OrderBy(n => n.Id).Select(n => n.Id).ToList()).ToList();
        var right = Enumerable.Range(0, r.Nodes.Count).Select(_ => new List<int>()).ToArray();
        foreach (var route in r.Routes)
        {
            var chain = new List<int> { route.From };
            chain.AddRange(route.Points);
            chain.Add(route.To);
            for (var i = 0; i + 1 < chain.Count; i++) right[chain[i]].Add(chain[i + 1]);
        }

        var before = LayeredLayout.Crossings(initial, right);
        Assert.Equal(BruteForceCrossings(initial, right), before);
        Assert.True(r.Crossings < before, $"{r.Crossings} crossings after ordering, {before} before");
    }

    /// <summary>Every pair of segments between adjacent layers, compared directly.</summary>
    private static int BruteForceCrossings(List<List<int>> order, List<int>[] right)
    {
        var crossings = 0;
        for (var l = 0; l + 1 < order.Count; l++)
        {
            var segs = new List<(int A, int B)>();
            for (var p = 0; p < order[l].Count; p++)
            {
                foreach (var m in right[order[l][p]])
                {
                    var q = order[l + 1].IndexOf(m);
                    if (q >= 0) segs.Add((p, q));
                }
            }

            for (var i = 0; i < segs.Count; i++)
            {
                for (var j = i + 1; j < segs.Count; j++)
                {
                    if ((segs[i].A - segs[j].A) * (segs[i].B - segs[j].B) < 0) crossings++;
                }
            }
        }

        return crossings;
    }
}
