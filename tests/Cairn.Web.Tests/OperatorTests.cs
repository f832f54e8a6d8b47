using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Cairn.Coordination;
using Cairn.Coordination.Sqlite;
using Cairn.Core;
using Cairn.Gateway;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Server;
using Microsoft.AspNetCore.Builder;

namespace Cairn.Web.Tests;

/// <summary>
/// A gateway with an operator token over an empty repository: two sites, a key both agree on (promotable to
/// stable), a key that failed; and a second gateway that requires the sign-in for every page.
/// </summary>
public sealed class OperatorFixture : IAsyncLifetime
{
    public const string OperatorToken = "operator-0123456789abcdef-0123456789abcdef";

    private readonly TempDir _dir = new("cairn-web-operator");
    private SqliteCoordinationStore _store = null!;
    private WritableRepository _repository = null!;
    private GatewayService _service = null!;
    private readonly List<WebApplication> _apps = [];

    public ICoordinationStore Store => _store;

    public string GatewayUrl { get; private set; } = "";

    /// <summary>The same gateway state, every page behind the sign-in.</summary>
    public string LockedUrl { get; private set; } = "";

    /// <summary>The gateway behind a reverse proxy at /cairn (cairn gateway --base-path /cairn).</summary>
    public string PrefixedUrl { get; private set; } = "";

    /// <summary>cairn serve over the repository, every dashboard page behind the sign-in.</summary>
    public string LockedServeUrl { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var ct = CancellationToken.None;
        _repository = await DirectoryRepository.InitAsync(_dir.Sub("repo"), "operator-stack", StackFixture.Platform, TimeProvider.System, null, ct);
        _store = await SqliteCoordinationStore.OpenAsync(_dir.Sub("coordination.db"), TimeProvider.System, null, ct);
        foreach (var site in new[] { "site-a", "site-b" })
        {
            await _store.RegisterSiteAsync(site, new SiteCapabilities(StackFixture.Platform, null, []), ct);
            for (var i = 0; i < 3; i++) await _store.IssueTokenAsync(site, new TokenScope(["/"], ["*"]), ct);
            await _store.RecordResultAsync(Result("k-agreed", site, "zlib/1.2.13", Digest.Of("zlib"u8), new CheckOutcome(3, 0, 0)), ct);
            await _store.RecordResultAsync(Result("k-refused", site, "bzip2/1.0.8", Digest.Of(System.Text.Encoding.UTF8.GetBytes(site)), new CheckOutcome(1, 0, 0)), ct);
        }

        await _store.RecordResultAsync(Result("k-failed", "site-a", "hdf5/1.14.0", null, new CheckOutcome(0, 1, 0)), ct);
        await _store.RecordResultAsync(Result("k-failed", "site-b", "hdf5/1.14.0", Digest.Of("hdf5"u8), new CheckOutcome(2, 0, 0)), ct);
        _service = new GatewayService(_store, _repository);
        GatewayUrl = await StartAsync(new GatewayHostOptions { Service = _service, Listen = "http://127.0.0.1:0", OperatorToken = OperatorToken });
        LockedUrl = await StartAsync(new GatewayHostOptions { Service = _service, Listen = "http://127.0.0.1:0", OperatorToken = OperatorToken, RequireSignIn = true });
        PrefixedUrl = await StartAsync(new GatewayHostOptions { Service = _service, Listen = "http://127.0.0.1:0", OperatorToken = OperatorToken, BasePath = "/cairn" });
        var serve = CairnServer.Build(new ServeOptions { RepositoryPath = _dir.Sub("repo"), Listen = "http://127.0.0.1:0", OperatorToken = OperatorToken, RequireSignIn = true });
        _apps.Add(serve);
        await serve.StartAsync(ct);
        LockedServeUrl = CairnServer.Addresses(serve)[0];
    }

    private async Task<string> StartAsync(GatewayHostOptions options)
    {
        var app = GatewayHost.Build(options);
        _apps.Add(app);
        await app.StartAsync();
        return CairnServer.Addresses(app)[0];
    }

