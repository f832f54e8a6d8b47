using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;

namespace Cairn.Gateway.Client;

/// <summary>
/// <see cref="IGateway"/> over HTTP (docs/format/gateway-api.md). Errors come back as <see cref="CairnException"/>
/// with the gateway's code. Only idempotent calls are retried (whoami, capabilities, heartbeat, missing objects,
/// object uploads, coherence); a claim, a commit, a release or a failure report is sent once, because repeating it
/// after a lost answer could claim twice or commit twice — the caller decides.
/// </summary>
public sealed class GatewayClient : IGateway, IDisposable
{
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly TimeProvider _time;

    /// <param name="baseUrl">The gateway, e.g. http://127.0.0.1:8090/.</param>
    /// <param name="token">The site token (cairn_…); null for the public calls (coherence) only.</param>
    public GatewayClient(Uri baseUrl, string? token, HttpClient? http = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        if (baseUrl.Scheme != Uri.UriSchemeHttp && baseUrl.Scheme != Uri.UriSchemeHttps)
        {
            throw new CairnException(ErrorCode.Usage, $"'{baseUrl}' is not a gateway URL", "pass --gateway http(s)://HOST:PORT");
        }

        _ownsHttp = http is null;
        _http = http ?? new HttpClient { Timeout = TimeSpan.FromMinutes(10) };
        BaseUrl = baseUrl.AbsoluteUri.EndsWith('/') ? baseUrl : new Uri(baseUrl.AbsoluteUri + "/");
        Token = token?.Trim();
        _time = time ?? TimeProvider.System;
    }

    /// <summary>A client whose token is read from <paramref name="tokenFile"/> (a CI secret file).</summary>
    public static GatewayClient FromTokenFile(Uri baseUrl, string tokenFile, HttpClient? http = null, TimeProvider? time = null)
    {
        string token;
        try
        {
            token = File.ReadAllText(tokenFile).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CairnException(ErrorCode.Usage, $"cannot read the site token file '{tokenFile}': {e.Message}", "pass --token-file with the file 'cairn gateway token issue --out' wrote", e);
        }

        return new GatewayClient(baseUrl, token, http, time);
    }

    public Uri BaseUrl { get; }

    public string? Token { get; }

    /// <summary>Attempts of an idempotent call (first try included).</summary>
    public int Attempts { get; init; } = 4;

    public Task<SiteIdentity> WhoAmIAsync(CancellationToken ct) =>
        GetAsync("v1/whoami", CoordinationJson.Default.SiteIdentity, ct);

    public Task<Site> DeclareCapabilitiesAsync(SiteCapabilities capabilities, CancellationToken ct) =>
        SendAsync(HttpMethod.Put, "v1/site/capabilities", capabilities, CoordinationJson.Default.SiteCapabilities, CoordinationJson.Default.Site, idempotent: true, ct);

    public Task<JobOffer> RequestJobAsync(JobRequest job, CancellationToken ct) =>
        SendAsync(HttpMethod.Post, "v1/jobs", job, CoordinationJson.Default.JobRequest, CoordinationJson.Default.JobOffer, idempotent: false, ct);

    public Task<Claim> HeartbeatAsync(string buildKey, long fencingToken, CancellationToken ct) =>
        SendAsync(HttpMethod.Post, "v1/claims/heartbeat", new ClaimTokenRequest(buildKey, fencingToken), CoordinationJson.Default.ClaimTokenRequest, CoordinationJson.Default.Claim, idempotent: true, ct);

    public async Task<bool> ReleaseAsync(string buildKey, long fencingToken, CancellationToken ct) =>
        (await SendAsync(HttpMethod.Post, "v1/claims/release", new ClaimTokenRequest(buildKey, fencingToken), CoordinationJson.Default.ClaimTokenRequest, CoordinationJson.Default.ReleaseResponse, idempotent: false, ct).ConfigureAwait(false)).Released;

    public async Task<IReadOnlyList<Digest>> MissingObjectsAsync(IReadOnlyList<Digest> digests, CancellationToken ct) =>
        (await SendAsync(HttpMethod.Post, "v1/objects/missing", new MissingObjectsRequest(digests), CoordinationJson.Default.MissingObjectsRequest, CoordinationJson.Default.MissingObjectsResponse, idempotent: true, ct).ConfigureAwait(false)).Missing;

