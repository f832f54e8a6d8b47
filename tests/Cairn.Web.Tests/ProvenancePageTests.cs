using System.Net.Http.Headers;
using System.Text.Json;
using Cairn.Coordination;
using Cairn.Coordination.Sqlite;
using Cairn.Core;
using Cairn.Gateway;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Server;
using Cairn.Trust;
using Cairn.Trust.Provenance;

namespace Cairn.Web.Tests;

/// <summary>
/// The product page shows a product's signed statements (docs/format/provenance.md): builder, verdict, tests, and
/// whether each signature verifies with a key a site registered with the gateway. libpng is signed by site-a's
/// registered key; bzip2 by a key nobody registered, with a FAILED test result; zlib has no attestations.
/// </summary>
public sealed class ProvenancePageTests
{
    private const string Platform = StackFixture.Platform;

    private static BuildFacts Facts(string name, string version, IReadOnlyList<string> passed, IReadOnlyList<string> failed) => new()
    {
        Platform = Platform, Name = name, Version = version,
        RecipePath = name, RecipeDigest = Digest.Of("recipe listing"u8),
        DeploymentRoot = "/cvmfs/cairn", DeploymentSite = "generic",
        SandboxContract = 2, SeccompFilter = Digest.Of("bpf"u8), BuildKey = Digest.Of(System.Text.Encoding.UTF8.GetBytes(name)).ToString(),
        Site = "site-a", CairnVersion = "1.0.0", InvocationId = "00000000-0000-0000-0000-000000000001",
        StartedOn = new DateTimeOffset(2026, 12, 8, 1, 0, 0, TimeSpan.Zero), FinishedOn = new DateTimeOffset(2026, 12, 8, 1, 5, 0, TimeSpan.Zero),
        LogPath = $"logs/{Platform}/{name}/{version}/build.log", LogSha256 = Digest.Of("log"u8),
        CheckScript = "check.sh", CheckScriptSha256 = Digest.Of("make check"u8),
        PassedTests = passed, FailedTests = failed,
    };

    private static async Task PublishAsync(WritableRepository repository, TempDir dir, string name, string version, Func<Digest, byte[]>? attest)
    {
        var source = dir.Sub("src-" + name);
        Directory.CreateDirectory(Path.Combine(source, "lib"));
        await File.WriteAllTextAsync(Path.Combine(source, "lib", $"lib{name}.so"), $"{name} {version}");
        await repository.PublishDirectoryAsync(new ProductRef(name, version), source, new PublishOptions
        {
            BuildKey = "k-" + name,
            Attestations = attest is null ? null : $"logs/{Platform}/{name}/{version}/attestations{AttestationBundle.FileSuffix}",
            Attest = attest,
        }, null, CancellationToken.None);
    }