    private static BuildResult Result(string key, string site, string product, Digest? root, CheckOutcome checks) =>
        new(key, site, $"{StackFixture.Platform}/{product}", root, checks, $"{site}: debian/12", TimeSpan.FromSeconds(3), null);

    public async Task DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        await _service.DisposeAsync();
        await _repository.DisposeAsync();
        await _store.DisposeAsync();
        _dir.Dispose();
    }
}

/// <summary>Operator actions over real HTTP: sign-in, anti-forgery, effect, audit (docs/dashboard.md, "Operator actions").</summary>
public sealed partial class OperatorTests(OperatorFixture fixture) : IClassFixture<OperatorFixture>, IDisposable
{
    private readonly HttpClient _http = new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() });

    public void Dispose() => _http.Dispose();

    [GeneratedRegex("name=\"_csrf\" value=\"([0-9a-f]+)\"")]
    private static partial Regex AntiForgeryField();

    private static FormUrlEncodedContent Form(params (string, string)[] fields) => new(fields.Select(f => KeyValuePair.Create(f.Item1, f.Item2)));

    private async Task SignInAsync(string baseUrl)
    {
        using var signIn = await _http.PostAsync(baseUrl + "/ui/login", Form(("token", OperatorFixture.OperatorToken), ("return", "/ui/sites")));
        Assert.Equal(HttpStatusCode.SeeOther, signIn.StatusCode);
        Assert.Equal("/ui/sites", signIn.Headers.Location!.OriginalString);
        var cookie = signIn.Headers.GetValues("Set-Cookie").Single();
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The anti-forgery token the signed-in operator's pages carry in their forms.</summary>
    private async Task<string> AntiForgeryAsync(string page)
    {
        var html = await _http.GetStringAsync(fixture.GatewayUrl + page);
        return AntiForgeryField().Match(html) is { Success: true } m ? m.Groups[1].Value : throw new Xunit.Sdk.XunitException($"{page} has no operator form");
    }

    private async Task<TokenInfo> LiveTokenAsync(string site, int index) =>
        (await fixture.Store.ListTokensAsync(site, CancellationToken.None))[index];

    [Fact]
    public async Task AnActionWithoutTheOperatorsSignInIsRefusedAndChangesNothing()
    {
        var token = await LiveTokenAsync("site-a", 0);
        using var anonymous = await _http.PostAsync(fixture.GatewayUrl + "/ui/actions/revoke-token", Form(("token", token.TokenId), ("_csrf", new string('0', 64))));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Contains(ErrorCodes.Name(ErrorCode.OperatorSignInRequired), await anonymous.Content.ReadAsStringAsync());

        // cairn serve has a sign-in (with --operator-token-file) but no operator actions: a read-only server refuses the method.
        using var onServe = await _http.PostAsync(fixture.LockedServeUrl + "/ui/actions/revoke-token", Form(("token", token.TokenId)));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, onServe.StatusCode);

        using var wrong = await _http.PostAsync(fixture.GatewayUrl + "/ui/login", Form(("token", OperatorFixture.OperatorToken + "x")));
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.False(wrong.Headers.Contains("Set-Cookie"));

        // A site's own token is not the operator's.
        using var bearer = new HttpRequestMessage(HttpMethod.Post, fixture.GatewayUrl + "/ui/actions/revoke-token") { Content = Form(("token", token.TokenId)) };
        bearer.Headers.Authorization = new("Bearer", OperatorFixture.OperatorToken);
        using var withBearer = await _http.SendAsync(bearer);
        Assert.Equal(HttpStatusCode.Unauthorized, withBearer.StatusCode);

        Assert.Null((await LiveTokenAsync("site-a", 0)).RevokedAt);
        Assert.DoesNotContain(await fixture.Store.ListOperatorActionsAsync(0, 100, CancellationToken.None), a => a.Action.Target == token.TokenId);
    }

    [Fact]
    public async Task AnActionWithoutTheAntiForgeryTokenIsRefused()
    {
        await SignInAsync(fixture.GatewayUrl);
        var token = await LiveTokenAsync("site-a", 1);
        using var missing = await _http.PostAsync(fixture.GatewayUrl + "/ui/actions/revoke-token", Form(("token", token.TokenId)));
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        var refusal = await missing.Content.ReadAsStringAsync();
        Assert.Contains("anti-forgery", refusal);
        Assert.Contains(ErrorCodes.Name(ErrorCode.DashboardAntiForgeryRejected), refusal);

        // Another session's token (a second sign-in) is not this session's.
        using var other = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() });
        using (var signIn = await other.PostAsync(fixture.GatewayUrl + "/ui/login", Form(("token", OperatorFixture.OperatorToken)))) Assert.Equal(HttpStatusCode.SeeOther, signIn.StatusCode);
        var foreign = AntiForgeryField().Match(await other.GetStringAsync(fixture.GatewayUrl + "/ui/sites")).Groups[1].Value;
        Assert.NotEqual(foreign, await AntiForgeryAsync("/ui/sites"));
        using var forged = await _http.PostAsync(fixture.GatewayUrl + "/ui/actions/revoke-token", Form(("token", token.TokenId), ("_csrf", foreign)));
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Contains(ErrorCodes.Name(ErrorCode.DashboardAntiForgeryRejected), await forged.Content.ReadAsStringAsync());

        Assert.Null((await LiveTokenAsync("site-a", 1)).RevokedAt);
    }

    [Fact]
    public async Task RevokePromoteAndRerunTakeEffectAndAreAudited()
    {
        var before = await fixture.Store.ListOperatorActionsAsync(0, 1000, CancellationToken.None);
        var after = before.Count == 0 ? 0 : before[^1].Id;
        await SignInAsync(fixture.GatewayUrl);
        var csrf = await AntiForgeryAsync("/ui/sites");
        var token = await LiveTokenAsync("site-b", 2);
        Assert.Contains($"Revoke {token.TokenId}", await _http.GetStringAsync(fixture.GatewayUrl + "/ui/sites"));

        using (var revoke = await _http.PostAsync(fixture.GatewayUrl + "/ui/actions/revoke-token", Form(("token", token.TokenId), ("_csrf", csrf))))
        {
            Assert.Equal(HttpStatusCode.SeeOther, revoke.StatusCode);
            Assert.Equal("/ui/sites", revoke.Headers.Location!.OriginalString);
        }

        Assert.NotNull((await LiveTokenAsync("site-b", 2)).RevokedAt);

        Assert.Contains("Promote to stable", await _http.GetStringAsync(fixture.GatewayUrl + "/ui/coherence/k-agreed"));
        using (var promote = await _http.PostAsync(fixture.GatewayUrl + "/ui/actions/promote", Form(("key", "k-agreed"), ("channel", "stable"), ("_csrf", csrf))))
        {
            Assert.Equal(HttpStatusCode.SeeOther, promote.StatusCode);
        }

        Assert.Contains(await fixture.Store.GetPromotionsAsync("k-agreed", CancellationToken.None), p => p.Channel == ChannelPolicy.Stable);

        // The channel's policy still decides: two sites that disagree cannot be promoted by an operator either.
        using (var refused = await _http.PostAsync(fixture.GatewayUrl + "/ui/actions/promote", Form(("key", "k-refused"), ("_csrf", csrf))))
        {
            Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        }

        Assert.Contains("Re-run", await _http.GetStringAsync(fixture.GatewayUrl + "/ui/coherence/k-failed"));
        using (var rerun = await _http.PostAsync(fixture.GatewayUrl + "/ui/actions/rerun", Form(("key", "k-failed"), ("_csrf", csrf))))
        {
            Assert.Equal(HttpStatusCode.SeeOther, rerun.StatusCode);
        }

        var left = await fixture.Store.GetResultsAsync("k-failed", CancellationToken.None);
        Assert.Equal(["site-b"], left.Select(r => r.Site));

        var audit = await fixture.Store.ListOperatorActionsAsync(after, 100, CancellationToken.None);
        Assert.Equal([("revoke-token", token.TokenId), ("promote", "k-agreed"), ("rerun", "k-failed")], audit.Select(a => (a.Action.Action, a.Action.Target)));
        Assert.All(audit, a => Assert.StartsWith("operator session ", a.Action.Actor, StringComparison.Ordinal));
        Assert.Contains("site-a", audit[2].Action.Detail);
    }

    [Fact]
    public async Task ARequiredSignInGuardsEveryPageButNotTheRepositoryFiles()
    {
        foreach (var url in new[] { fixture.LockedUrl, fixture.LockedServeUrl })
        {
            using (var browser = new HttpRequestMessage(HttpMethod.Get, url + "/ui/graph?rev=1"))
            {
                browser.Headers.Accept.ParseAdd("text/html");
                using var redirected = await _http.SendAsync(browser);
                Assert.Equal(HttpStatusCode.SeeOther, redirected.StatusCode);
                Assert.Equal("/ui/login?return=%2Fui%2Fgraph%3Frev%3D1", redirected.Headers.Location!.OriginalString);
            }

            using (var json = await _http.GetAsync(url + "/ui/?format=json"))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, json.StatusCode);
                using var error = JsonDocument.Parse(await json.Content.ReadAsStringAsync());
                Assert.Equal(ErrorCodes.Name(ErrorCode.OperatorSignInRequired), error.RootElement.GetProperty("code").GetString());
            }

            using (var svg = await _http.GetAsync(url + "/ui/graph.svg")) Assert.Equal(HttpStatusCode.Unauthorized, svg.StatusCode);
            using (var login = await _http.GetAsync(url + "/ui/login")) Assert.Equal(HttpStatusCode.OK, login.StatusCode);
            using (var manifest = await _http.GetAsync(url + "/manifest.json"))
            {
                // The gateway of this fixture serves no repository directory; cairn serve does, and its files stay public.
                Assert.Equal(url == fixture.LockedServeUrl ? HttpStatusCode.OK : HttpStatusCode.NotFound, manifest.StatusCode);
            }

            using (var bearer = new HttpRequestMessage(HttpMethod.Get, url + "/ui/?format=json"))
            {
                bearer.Headers.Authorization = new("Bearer", OperatorFixture.OperatorToken);
                using var answered = await _http.SendAsync(bearer);
                Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
            }

            using (var wrongBearer = new HttpRequestMessage(HttpMethod.Get, url + "/ui/?format=json"))
            {
                wrongBearer.Headers.Authorization = new("Bearer", OperatorFixture.OperatorToken[..^1]);
                using var refused = await _http.SendAsync(wrongBearer);
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            }

            await SignInAsync(url);
            using var signedIn = await _http.GetAsync(url + "/ui/?format=json");
            Assert.Equal(HttpStatusCode.OK, signedIn.StatusCode);
        }
    }

    [Fact]
    public async Task AGatewayWithABasePathLinksAndSignsInUnderIt()
    {
        // A proxy at /cairn strips the prefix before the request reaches the gateway.
        var html = await _http.GetStringAsync(fixture.PrefixedUrl + "/ui/sites");
        Assert.Contains("href=\"/cairn/ui/coherence\"", html);
        Assert.Contains("action=\"/cairn/ui/login\"", await _http.GetStringAsync(fixture.PrefixedUrl + "/ui/login"));
        using var signIn = await _http.PostAsync(fixture.PrefixedUrl + "/ui/login", Form(("token", OperatorFixture.OperatorToken), ("return", "/cairn/ui/sites")));
        Assert.Equal("/cairn/ui/sites", signIn.Headers.Location!.OriginalString);
        Assert.Contains("path=/cairn/ui", signIn.Headers.GetValues("Set-Cookie").Single(), StringComparison.OrdinalIgnoreCase);
    }
}
