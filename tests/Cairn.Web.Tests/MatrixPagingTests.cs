using System.Net.Http.Headers;
using System.Text.Json;
using Cairn.Coordination;
using Cairn.Coordination.Sqlite;
using Cairn.Core;
using Cairn.Gateway;
using Cairn.Repository.FileSystem;
using Cairn.Server;

namespace Cairn.Web.Tests;

/// <summary>
/// The coherence matrix of a gateway with 50 sites: a page holds fewer rows the more sites there are (1,500 cells),
/// so it stays small (docs/performance.md, "Dashboard"), and the pages together hold every product once.
/// </summary>
public sealed class MatrixPagingTests
{
    [Fact]
    public async Task WithFiftySitesAPageHasThirtyRowsAndThePagesTogetherHoldEveryProduct()
    {
        var ct = CancellationToken.None;
        using var dir = new TempDir("cairn-web-matrix");
        await using var repository = await DirectoryRepository.InitAsync(dir.Sub("repo"), "matrix", StackFixture.Platform, TimeProvider.System, null, ct);
        await using var store = await SqliteCoordinationStore.OpenAsync(dir.Sub("coordination.db"), TimeProvider.System, null, ct);
        var sites = Enumerable.Range(0, 50).Select(i => $"site-{i:D2}").ToList();
        foreach (var site in sites) await store.RegisterSiteAsync(site, new SiteCapabilities(StackFixture.Platform, null, []), ct);
        const int products = 35;
        for (var j = 0; j < products; j++)
        {
            await store.RecordResultAsync(new BuildResult($"k-{j}", sites[j % 50], $"{StackFixture.Platform}/p{j:D2}/1.0", Digest.Of(BitConverter.GetBytes(j)),
                new CheckOutcome(1, 0, 0), "debian/12", TimeSpan.FromSeconds(1), null), ct);
        }

        await using var service = new GatewayService(store, repository);
        await using var app = GatewayHost.Build(new GatewayHostOptions { Service = service, Listen = "http://127.0.0.1:0" });
        await app.StartAsync(ct);
        using var http = new HttpClient { BaseAddress = new Uri(CairnServer.Addresses(app)[0]) };

        var seen = new List<string>();
        foreach (var (number, rows) in new[] { (1, 30), (2, 5) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/ui/coherence?page={number}");
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            using var response = await http.SendAsync(request);
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal(30, json.RootElement.GetProperty("pageSize").GetInt32());
            Assert.Equal(products, json.RootElement.GetProperty("total").GetInt32());
            var onPage = json.RootElement.GetProperty("rows").EnumerateArray().Select(r => r.GetProperty("product").GetString()!).ToList();
            Assert.Equal(rows, onPage.Count);
            Assert.All(json.RootElement.GetProperty("rows").EnumerateArray(), r => Assert.Equal(50, r.GetProperty("cells").GetArrayLength()));
            seen.AddRange(onPage);
        }

        Assert.Equal(Enumerable.Range(0, products).Select(j => $"{StackFixture.Platform}/p{j:D2}/1.0"), seen);
        var html = await http.GetStringAsync("/ui/coherence");
        Assert.Contains("next page", html);
        Assert.Equal(30, html.Split("<tr data-product=").Length - 1);
        await app.StopAsync(ct);
    }
}
