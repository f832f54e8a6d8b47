using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Cairn.Server;

/// <summary>Counters exposed at /metrics in the Prometheus text format (version 0.0.4).</summary>
public sealed class ServerMetrics
{
    private readonly ConcurrentDictionary<(string Kind, string Method, int Status), long> _requests = new();
    private readonly ConcurrentDictionary<string, long> _bytes = new(StringComparer.Ordinal);
    private long _objects;
    private long _notModified;

    public void Record(string kind, string method, int status, long bytes)
    {
        _requests.AddOrUpdate((kind, method, status), 1, (_, n) => n + 1);
        if (bytes > 0) _bytes.AddOrUpdate(kind, bytes, (_, n) => n + bytes);
        if (status == 304) Interlocked.Increment(ref _notModified);
    }

    public void ObjectServed() => Interlocked.Increment(ref _objects);

    /// <summary>Requests of one kind (pack, index, manifest, …) whatever their status.</summary>
    public long Requests(string? kind = null) => _requests.Where(kv => kind is null || kv.Key.Kind == kind).Sum(kv => kv.Value);

    public string Render()
    {
        var sb = new StringBuilder();
        sb.Append("# HELP cairn_http_requests_total HTTP requests by kind of file, method and status.\n");
        sb.Append("# TYPE cairn_http_requests_total counter\n");
        foreach (var ((kind, method, status), n) in _requests.OrderBy(kv => kv.Key))
        {
            sb.Append(CultureInfo.InvariantCulture, $"cairn_http_requests_total{{kind=\"{kind}\",method=\"{method}\",status=\"{status}\"}} {n}\n");
        }

        sb.Append("# HELP cairn_http_responses_total HTTP responses by status.\n");
        sb.Append("# TYPE cairn_http_responses_total counter\n");
        foreach (var g in _requests.GroupBy(kv => kv.Key.Status).OrderBy(g => g.Key))
        {
            sb.Append(CultureInfo.InvariantCulture, $"cairn_http_responses_total{{status=\"{g.Key}\"}} {g.Sum(kv => kv.Value)}\n");
        }

        sb.Append("# HELP cairn_http_response_bytes_total Body bytes sent, by kind of file.\n");
        sb.Append("# TYPE cairn_http_response_bytes_total counter\n");
        foreach (var (kind, n) in _bytes.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            sb.Append(CultureInfo.InvariantCulture, $"cairn_http_response_bytes_total{{kind=\"{kind}\"}} {n}\n");
        }

        sb.Append("# HELP cairn_http_not_modified_total Conditional requests answered 304 (the client's cache was current).\n");
        sb.Append("# TYPE cairn_http_not_modified_total counter\n");
        sb.Append(CultureInfo.InvariantCulture, $"cairn_http_not_modified_total {Interlocked.Read(ref _notModified)}\n");
        sb.Append("# HELP cairn_objects_served_total Objects served from /objects/<digest>.\n");
        sb.Append("# TYPE cairn_objects_served_total counter\n");
        sb.Append(CultureInfo.InvariantCulture, $"cairn_objects_served_total {Interlocked.Read(ref _objects)}\n");
        return sb.ToString();
    }
}