    public async Task PutObjectAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct)
    {
        await ExecuteAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Put, new Uri(BaseUrl, $"v1/objects/{digest}")) { Content = new ReadOnlyMemoryContent(content) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            return request;
        }, idempotent: true, async _ => 0, ct).ConfigureAwait(false);
    }

    public Task<CommitOutcome> CommitAsync(ProductCommit commit, CancellationToken ct) =>
        SendAsync(HttpMethod.Post, "v1/commits", commit, CoordinationJson.Default.ProductCommit, CoordinationJson.Default.CommitOutcome, idempotent: false, ct);

    public Task<BuildResult> ReportFailureAsync(BuildResult result, long fencingToken, CancellationToken ct) =>
        SendAsync(HttpMethod.Post, "v1/failures", new FailureReport(result, fencingToken), CoordinationJson.Default.FailureReport, CoordinationJson.Default.BuildResult, idempotent: false, ct);

    public Task<GatewayCoherence> GetCoherenceAsync(string buildKey, CancellationToken ct) =>
        GetAsync($"v1/coherence/{Uri.EscapeDataString(buildKey)}", CoordinationJson.Default.GatewayCoherence, ct);

    public Task<IReadOnlyList<GatewayCoherence>> FindCoherenceAsync(string? product, CancellationToken ct) =>
        GetAsync(product is null ? "v1/coherence" : $"v1/coherence?product={Uri.EscapeDataString(product)}", CoordinationJson.Default.IReadOnlyListGatewayCoherence, ct);

    // GETs are all idempotent.
    private Task<T> GetAsync<T>(string path, JsonTypeInfo<T> answer, CancellationToken ct) =>
        SendAsync<T>(HttpMethod.Get, path, null, answer, idempotent: true, ct);

    private Task<T> SendAsync<TBody, T>(HttpMethod method, string path, TBody body, JsonTypeInfo<TBody> bodyType, JsonTypeInfo<T> answer, bool idempotent, CancellationToken ct) =>
        SendAsync(method, path, () => JsonContent.Create(body, bodyType), answer, idempotent, ct);

    // The body is made anew for each attempt: a request and its content are disposed after it is sent.
    private Task<T> SendAsync<T>(HttpMethod method, string path, Func<HttpContent>? body, JsonTypeInfo<T> answer, bool idempotent, CancellationToken ct) =>
        ExecuteAsync(() =>
        {
            var request = new HttpRequestMessage(method, new Uri(BaseUrl, path));
            if (body is not null) request.Content = body();
            return request;
        }, idempotent, async response =>
        {
            try
            {
                return await response.Content.ReadFromJsonAsync(answer, ct).ConfigureAwait(false)
                    ?? throw new JsonException("the answer is null");
            }
            catch (JsonException e)
            {
                throw new CairnException(ErrorCode.GatewayProtocol, $"the gateway's answer to {method} {path} is not valid JSON: {e.Message}",
                    "check that --gateway names a Cairn gateway of a compatible version", e);
            }
        }, ct);

    private async Task<T> ExecuteAsync<T>(Func<HttpRequestMessage> makeRequest, bool idempotent, Func<HttpResponseMessage, Task<T>> read, CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(200);
        for (var attempt = 1; ; attempt++)
        {
            using var request = makeRequest();
            if (Token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token);
            HttpResponseMessage response;
            try
            {
                response = await _http.SendAsync(request, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException || (e is TaskCanceledException && !ct.IsCancellationRequested))
            {
                if (idempotent && attempt < Attempts)
                {
                    await Task.Delay(delay, _time, ct).ConfigureAwait(false);
                    delay *= 2;
                    continue;
                }

                throw new CairnException(ErrorCode.GatewayUnavailable, $"the gateway at {BaseUrl} did not answer {request.Method} {request.RequestUri?.AbsolutePath}: {e.Message}",
                    idempotent ? $"tried {attempt} times; check that cairn gateway runs there" : "check that cairn gateway runs there; this call is not retried automatically", e);
            }

            using (response)
            {
                if (response.IsSuccessStatusCode) return await read(response).ConfigureAwait(false);
                var status = (int)response.StatusCode;
                if (idempotent && attempt < Attempts && status is 502 or 503 or 504)
                {
                    await Task.Delay(delay, _time, ct).ConfigureAwait(false);
                    delay *= 2;
                    continue;
                }

                throw await ErrorFromAsync(request, response, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task<CairnException> ErrorFromAsync(HttpRequestMessage request, HttpResponseMessage response, CancellationToken ct)
    {
        var what = $"{request.Method} {request.RequestUri?.AbsolutePath}";
        GatewayError? error = null;
        if (response.Content.Headers.ContentType?.MediaType == "application/json")
        {
            try
            {
                error = await response.Content.ReadFromJsonAsync(CoordinationJson.Default.GatewayError, ct).ConfigureAwait(false);
            }
            catch (JsonException)
            {
            }
        }

        if (error is not null && GatewayProtocol.ParseCode(error.Code) is { } code)
        {
            return new CairnException(code, error.Message, error.Hint);
        }

        return (int)response.StatusCode >= 500
            ? new CairnException(ErrorCode.GatewayUnavailable, $"the gateway at {BaseUrl} failed {what}: HTTP {(int)response.StatusCode} {response.ReasonPhrase}", "retry; see the gateway's log")
            : response.StatusCode == HttpStatusCode.NotFound
            ? new CairnException(ErrorCode.GatewayProtocol, $"{BaseUrl} has no {what} (HTTP 404)", "check that --gateway names a Cairn gateway of a compatible version")
            : new CairnException(ErrorCode.GatewayProtocol, $"the gateway at {BaseUrl} answered {what} with HTTP {(int)response.StatusCode} and no error report",
                "check that --gateway names a Cairn gateway, not a proxy");
    }

    public void Dispose()
    {
        if (_ownsHttp) _http.Dispose();
    }
}
