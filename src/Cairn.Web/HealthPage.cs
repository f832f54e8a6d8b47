using System.Globalization;

namespace Cairn.Web;

/// <summary>
/// Samples the server's /metrics text at a fixed interval and keeps four hours of it in memory, so the health page
/// can plot request and byte rates without a time-series database. Counters are summed per kind of file.
/// </summary>
internal sealed class MetricsSampler(Func<string>? source, TimeProvider time, TimeSpan interval)
{
    public const int Samples = 480;

    private readonly Lock _lock = new();
    private readonly Queue<(DateTimeOffset At, Dictionary<string, double> Counters)> _samples = new();
    private ITimer? _timer;

    public TimeSpan Interval => interval;

    public void Start(CancellationToken stopping)
    {
        if (source is null) return;
        Sample();
        _timer = time.CreateTimer(_ => Sample(), null, interval, interval);
        stopping.Register(() => _timer.Dispose());
    }

    public void Sample()
    {
        if (source is null) return;
        var counters = Parse(source());
        lock (_lock)
        {
            _samples.Enqueue((time.GetUtcNow(), counters));
            while (_samples.Count > Samples + 1) _samples.Dequeue();
        }
    }

    /// <summary>Prometheus text: sums every sample of a metric by its "kind" label (or the metric alone when it has none).</summary>
    public static Dictionary<string, double> Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var space = line.LastIndexOf(' ');
            if (space <= 0 || !double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var value)) continue;
            var series = line[..space];
            var brace = series.IndexOf('{', StringComparison.Ordinal);
            var name = brace < 0 ? series : series[..brace];
            var kind = "";
            var k = series.IndexOf("kind=\"", StringComparison.Ordinal);
            if (k >= 0)
            {
                var end = series.IndexOf('"', k + 6);
                if (end > k) kind = "{" + series[(k + 6)..end] + "}";
            }

            var key = name + kind;
            result[key] = result.GetValueOrDefault(key) + value;
        }

        return result;
    }

    /// <summary>Per-second rates of each counter between consecutive samples, oldest first.</summary>
    public IReadOnlyList<SeriesView> Rates()
    {
        List<(DateTimeOffset At, Dictionary<string, double> Counters)> samples;
        lock (_lock) samples = [.. _samples];
        if (samples.Count < 2) return [];
        var names = samples[^1].Counters.Keys.Where(k => k.StartsWith("cairn_http_requests_total", StringComparison.Ordinal) || k.StartsWith("cairn_http_response_bytes_total", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).ToList();
        var series = new List<SeriesView>();
        foreach (var name in names)
        {
            var values = new List<double>();
            for (var i = 1; i < samples.Count; i++)
            {
                var seconds = Math.Max(1e-3, (samples[i].At - samples[i - 1].At).TotalSeconds);
                var delta = samples[i].Counters.GetValueOrDefault(name) - samples[i - 1].Counters.GetValueOrDefault(name);
                values.Add(Math.Max(0, delta) / seconds);
            }

            var label = name.Replace("cairn_http_requests_total", "requests/s", StringComparison.Ordinal).Replace("cairn_http_response_bytes_total", "bytes/s", StringComparison.Ordinal);
            series.Add(new SeriesView(label, name.Contains("bytes", StringComparison.Ordinal) ? "B/s" : "req/s", values, values[^1]));
        }

        return series;
    }
}

internal static class HealthPage
{
    public static async Task<object> PageAsync(PageContext page, CancellationToken ct)
    {
        var head = await page.HeadAsync(ct);
        var catalog = await page.CatalogAsync(head, ct);
        var revisions = 0;
        await foreach (var _ in page.Options.Repository.Revisions.ListRevisionsAsync(ct)) revisions++;
        var model = new HealthView(head.Revision, catalog.Products.Count, catalog.Products.Sum(p => p.Size), catalog.Products.Sum(p => p.Files), revisions,
            page.Site.Sampler.Interval.TotalSeconds, page.Site.Sampler.Rates());
        return new Page<HealthView>("Health", "health", model, DashboardJson.Default.HealthView, (html, pg, m) =>
        {
            html.Element("h1", "Health");
            Layout.Facts(html, ("Head revision", m.Revision.ToString(CultureInfo.InvariantCulture)), ("Kept revisions", m.Revisions.ToString(CultureInfo.InvariantCulture)),
                ("Products", m.Products.ToString(CultureInfo.InvariantCulture)), ("Size of products", $"{Layout.Size(m.ProductBytes)} in {m.Files} files"));
            html.Element("h2", "Requests (from /metrics)");
            if (m.Series.Count == 0)
            {
                html.Element("p", $"Collecting: the first rates appear after two samples ({m.SampleSeconds} s apart).", ("class", "muted"));
                return;
            }

            html.Open("table", ("id", "rates")).Open("thead").Open("tr");
            foreach (var h in new[] { "Series", "Last hours", "Now" }) html.Element("th", h, ("scope", "col"));
            html.Close("tr").Close("thead").Open("tbody");
            foreach (var s in m.Series)
            {
                html.Open("tr").Element("td", s.Name).Open("td");
                Sparkline(html, s);
                html.Close("td").Element("td", s.Unit == "B/s" ? Layout.Size((long)s.Latest) + "/s" : s.Latest.ToString("0.##", CultureInfo.InvariantCulture) + " req/s", ("class", "num")).Close("tr");
            }

            html.Close("tbody").Close("table");
        });
    }

    /// <summary>A 240×32 polyline of the values, scaled to their maximum.</summary>
    public static void Sparkline(HtmlWriter html, SeriesView s)
    {
        const double w = 240, h = 32;
        var max = Math.Max(1e-9, s.Values.Max());
        var step = s.Values.Count > 1 ? w / (s.Values.Count - 1) : w;
        var points = string.Join(' ', s.Values.Select((v, i) => $"{(i * step).ToString("0.#", CultureInfo.InvariantCulture)},{(h - 2 - v / max * (h - 4)).ToString("0.#", CultureInfo.InvariantCulture)}"));
        html.Open("svg", ("class", "spark"), ("width", "240"), ("height", "32"), ("viewBox", "0 0 240 32"), ("role", "img"), ("aria-label", $"{s.Name}: up to {max.ToString("0.##", CultureInfo.InvariantCulture)} {s.Unit}"));
        html.Void("polyline", ("points", points), ("fill", "none"), ("stroke", "#0b57a4"), ("stroke-width", "1.5")).Close("polyline");
        html.Close("svg");
    }
}