    [Fact]
    public async Task TheProductPageShowsBuilderVerdictTestsAndWhetherEachSignatureVerifies()
    {
        var ct = CancellationToken.None;
        using var dir = new TempDir("cairn-web-provenance");
        using var siteA = Keys.Generate(KeyKind.Builder);
        using var stranger = Keys.Generate(KeyKind.Builder);
        await using var repository = await DirectoryRepository.InitAsync(dir.Sub("repo"), "provenance", Platform, TimeProvider.System, null, ct);
        await PublishAsync(repository, dir, "libpng", "1.6.39", root => AttestationBundle.Write(Attester.Sign(Facts("libpng", "1.6.39", ["pngtest.read", "pngtest.write"], []), root, siteA)));
        // A FAILED verdict, signed by a key no site registered (Attester.Sign refuses to sign one; a forger would not).
        await PublishAsync(repository, dir, "bzip2", "1.0.8", root =>
        {
            var facts = Facts("bzip2", "1.0.8", ["bzip2.compress"], ["bzip2.selftest"]);
            return AttestationBundle.Write([
                Dsse.Sign(Dsse.InTotoPayloadType, CairnJson.Serialize(Attester.Provenance(facts, root), ProvenanceJson.Default.ProvenanceStatement), stranger),
                Dsse.Sign(Dsse.InTotoPayloadType, CairnJson.Serialize(Attester.TestResult(facts, root), ProvenanceJson.Default.TestResultStatement), stranger),
            ]);
        });
        await PublishAsync(repository, dir, "zlib", "1.2.13", null);

        await using var store = await SqliteCoordinationStore.OpenAsync(dir.Sub("coordination.db"), TimeProvider.System, null, ct);
        await store.RegisterSiteAsync("site-a", new SiteCapabilities(Platform, null, []), ct);
        await store.SetSiteKeyAsync("site-a", Keys.Encode(siteA.Public), ct);
        await using var service = new GatewayService(store, repository);
        await using var gateway = GatewayHost.Build(new GatewayHostOptions { Service = service, Listen = "http://127.0.0.1:0" });
        await gateway.StartAsync(ct);
        await using var serve = CairnServer.Build(new ServeOptions { RepositoryPath = dir.Sub("repo"), Listen = "http://127.0.0.1:0" });
        await serve.StartAsync(ct);
        using var http = new HttpClient();
        var gatewayUrl = CairnServer.Addresses(gateway)[0];
        var serveUrl = CairnServer.Addresses(serve)[0];

        using (var libpng = await JsonAsync(http, gatewayUrl, "libpng/1.6.39"))
        {
            var p = libpng.RootElement.GetProperty("provenance");
            Assert.Equal(["site-a"], p.GetProperty("keysFrom").EnumerateArray().Select(e => e.GetString()));
            var rows = p.GetProperty("statements").EnumerateArray().ToList();
            Assert.Equal(["provenance", "test result"], rows.Select(r => r.GetProperty("kind").GetString()));
            Assert.All(rows, r => Assert.True(r.GetProperty("signatureVerified").GetBoolean()));
            Assert.All(rows, r => Assert.Equal("site-a", r.GetProperty("signedBy").GetString()));
            Assert.All(rows, r => Assert.True(r.GetProperty("subjectMatches").GetBoolean()));
            Assert.Equal(InToto.BuilderId("site-a"), rows[0].GetProperty("builder").GetString());
            Assert.Equal(InToto.Passed, rows[1].GetProperty("result").GetString());
            Assert.Equal(2, rows[1].GetProperty("passedTests").GetInt32());
        }

        using (var bzip2 = await JsonAsync(http, gatewayUrl, "bzip2/1.0.8"))
        {
            var rows = bzip2.RootElement.GetProperty("provenance").GetProperty("statements").EnumerateArray().ToList();
            Assert.All(rows, r => Assert.False(r.GetProperty("signatureVerified").GetBoolean()));
            Assert.Equal(InToto.Failed, rows[1].GetProperty("result").GetString());
            Assert.Equal(["bzip2.selftest"], rows[1].GetProperty("failedTests").EnumerateArray().Select(e => e.GetString()));
        }

        var html = await http.GetStringAsync($"{gatewayUrl}/ui/products/{Platform}/bzip2/1.0.8");
        Assert.Contains("not verified: no registered key signed it", html);
        Assert.Contains("bzip2.selftest", html);
        Assert.Contains("verified: site-a&#39;s key", await http.GetStringAsync($"{gatewayUrl}/ui/products/{Platform}/libpng/1.6.39"));

        // cairn serve knows no keys: the statements are shown, their signatures not judged.
        using (var unchecked_ = await JsonAsync(http, serveUrl, "libpng/1.6.39"))
        {
            var p = unchecked_.RootElement.GetProperty("provenance");
            Assert.False(p.TryGetProperty("keysFrom", out _));
            Assert.All(p.GetProperty("statements").EnumerateArray(), r => Assert.False(r.TryGetProperty("signatureVerified", out _)));
        }

        Assert.Contains("signatures are not checked here", await http.GetStringAsync($"{serveUrl}/ui/products/{Platform}/libpng/1.6.39"));
        using (var zlib = await JsonAsync(http, gatewayUrl, "zlib/1.2.13")) Assert.False(zlib.RootElement.TryGetProperty("provenance", out _));
        Assert.Contains("published without cairn build", await http.GetStringAsync($"{gatewayUrl}/ui/products/{Platform}/zlib/1.2.13"));

        await serve.StopAsync(ct);
        await gateway.StopAsync(ct);
    }

    private static async Task<JsonDocument> JsonAsync(HttpClient http, string server, string product)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{server}/ui/products/{Platform}/{product}");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        using var response = await http.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, $"{product}: HTTP {(int)response.StatusCode}");
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync());
    }
}
