using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Cairn.Core;
using Cairn.Server.Tests.Infrastructure;

namespace Cairn.Server.Tests;

public sealed class ServeTests(ServedRepository served) : IClassFixture<ServedRepository>
{
    private static readonly HttpClient Http = new();

    private string AnyPack => Path.GetFileNameWithoutExtension(Directory.GetFiles(Path.Combine(served.Repo, "packs"), "*.pack")
        .OrderByDescending(f => new FileInfo(f).Length).First());

    [Theory]
    [InlineData("serve")]
    [InlineData("nginx")]
    public async Task PacksAreImmutableWithRangesAndConditionalRequests(string server)
    {
        var url = $"{served.Url(server)}/packs/{AnyPack}.pack";
        var file = await File.ReadAllBytesAsync(Path.Combine(served.Repo, "packs", AnyPack + ".pack"));

        using var head = await Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, url));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(file.Length, head.Content.Headers.ContentLength);
        Assert.True(head.Headers.CacheControl is { Public: true } c && c.Extensions.Any(e => e.Name == "immutable"), $"Cache-Control: {head.Headers.CacheControl}");
        Assert.Equal(TimeSpan.FromSeconds(31536000), head.Headers.CacheControl!.MaxAge);
        var etag = head.Headers.ETag;
        Assert.NotNull(etag);
        Assert.False(etag.IsWeak);
        if (server == "serve") Assert.Equal($"\"{AnyPack}\"", etag.Tag);

        using var range = new HttpRequestMessage(HttpMethod.Get, url);
        range.Headers.Range = new RangeHeaderValue(100, 1099);
        using var partial = await Http.SendAsync(range);
        Assert.Equal(HttpStatusCode.PartialContent, partial.StatusCode);
        Assert.Equal(file.AsSpan(100, 1000).ToArray(), await partial.Content.ReadAsByteArrayAsync());

        using var conditional = new HttpRequestMessage(HttpMethod.Get, url);
        conditional.Headers.IfNoneMatch.Add(etag);
        using var notModified = await Http.SendAsync(conditional);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
    }

    [Theory]
    [InlineData("serve")]
    [InlineData("nginx")]
    public async Task TheManifestIsShortLivedAndRepositoryInternalsAreNotServed(string server)
    {
        using var manifest = await Http.GetAsync($"{served.Url(server)}/manifest.json");
        Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(60), manifest.Headers.CacheControl!.MaxAge);
        Assert.DoesNotContain(manifest.Headers.CacheControl.Extensions, e => e.Name == "immutable");
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(served.Repo, "manifest.json")), await manifest.Content.ReadAsByteArrayAsync());
        var parsed = CairnJson.Deserialize(await File.ReadAllBytesAsync(Path.Combine(served.Repo, "manifest.json")), CoreJson.Default.Manifest, "manifest");
        Assert.Equal(Directory.GetFiles(Path.Combine(served.Repo, "packs"), "*.idx").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal), parsed.Packs);

        using var revision = await Http.GetAsync($"{served.Url(server)}/revisions/{parsed.Revision:D16}.json");
        Assert.Equal(HttpStatusCode.OK, revision.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(31536000), revision.Headers.CacheControl!.MaxAge);

        foreach (var path in new[] { "locks/commit", "locks/objects", "tmp/", "cache/", "packs/", "revisions/", "nothing" })
        {
            using var r = await Http.GetAsync($"{served.Url(server)}/{path}");
            Assert.True(r.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Forbidden, $"{path}: {r.StatusCode}");
        }
    }

    [Fact]
    public async Task ServeAddsObjectsHealthAndMetrics()
    {
        var manifest = CairnJson.Deserialize(await File.ReadAllBytesAsync(Path.Combine(served.Repo, "manifest.json")), CoreJson.Default.Manifest, "manifest");
        using var obj = await Http.GetAsync($"{served.Serve.Url}/objects/{manifest.Catalog}");
        Assert.Equal(HttpStatusCode.OK, obj.StatusCode);
        Assert.Equal(manifest.Catalog.ToString(), Convert.ToHexStringLower(SHA256.HashData(await obj.Content.ReadAsByteArrayAsync())));
        Assert.Equal($"\"{manifest.Catalog}\"", obj.Headers.ETag!.Tag);
        Assert.Contains(obj.Headers.CacheControl!.Extensions, e => e.Name == "immutable");
        using var missing = await Http.GetAsync($"{served.Serve.Url}/objects/{Digest.Of("absent"u8)}");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);

        using var health = await Http.GetAsync($"{served.Serve.Url}/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        using var post = await Http.PostAsync($"{served.Serve.Url}/manifest.json", new StringContent("x"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);

        var metrics = await Http.GetStringAsync($"{served.Serve.Url}/metrics");
        foreach (var name in new[] { "cairn_http_requests_total{", "cairn_http_responses_total{status=\"200\"}", "cairn_http_response_bytes_total{kind=\"object\"}", "cairn_objects_served_total 1", "cairn_http_requests_total{kind=\"other\",method=\"POST\",status=\"405\"}" })
        {
            Assert.Contains(name, metrics, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task TheManifestLifetimeIsConfigurableAndSigtermStopsTheServer()
    {
        await using var serve = await CairnServe.StartAsync(served.Repo, "--manifest-max-age", "7");
        using var manifest = await Http.GetAsync($"{serve.Url}/manifest.json");
        Assert.Equal(TimeSpan.FromSeconds(7), manifest.Headers.CacheControl!.MaxAge);
        Assert.Equal(0, await serve.TerminateAsync());
    }
}
