using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using Cairn.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Repository.Http;

/// <summary>One GET: a path below the server's base URL, an optional byte range and the most bytes accepted.</summary>
public sealed record FetchRequest(string Path, long MaxBytes)
{
    public (long Offset, long Length)? Range { get; init; }

    /// <summary>Ask caches on the way to revalidate (Cache-Control: no-cache), e.g. to see a new manifest now.</summary>
    public bool Revalidate { get; init; }
}

/// <summary>
/// Sends requests to a list of servers through a list of proxies, in order, like CVMFS: a server (or proxy) that
/// fails is backed off and tried last until its back-off expires. A body is never read beyond its limit, and the
/// caller's <c>accept</c> function (which verifies it) decides whether it is good; a rejected body makes the
/// fetcher try the next server. Nothing unverified leaves this class.
/// </summary>
public sealed class RemoteFetcher : IDisposable
{
    private readonly RemoteOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly List<(HttpClient Client, string Label)> _routes = [];
    private readonly ConcurrentDictionary<(int Server, int Route), (DateTimeOffset Until, int Failures)> _backoff = new();

    public RemoteFetcher(RemoteOptions options, TimeProvider time, ILogger? logger = null)
    {
        _options = options;
        _time = time;
        _log = logger ?? NullLogger.Instance;
        var proxies = options.Proxies.Count == 0 ? [null] : options.Proxies;
        foreach (var proxy in proxies)
        {
            var handler = new SocketsHttpHandler
            {
                UseProxy = proxy is not null,
                Proxy = proxy is null ? null : new WebProxy(proxy),
                AutomaticDecompression = DecompressionMethods.None,
                ConnectTimeout = options.ConnectTimeout,
                PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
                MaxConnectionsPerServer = 16,
                AllowAutoRedirect = false,
            };
            var client = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
            client.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("cairn", "1"));
            _routes.Add((client, proxy is null ? "direct" : $"proxy {proxy.Authority}"));
        }
    }

    public IReadOnlyList<Uri> Servers => _options.Servers;

    /// <summary>Requests sent so far (for tests and reports).</summary>
    public long RequestsSent => Interlocked.Read(ref _requests);

    private long _requests;

    /// <summary>
    /// Fetches and accepts a body. Returns default when every server answered 404 and <paramref name="notFoundIsNull"/>;
    /// otherwise throws a coded error listing every attempt.
    /// </summary>
    public Task<T?> FetchAsync<T>(FetchRequest request, Func<byte[], string, T> accept, bool notFoundIsNull, CancellationToken ct) =>
        FetchFromAsync(null, request, accept, notFoundIsNull, ct);

    /// <summary>As <see cref="FetchAsync"/>, from one server only (through each proxy): to compare what mirrors offer.</summary>
    public Task<T?> FetchFromServerAsync<T>(int server, FetchRequest request, Func<byte[], string, T> accept, bool notFoundIsNull, CancellationToken ct) =>
        FetchFromAsync(server, request, accept, notFoundIsNull, ct);

    /// <summary>What the attempts of one fetch met, for the next round and for the error that lists them.</summary>
    private sealed class Attempts
    {
        public List<string> Log { get; } = [];

        public int NotFound { get; set; }

        public int Rejected { get; set; }

        public int Failed { get; set; }

        /// <summary>Every server answered, and each one said 404.</summary>
        public bool OnlyNotFound => NotFound > 0 && Failed == 0 && Rejected == 0;
    }

    private async Task<T?> FetchFromAsync<T>(int? only, FetchRequest request, Func<byte[], string, T> accept, bool notFoundIsNull, CancellationToken ct)
    {
        var attempts = new Attempts();
        using var deadline = new CancellationTokenSource(_options.Deadline, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
        try
        {
            for (var round = 0; round <= _options.Retries; round++)
            {
                if (round > 0)
                {
                    // Only transport failures are worth another round (a 404 or a bad copy will not change in a second).
                    if (attempts.Failed == 0) break;
                    var pause = TimeSpan.FromTicks(_options.RetryDelay.Ticks << Math.Min(round - 1, 10));
                    _log.LogInformation("retrying '{Path}' in {Pause}s (round {Round} of {Rounds})", request.Path, pause.TotalSeconds, round + 1, _options.Retries + 1);
                    await Task.Delay(pause, _time, linked.Token).ConfigureAwait(false);
                    attempts.NotFound = attempts.Rejected = attempts.Failed = 0;
                }

                foreach (var (server, route) in Order().Where(p => only is null || p.Server == only))
                {
                    linked.Token.ThrowIfCancellationRequested();
                    var (accepted, value) = await TryAsync(server, route, request, accept, attempts, linked.Token).ConfigureAwait(false);
                    if (accepted) return value;
                }

                if (attempts.OnlyNotFound) break;
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new CairnException(ErrorCode.RemoteDeadlineExceeded,
                $"'{request.Path}' could not be fetched within {_options.Deadline.TotalSeconds:0}s (tried: {(attempts.Log.Count == 0 ? "nothing finished" : string.Join("; ", attempts.Log))})",
                "the servers or the network are too slow: check them, list a faster mirror first, or raise CAIRN_HTTP_DEADLINE");
        }

        if (attempts.OnlyNotFound && notFoundIsNull) return default;
        throw NotFetched(request, attempts);
    }

    /// <summary>One server through one route; a failure is counted in <paramref name="attempts"/>, and the server backs off for a transport failure.</summary>
    private async Task<(bool Accepted, T? Value)> TryAsync<T>(int server, int route, FetchRequest request, Func<byte[], string, T> accept, Attempts attempts, CancellationToken ct)
    {
        var baseUri = _options.Servers[server];
        var (client, label) = _routes[route];
        var uri = new Uri(baseUri, request.Path);
        var where = $"{uri} ({label})";
        try
        {
            var (status, body, why) = await GetAsync(client, uri, request, ct).ConfigureAwait(false);
            if (status == HttpStatusCode.NotFound)
            {
                attempts.NotFound++;
                attempts.Log.Add($"{where}: 404 not found");
                return (false, default);
            }

            if (body is null)
            {
                attempts.Failed++;
                attempts.Log.Add($"{where}: {why}");
                Fail(server, route, why!);
                return (false, default);
            }

            T value;
            try
            {
                value = accept(body, uri.ToString());
            }
            catch (CairnException e)
            {
                // Bad content is the server's problem with this one file, not a reason to shun the server.
                attempts.Rejected++;
                attempts.Log.Add($"{where}: rejected: {e.Message}");
                _log.LogWarning("rejected {Uri} from {Route}: {Message}", uri, label, e.Message);
                return (false, default);
            }

            _backoff.TryRemove((server, route), out _);
            return (true, value);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            attempts.Failed++;
            attempts.Log.Add($"{where}: {e.Message}");
            Fail(server, route, e.Message);
            return (false, default);
        }
    }

    /// <summary>The error for a file no server gave: missing everywhere, bad everywhere, or unreachable.</summary>
    private static CairnException NotFetched(FetchRequest request, Attempts attempts)
    {
        var tried = string.Join("; ", attempts.Log);
        if (attempts.OnlyNotFound)
        {
            return new CairnException(ErrorCode.ObjectMissing, $"'{request.Path}' is not on any server (tried: {tried})",
                "the servers may be out of date (a mirror lagging behind), or the file was removed by gc; retry later");
        }

        if (attempts.Rejected > 0 && attempts.Failed == 0)
        {
            return new CairnException(ErrorCode.RemoteContentRejected, $"every server sent a bad copy of '{request.Path}' (tried: {tried})",
                "the repository on the servers is damaged: run 'cairn verify' there, or add a healthy mirror to --repo");
        }

        return new CairnException(ErrorCode.RemoteUnavailable, $"could not fetch '{request.Path}' from any server (tried: {tried})",
            "check the server URLs (--repo), the proxies (--proxy, HTTP_PROXY) and the network; failed servers are retried after a back-off");
    }

    /// <summary>Servers in order, each through every route; pairs in back-off go last, soonest-expiring first.</summary>
    private List<(int Server, int Route)> Order()
    {
        var now = _time.GetUtcNow();
        var pairs = new List<(int, int, DateTimeOffset)>();
        for (var s = 0; s < _options.Servers.Count; s++)
        {
            for (var r = 0; r < _routes.Count; r++)
            {
                var until = _backoff.TryGetValue((s, r), out var b) && b.Until > now ? b.Until : DateTimeOffset.MinValue;
                pairs.Add((s, r, until));
            }
        }

        // A stable sort keeps the configured order among healthy pairs.
        return pairs.OrderBy(p => p.Item3).Select(p => (p.Item1, p.Item2)).ToList();
    }

    private void Fail(int server, int route, string why)
    {
        var now = _time.GetUtcNow();
        _backoff.AddOrUpdate((server, route),
            _ => (now + _options.InitialBackoff, 1),
            (_, old) =>
            {
                var failures = old.Failures + 1;
                var delay = TimeSpan.FromTicks(Math.Min(_options.MaxBackoff.Ticks, _options.InitialBackoff.Ticks << Math.Min(failures - 1, 20)));
                return (now + delay, failures);
            });
        _log.LogWarning("server {Server} via {Route} failed ({Why}); backing off", _options.Servers[server], _routes[route].Label, why);
    }

    /// <summary>One GET. A failure comes back as a null body and the reason; only <paramref name="ct"/> (the caller's, or the deadline) throws.</summary>
    private async Task<(HttpStatusCode Status, byte[]? Body, string? Why)> GetAsync(HttpClient client, Uri uri, FetchRequest request, CancellationToken ct)
    {
        using var timeout = new CancellationTokenSource(_options.RequestTimeout, _time);
        // The low-speed guard: re-armed each time LowSpeedLimit × LowSpeedTime bytes have arrived, so it fires only
        // when a whole window passes with less (a server that trickles, or stalls before or during the body).
        var lowSpeed = _options.LowSpeedLimit > 0;
        using var stall = lowSpeed ? new CancellationTokenSource(_options.LowSpeedTime, _time) : new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token, stall.Token);
        var windowBytes = 0L;
        var windowNeed = (long)Math.Min(long.MaxValue / 2, _options.LowSpeedLimit * _options.LowSpeedTime.TotalSeconds);
        try
        {
            using var message = new HttpRequestMessage(HttpMethod.Get, uri);
            if (request.Range is { } range)
            {
                message.Headers.Range = new RangeHeaderValue(range.Offset, range.Offset + range.Length - 1);
            }

            if (request.Revalidate)
            {
                message.Headers.CacheControl = new CacheControlHeaderValue { NoCache = true };
            }

            Interlocked.Increment(ref _requests);
            using var response = await client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, linked.Token).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound) return (HttpStatusCode.NotFound, null, null);
            var limit = request.Range?.Length ?? request.MaxBytes;
            if (Unusable(response, request, limit) is { } unusable) return (response.StatusCode, null, unusable);

            // Read at most limit + 1 bytes: one more than allowed is enough to know the body is too long.
            await using var stream = await response.Content.ReadAsStreamAsync(linked.Token).ConfigureAwait(false);
            var buffer = new byte[Math.Min(limit + 1, response.Content.Headers.ContentLength is { } cl ? cl + 1 : Math.Min(limit + 1, 1 << 20))];
            var total = 0;
            while (true)
            {
                if (total == buffer.Length)
                {
                    if (total > limit) return (response.StatusCode, null, $"body exceeds the limit of {limit} bytes");
                    Array.Resize(ref buffer, (int)Math.Min(limit + 1, Math.Max(buffer.Length * 2L, 4096)));
                }

                var n = await stream.ReadAsync(buffer.AsMemory(total), linked.Token).ConfigureAwait(false);
                if (n == 0) break;
                total += n;
                if (total > limit) return (response.StatusCode, null, $"body exceeds the limit of {limit} bytes");
                windowBytes += n;
                if (lowSpeed && windowBytes >= windowNeed)
                {
                    windowBytes = 0;
                    stall.CancelAfter(_options.LowSpeedTime);
                }
            }

            if (response.Content.Headers.ContentLength is { } expected && expected != total)
            {
                return (response.StatusCode, null, $"truncated body: {total} of {expected} bytes");
            }

            if (request.Range is { } want && total != want.Length)
            {
                return (response.StatusCode, null, $"truncated body: {total} of {want.Length} bytes");
            }

            return (response.StatusCode, total == buffer.Length ? buffer : buffer.AsSpan(0, total).ToArray(), null);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && stall.IsCancellationRequested)
        {
            return (0, null, $"too slow: {windowBytes} bytes in {_options.LowSpeedTime.TotalSeconds:0.#}s, below the low-speed limit of {_options.LowSpeedLimit} bytes/s");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return (0, null, $"timed out after {_options.RequestTimeout.TotalSeconds:0.#}s");
        }
    }

    /// <summary>Why a response (not a 404) cannot hold the file: a wrong status or range, or a declared length over the limit.</summary>
    private static string? Unusable(HttpResponseMessage response, FetchRequest request, long limit)
    {
        if (request.Range is { } r)
        {
            if (response.StatusCode == HttpStatusCode.PartialContent)
            {
                if (response.Content.Headers.ContentRange is not { From: { } from } || from != r.Offset)
                {
                    return $"wrong Content-Range {response.Content.Headers.ContentRange} for bytes {r.Offset}-";
                }
            }
            else if (response.StatusCode != HttpStatusCode.OK || r.Offset != 0)
            {
                return $"HTTP {(int)response.StatusCode} to a range request";
            }
        }
        else if (response.StatusCode != HttpStatusCode.OK)
        {
            return $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}";
        }

        return response.Content.Headers.ContentLength is { } declared && declared > limit
            ? $"body of {declared} bytes exceeds the limit of {limit}"
            : null;
    }

    public void Dispose()
    {
        foreach (var (client, _) in _routes) client.Dispose();
    }
}
