using System.Globalization;

namespace Cairn.Web;

/// <summary>The dependency graph as an SVG drawn on the server (<see cref="LayeredLayout"/>), inline in a page or alone.</summary>
internal static class GraphPage
{
    public const int ColumnWidth = 250;
    public const int NodeWidth = 200;
    public const int NodeHeight = 24;
    public const int RowPitch = 32;
    public const int Margin = 12;
    public const int MaxLabel = 30;

    public static (string Fill, string Stroke) Colours(string status) => status switch
    {
        StackStatus.UpToDate => ("#dcefdc", "#1b5e20"),
        StackStatus.Building => ("#dde9fb", "#0d47a1"),
        StackStatus.Failed => ("#fbe3e3", "#9b1c1c"),
        StackStatus.Blocked => ("#fdebd3", "#8a4b00"),
        _ => ("#eceff1", "#4a5561"),
    };

    public static async Task<(GraphView Model, string Svg)> BuildAsync(PageContext page, CancellationToken ct)
    {
        var manifest = await page.SelectedRevisionAsync(ct);
        var catalog = await page.CatalogAsync(manifest, ct);
        var stack = await StackStatus.ComputeAsync(page, catalog, ct);
        var focus = page.Query("product");
        var nodes = stack.Nodes.ToList();
        if (focus is not null)
        {
            if (!stack.Dependencies.ContainsKey(focus))
            {
                throw new Cairn.Core.CairnException(Cairn.Core.ErrorCode.ProductNotFound, $"{focus} is not in the graph of revision {manifest.Revision}", "give PLATFORM/NAME/VERSION of a product in the list");
            }

            nodes = [.. Closure(stack, focus).Order(StringComparer.Ordinal)];
        }

        var index = nodes.Select((n, i) => (n, i)).ToDictionary(x => x.n, x => x.i, StringComparer.Ordinal);
        var edges = new List<(int, int)>();
        foreach (var n in nodes)
        {
            foreach (var d in stack.Dependencies[n])
            {
                if (index.TryGetValue(d, out var from)) edges.Add((from, index[n]));
            }
        }

        var layout = LayeredLayout.Compute(nodes.Count, edges);
        var published = catalog.Products.Select(p => p.PathInRepository).ToHashSet(StringComparer.Ordinal);
        var views = new List<GraphNodeView>();
        foreach (var node in layout.Nodes.Where(n => !n.Dummy))
        {
            var id = nodes[node.Id];
            var (x, y) = Position(node);
            var parts = id.Split('/');
            var url = parts.Length == 3 && published.Contains(id)
                ? page.ProductUrl(parts[0], parts[1], parts[2])
                : page.IsGateway ? page.Url("/builds#" + Anchor(id)) : null;
            views.Add(new GraphNodeView(id, parts.Length == 3 ? $"{parts[1]}/{parts[2]}" : id, stack.Status[id], node.Layer, node.Position, x, y, url));
        }

        var model = new GraphView(manifest.Revision, focus, [.. views.OrderBy(v => v.Id, StringComparer.Ordinal)],
            [.. edges.Select(e => new GraphEdgeView(nodes[e.Item1], nodes[e.Item2]))], layout.Crossings,
            StackStatus.All.ToDictionary(s => s, s => views.Count(v => v.Status == s)));
        return (model, Svg(model, layout, nodes, stack));
    }

    public static string Anchor(string product) => "p-" + product.Replace('/', '-');

    private static (double X, double Y) Position(LayeredLayout.Node node) =>
        (Margin + node.Layer * ColumnWidth, Margin + node.Position * RowPitch);

    private static HashSet<string> Closure(StackStatus stack, string focus)
    {
        var keep = new HashSet<string>(StringComparer.Ordinal) { focus };
        var todo = new Stack<string>([focus]);
        while (todo.Count > 0)
        {
            foreach (var d in stack.Dependencies[todo.Pop()])
            {
                if (stack.Dependencies.ContainsKey(d) && keep.Add(d)) todo.Push(d);
            }
        }

        // And what depends on it, so the picture shows what a change to it touches.
        var dependants = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var (node, ds) in stack.Dependencies)
        {
            foreach (var d in ds)
            {
                if (!dependants.TryGetValue(d, out var list)) dependants[d] = list = [];
                list.Add(node);
            }
        }

        var up = new Stack<string>([focus]);
        while (up.Count > 0)
        {
            foreach (var node in dependants.GetValueOrDefault(up.Pop()) ?? [])
            {
                if (keep.Add(node)) up.Push(node);
            }
        }

