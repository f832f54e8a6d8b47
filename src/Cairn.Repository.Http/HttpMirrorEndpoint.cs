using System.Net;
using System.Net.Http.Headers;
using Cairn.Core;
using Cairn.Repository.Replication;

namespace Cairn.Repository.Http;

/// <summary>A replication source served over http(s): plain GETs, every byte checked by the replicator itself.</summary>
public sealed class HttpMirrorEndpoint : IMirrorEndpoint
{
    // Several packs stream at once, each on its own connection; replicate checks every byte itself.
    private readonly HttpClient _http = new(new SocketsHttpHandler { MaxConnectionsPerServer = 16, AutomaticDecompression = DecompressionMethods.None })
    {
        Timeout = TimeSpan.FromMinutes(10),
    };

    private readonly Uri _base;

    public HttpMirrorEndpoint(string url) => _base = new Uri(url.EndsWith('/') ? url : url + "/");

    public string Display => _base.ToString();

    public async Task<byte[]?> GetAsync(string key, CancellationToken ct)
    {
        using var response = await SendAsync(key, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
        if (response is null) return null;
        try
        {
            return await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            throw Unavailable(key, e);
        }
    }

    public async Task<Stream?> OpenReadAsync(string key, CancellationToken ct)
    {
        // The body is read as it arrives (hashed and written chunk by chunk), never buffered whole.
        var response = await SendAsync(key, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        if (response is null) return null;
        try
        {
            return await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            response.Dispose();
            throw Unavailable(key, e);
        }
    }

    private async Task<HttpResponseMessage?> SendAsync(string key, HttpCompletionOption completion, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_base, key));
        // The head must be the server's current one, not a proxy's copy.
        request.Headers.CacheControl = new CacheControlHeaderValue { NoCache = true };
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, completion, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            throw Unavailable(key, e);
        }

        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            response.Dispose();
            return null;
        }

        if (!response.IsSuccessStatusCode)
        {
            response.Dispose();
            throw new CairnException(ErrorCode.RemoteUnavailable, $"GET {new Uri(_base, key)} failed: {(int)response.StatusCode} {response.ReasonPhrase}",
                "check the source server; run replicate again to resume");
        }

        return response;
    }

    private CairnException Unavailable(string key, Exception e) =>
        new(ErrorCode.RemoteUnavailable, $"GET {new Uri(_base, key)} failed: {e.Message}", "check the source server; run replicate again to resume");

    public Task PutAsync(string key, byte[] bytes, CancellationToken ct) => throw new NotSupportedException("http sources are read-only");

    public void Dispose() => _http.Dispose();
}