        return keep;
    }

    private static string F(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);

    private static string Svg(GraphView model, LayeredLayout.Result layout, List<string> ids, StackStatus stack)
    {
        var rows = layout.Layers == 0 ? 0 : layout.Nodes.GroupBy(n => n.Layer).Max(g => g.Count());
        var width = Margin * 2 + Math.Max(1, layout.Layers) * ColumnWidth - (ColumnWidth - NodeWidth);
        var height = Margin * 2 + Math.Max(1, rows) * RowPitch;
        var svg = new HtmlWriter();
        svg.Open("svg", ("xmlns", "http://www.w3.org/2000/svg"), ("width", F(width)), ("height", F(height)), ("viewBox", $"0 0 {F(width)} {F(height)}"),
            ("class", "graph-svg"), ("aria-labelledby", "graph-title"), ("font-family", "system-ui, sans-serif"), ("font-size", "12"));
        svg.Element("title", $"Dependency graph of revision {model.Revision}: {model.Nodes.Count} packages", ("id", "graph-title"));
        svg.Open("g", ("class", "edges"), ("fill", "none"), ("stroke", "#8c959f"), ("stroke-width", "1.2"));
        var byId = layout.Nodes.ToDictionary(n => n.Id);
        foreach (var route in layout.Routes)
        {
            var points = new List<(double X, double Y)>();
            var (fx, fy) = Position(byId[route.From]);
            points.Add((fx + NodeWidth, fy + NodeHeight / 2.0));
            foreach (var d in route.Points)
            {
                var (dx, dy) = Position(byId[d]);
                points.Add((dx, dy + NodeHeight / 2.0));
                points.Add((dx + NodeWidth, dy + NodeHeight / 2.0));
            }

            var (tx, ty) = Position(byId[route.To]);
            points.Add((tx, ty + NodeHeight / 2.0));
            var path = new System.Text.StringBuilder($"M{F(points[0].X)},{F(points[0].Y)}");
            for (var i = 1; i < points.Count; i++)
            {
                var (ax, ay) = points[i - 1];
                var (bx, by) = points[i];
                var mid = (ax + bx) / 2;
                path.Append(CultureInfo.InvariantCulture, $" C{F(mid)},{F(ay)} {F(mid)},{F(by)} {F(bx)},{F(by)}");
            }

            svg.Void("path", ("d", path.ToString()), ("data-from", ids[route.From]), ("data-to", ids[route.To])).Close("path");
        }

        svg.Close("g");
        svg.Open("g", ("class", "nodes"));
        foreach (var node in model.Nodes)
        {
            var (fill, stroke) = Colours(node.Status);
            var label = node.Label.Length > MaxLabel ? node.Label[..(MaxLabel - 1)] + "…" : node.Label;
            var tooltip = $"{node.Id}: {node.Status}" + (stack.Reason.TryGetValue(node.Id, out var why) ? $" — {why}" : "");
            if (node.Url is not null) svg.Open("a", ("href", node.Url), ("class", "node"), ("data-product", node.Id), ("data-status", node.Status));
            else svg.Open("g", ("class", "node"), ("data-product", node.Id), ("data-status", node.Status));
            svg.Element("title", tooltip);
            svg.Void("rect", ("x", F(node.X)), ("y", F(node.Y)), ("width", F(NodeWidth)), ("height", F(NodeHeight)), ("rx", "4"),
                ("fill", fill), ("stroke", stroke), ("stroke-width", node.Status == StackStatus.UpToDate ? "1.5" : "2.5")).Close("rect");
            svg.Element("text", label, ("x", F(node.X + 8)), ("y", F(node.Y + 16)), ("fill", "#1b1f24"));
            svg.Close(node.Url is not null ? "a" : "g");
        }

        svg.Close("g");
        svg.Close("svg");
        return svg.ToString();
    }

    public static async Task<object> PageAsync(PageContext page, CancellationToken ct)
    {
        var (model, svg) = await BuildAsync(page, ct);
        return new Page<GraphView>(model.Focus is null ? "Dependency graph" : $"Graph of {model.Focus}", "graph", model, DashboardJson.Default.GraphView, (html, pg, m) =>
        {
            html.Element("h1", m.Focus is null ? $"Dependency graph (revision {m.Revision})" : $"Dependencies and dependants of {m.Focus}");
            html.Open("ul", ("class", "legend"), ("aria-label", "Legend"));
            foreach (var (status, n) in m.Statuses)
            {
                html.Open("li");
                Layout.Badge(html, status, $"{status}: {n}");
                html.Close("li");
            }

            html.Close("ul");
            html.Element("p", $"{m.Nodes.Count} packages, {m.Edges.Count} dependencies; dependencies on the left. " +
                "Laid out in layers by longest path, ordered by barycenters to reduce crossings.", ("class", "muted"));
            html.Open("p").Link(pg.Url("/graph.svg") + (m.Focus is null ? "" : "?product=" + Uri.EscapeDataString(m.Focus)), "The picture alone (SVG)").Close("p");
            html.Open("div", ("class", "graph"), ("id", "graph"), ("tabindex", "0"), ("role", "region"), ("aria-label", "Dependency graph"));
            html.Trusted(svg);
            html.Close("div");
        });
    }

    public static async Task<object> SvgAsync(PageContext page, CancellationToken ct)
    {
        var (_, svg) = await BuildAsync(page, ct);
        return new RawPage("image/svg+xml; charset=utf-8", "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg);
    }
}
