using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;
using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Repository;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Cairn.Web;

/// <summary>What the dashboard shows. The repository view needs only <see cref="Repository"/>; the gateway adds the rest.</summary>
public sealed record DashboardOptions
{
    /// <summary>The repository, opened read-only by cairn serve, or the gateway's own.</summary>
    public required ProductRepository Repository { get; init; }

    /// <summary>The gateway's coordination store (sites, claims, results, promotions); null for cairn serve.</summary>
    public ICoordinationStore? Coordination { get; init; }

    /// <summary>The gateway's coherence report of one build key, with the differing files of each disagreeing site.</summary>
    public Func<string, CancellationToken, Task<GatewayCoherence>>? CoherenceOf { get; init; }

    /// <summary>The server's /metrics text (Prometheus 0.0.4), sampled for the health page's sparklines.</summary>
    public Func<string>? Metrics { get; init; }

    /// <summary>A fixed path prefix the dashboard is reached under (e.g. /cairn); else X-Forwarded-Prefix, else none.</summary>
    public string? BasePath { get; init; }

    /// <summary>How often the health page samples /metrics; it keeps four hours of samples.</summary>
    public TimeSpan MetricsInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The operator's secret (at least 32 characters): enables sign-in and, on the gateway, the operator actions
    /// (revoke a token, promote, re-run). Null: no sign-in, no actions.
    /// </summary>
    public string? OperatorToken { get; init; }

    /// <summary>Every page needs the operator's sign-in (or the token as a bearer header); needs <see cref="OperatorToken"/>.</summary>
    public bool RequireSignIn { get; init; }

    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// The web dashboard (docs/dashboard.md): server-rendered HTML pages under /ui/, each answering
/// <c>Accept: application/json</c> with the same data. One implementation for cairn serve (the repository) and
/// cairn gateway (adds builds, sites, coherence). No page runs inline script; every value is encoded.
/// </summary>
public static partial class Dashboard
{
    /// <summary>The dashboard's path below the server's root; the repository's own files keep theirs.</summary>
    public const string Root = "/ui";

    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

    /// <summary>Every page answers HEAD like GET (same status and headers; Kestrel sends no body).</summary>
    private static readonly string[] GetAndHead = ["GET", "HEAD"];

    [GeneratedRegex("^(/[A-Za-z0-9._~-]+)+$")]
    private static partial Regex PrefixPattern();

    /// <summary>Maps the dashboard onto <paramref name="app"/>, and the root URL to it for browsers.</summary>
    public static void Map(WebApplication app, DashboardOptions options)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(options);
        if (options.BasePath is { } basePath && !PrefixPattern().IsMatch(basePath))
        {
            throw new CairnException(ErrorCode.Usage, $"'{basePath}' is not a path prefix", "use a prefix such as /cairn (no trailing slash)");
        }

        if (options.RequireSignIn && options.OperatorToken is null)
        {
            throw new CairnException(ErrorCode.Usage, "requiring a sign-in needs an operator token", "give the operator token file too");
        }

        var site = new DashboardSite(options, app.Logger);
        if (options.Metrics is not null) site.Sampler.Start(app.Lifetime.ApplicationStopping);

        // A browser opening the server lands on the dashboard; a client asking for anything else at / gets the 404 it always got.
        app.MapMethods("/", ["GET", "HEAD"], (HttpContext c) =>
        {
            c.Items["kind"] = "dashboard";
            if (!AcceptsHtml(c.Request)) return Results.NotFound();
            c.Response.Headers.CacheControl = "no-cache";
            c.Response.Headers.Vary = "Accept";
            return Results.Redirect(site.PrefixOf(c) + Root + "/", permanent: false);
        });

        var ui = app.MapGroup(Root);
        ui.MapMethods("/assets/{name}", ["GET", "HEAD"], (HttpContext c, string name) => ServeAsset(c, name));
        ui.MapMethods("/", GetAndHead, (HttpContext c) => site.RunAsync(c, RepositoryPages.ProductsAsync));
        ui.MapMethods("/login", GetAndHead, (HttpContext c) => site.RunAsync(c, SignIn.PageAsync, signInPage: true));
        ui.MapPost("/login", (HttpContext c) => SignIn.PostAsync(site, c));
        ui.MapPost("/logout", (HttpContext c) => SignIn.LogoutAsync(site, c));
        ui.MapPost("/actions/{action}", (HttpContext c, string action) => OperatorActions.HandleAsync(site, c, action));
        ui.MapMethods("/products/{platform}/{name}/{version}", GetAndHead, (HttpContext c, string platform, string name, string version) =>
            site.RunAsync(c, (p, ct) => RepositoryPages.ProductAsync(p, platform, name, version, ct)));
        ui.MapMethods("/products/{platform}/{name}/{version}/files/{**path}", GetAndHead, (HttpContext c, string platform, string name, string version, string? path) =>
            site.RunAsync(c, (p, ct) => RepositoryPages.FilesAsync(p, platform, name, version, path ?? "", ct)));
        ui.MapMethods("/products/{platform}/{name}/{version}/log", GetAndHead, (HttpContext c, string platform, string name, string version) =>
            site.RunAsync(c, (p, ct) => RepositoryPages.LogAsync(p, platform, name, version, ct)));
        ui.MapMethods("/revisions", GetAndHead, (HttpContext c) => site.RunAsync(c, RepositoryPages.RevisionsAsync));
        ui.MapMethods("/revisions/diff", GetAndHead, (HttpContext c) => site.RunAsync(c, RepositoryPages.DiffAsync));
        ui.MapMethods("/graph", GetAndHead, (HttpContext c) => site.RunAsync(c, GraphPage.PageAsync));
        ui.MapMethods("/graph.svg", GetAndHead, (HttpContext c) => site.RunAsync(c, GraphPage.SvgAsync));
        ui.MapMethods("/health", GetAndHead, (HttpContext c) => site.RunAsync(c, HealthPage.PageAsync));
        ui.MapMethods("/builds", GetAndHead, (HttpContext c) => site.RunAsync(c, GatewayPages.BuildsAsync));
        ui.MapMethods("/sites", GetAndHead, (HttpContext c) => site.RunAsync(c, GatewayPages.SitesAsync));
        ui.MapMethods("/coherence", GetAndHead, (HttpContext c) => site.RunAsync(c, GatewayPages.MatrixAsync));
        ui.MapMethods("/coherence/{buildKey}", GetAndHead, (HttpContext c, string buildKey) =>
            site.RunAsync(c, (p, ct) => GatewayPages.CoherenceAsync(p, buildKey, ct)));
        ui.MapMethods("/{**rest}", GetAndHead, (HttpContext c) => site.RunAsync(c, NoSuchPageAsync));
    }

    private static Task<object> NoSuchPageAsync(PageContext page, CancellationToken ct) =>
        Task.FromResult<object>(ErrorPage.Of(404, ErrorCodes.Name(ErrorCode.DashboardPageNotFound), $"no dashboard page at {page.Http.Request.Path}", "start from the products list"));

    private static IResult ServeAsset(HttpContext c, string name)
    {
        c.Items["kind"] = "dashboard";
        if (DashboardAssets.Find(name) is not { } asset) return Results.NotFound();
        c.Response.Headers.CacheControl = "public, max-age=31536000, immutable";
        c.Response.Headers.XContentTypeOptions = "nosniff";
        return Results.Bytes(asset.Content, asset.ContentType, entityTag: new Microsoft.Net.Http.Headers.EntityTagHeaderValue(asset.ETag));
    }

    /// <summary>True when the client prefers HTML (a browser), not JSON or a bare HTTP client.</summary>
    public static bool AcceptsHtml(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>JSON when asked for with <c>?format=json</c> or an Accept header naming JSON but not HTML.</summary>
    public static bool WantsJson(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Query.TryGetValue("format", out var f)) return string.Equals(f.ToString(), "json", StringComparison.OrdinalIgnoreCase);
        var accept = request.Headers.Accept.ToString();
        return accept.Contains("application/json", StringComparison.OrdinalIgnoreCase) && !accept.Contains("text/html", StringComparison.OrdinalIgnoreCase);
    }
}

/// <summary>A rendered page: its JSON model and how to write it as HTML.</summary>
internal interface IDashboardPage
{
    string Title { get; }

    /// <summary>The navigation entry highlighted (products, revisions, graph, builds, sites, coherence, health).</summary>
    string Section { get; }

    int Status => 200;

    /// <summary>Region ids refreshed live by live.js (the page's body is complete without them).</summary>
    bool Live => false;

    void WriteJson(Utf8JsonWriter writer);

    void WriteHtml(HtmlWriter html, PageContext page);
}

/// <summary>A page whose JSON is its model, serialized with the dashboard's source-generated context.</summary>
internal sealed class Page<T>(string title, string section, T model, JsonTypeInfo<T> json, Action<HtmlWriter, PageContext, T> html, int status = 200, bool live = false) : IDashboardPage
{
    public string Title => title;

    public string Section => section;

    public int Status => status;

    public bool Live => live;

    public T Model => model;

    public void WriteJson(Utf8JsonWriter writer) => JsonSerializer.Serialize(writer, model, json);

    public void WriteHtml(HtmlWriter writer, PageContext page) => html(writer, page, model);
}

/// <summary>A page that is an image (the graph as image/svg+xml).</summary>
internal sealed record RawPage(string ContentType, string Body);

/// <summary>One request's view of the dashboard: where its links point and the data sources.</summary>
internal sealed class PageContext(DashboardSite site, HttpContext http)
{
    public DashboardSite Site => site;

    public HttpContext Http => http;

    public DashboardOptions Options => site.Options;

    public bool IsGateway => site.Options.Coordination is not null;

    /// <summary>The dashboard's base URL path, e.g. /cairn/ui.</summary>
    public string Base { get; } = site.PrefixOf(http) + Dashboard.Root;

    public string Url(string relative) => Base + relative;

    public string ProductUrl(string platform, string name, string version) =>
        $"{Base}/products/{Uri.EscapeDataString(platform)}/{Uri.EscapeDataString(name)}/{Uri.EscapeDataString(version)}";

    public string ProductUrl(ProductRecord p) => ProductUrl(p.Platform, p.Name, p.Version);

    public string? Query(string name) =>
        http.Request.Query.TryGetValue(name, out var v) && v.Count > 0 && !string.IsNullOrEmpty(v[0]) ? v[0] : null;

    public long? QueryLong(string name) =>
        long.TryParse(Query(name), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : null;

    public DateTimeOffset Now => site.Options.Time.GetUtcNow();

    /// <summary>The operator's session cookie when it is valid; null when not signed in.</summary>
    public string? OperatorCookie => OperatorSessionId is null ? null : http.Request.Cookies[OperatorSessions.CookieName];

    public string? OperatorSessionId => site.Sessions?.SessionId(http.Request.Cookies[OperatorSessions.CookieName], Now);

    /// <summary>Signed in with the session cookie, or the operator token sent as a bearer header (scripts reading JSON).</summary>
    public bool SignedIn => OperatorSessionId is not null
        || (site.Sessions is { } s && http.Request.Headers.Authorization.ToString() is { } auth && auth.StartsWith("Bearer ", StringComparison.Ordinal) && s.IsOperatorToken(auth[7..].Trim()));

    /// <summary>The anti-forgery token of the signed-in operator's forms; null when not signed in by cookie.</summary>
    public string? AntiForgery => OperatorCookie is { } cookie ? site.Sessions!.AntiForgeryToken(cookie) : null;

    public async ValueTask<Manifest> HeadAsync(CancellationToken ct) => await site.Options.Repository.HeadAsync(ct);

    public ValueTask<Catalog> CatalogAsync(Manifest manifest, CancellationToken ct) => site.CatalogAsync(manifest, ct);

    /// <summary>
    /// Kept revisions numbered <paramref name="newest"/> and below, newest first: at most <paramref name="count"/>,
    /// looking at no more than <paramref name="numbers"/> revision numbers (gc leaves gaps). Reads one small file
    /// each, never the whole history.
    /// </summary>
    public async Task<List<Manifest>> RevisionsDownFromAsync(long newest, int count, long numbers, CancellationToken ct)
    {
        var found = new List<Manifest>();
        for (var n = newest; n >= 1 && n > newest - numbers && found.Count < count; n--)
        {
            if (await site.Options.Repository.Revisions.ReadRevisionAsync(n, ct) is { } m) found.Add(m);
        }

        return found;
    }

    /// <summary>The revision a page shows: ?rev=N, ?tag=NAME, else the head.</summary>
    public async ValueTask<Manifest> SelectedRevisionAsync(CancellationToken ct)
    {
        var head = await HeadAsync(ct);
        if (Query("tag") is { } tag)
        {
            if (!head.Tags.TryGetValue(tag, out var tagged))
            {
                throw new CairnException(ErrorCode.RevisionNotFound, $"no tag '{tag}' in revision {head.Revision}", "choose one of the tags the products page lists");
            }

            return await site.Options.Repository.RevisionAsync(tagged, ct);
        }

        return QueryLong("rev") is { } rev && rev != head.Revision ? await site.Options.Repository.RevisionAsync(rev, ct) : head;
    }
}

/// <summary>State shared by every request: the options, a small cache of catalogs (immutable per revision), the metrics sampler.</summary>
internal sealed class DashboardSite(DashboardOptions options, ILogger log)
{
    private readonly ConcurrentDictionary<long, Catalog> _catalogs = new();

    public DashboardOptions Options => options;

    public MetricsSampler Sampler { get; } = new(options.Metrics, options.Time, options.MetricsInterval);

    public OperatorSessions? Sessions { get; } = options.OperatorToken is { } token ? new OperatorSessions(token) : null;

    /// <summary>How long one read of the recent results serves every page (live pages refresh every 5 s).</summary>
    public static readonly TimeSpan ResultsFreshFor = TimeSpan.FromSeconds(1);

    /// <summary>One read of the results and when it started; replaced whole (a reference), so readers never see half of one.</summary>
    private sealed record ResultsRead(long ReadAt, Task<IReadOnlyList<BuildResult>> Results);

    private ResultsRead? _recentResults;

    /// <summary>
    /// The newest results (<see cref="StackStatus.ResultsConsidered"/> of them), read at most once a second and shared by
    /// every page in that second: reading 20,000 results is the costly part of the gateway's pages (docs/performance.md,
    /// "Dashboard"). Operator actions drop the copy, so their effect shows on the next page.
    /// </summary>
    public Task<IReadOnlyList<BuildResult>> RecentResultsAsync(ICoordinationStore store)
    {
        var now = options.Time.GetTimestamp();
        if (Volatile.Read(ref _recentResults) is { } cached && options.Time.GetElapsedTime(cached.ReadAt, now) < ResultsFreshFor
            && !cached.Results.IsFaulted && !cached.Results.IsCanceled)
        {
            return cached.Results;
        }

        // Not tied to one request's cancellation: other pages share the read.
        var read = store.ListRecentResultsAsync(StackStatus.ResultsConsidered, CancellationToken.None);
        Volatile.Write(ref _recentResults, new ResultsRead(now, read));
        return read;
    }

    public void ForgetRecentResults() => Volatile.Write(ref _recentResults, null);

    public static void SecureHeaders(HttpContext c)
    {
        var headers = c.Response.Headers;
        headers.ContentSecurityPolicy = Dashboard.ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.XFrameOptions = "DENY";
        headers.CacheControl = "no-cache";
        headers.Vary = "Accept, X-Forwarded-Prefix";
    }

    public string PrefixOf(HttpContext c)
    {
        if (options.BasePath is { } fixedPrefix) return fixedPrefix;
        var forwarded = c.Request.Headers["X-Forwarded-Prefix"].ToString().TrimEnd('/');
        // Only a plain path is used: the prefix ends up in every link of the page.
        return forwarded.Length > 0 && PrefixPatternCheck(forwarded) ? forwarded : "";
    }

    private static bool PrefixPatternCheck(string prefix) =>
        prefix.StartsWith('/') && prefix.Length < 200 && prefix.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '/' or '.' or '_' or '~' or '-') && !prefix.Contains("//", StringComparison.Ordinal);

    public async ValueTask<Catalog> CatalogAsync(Manifest manifest, CancellationToken ct)
    {
        if (_catalogs.TryGetValue(manifest.Revision, out var cached)) return cached;
        var catalog = await WithRefreshAsync(() => options.Repository.CatalogAsync(manifest, ct), ct);
        // Enough for a product page's history scan; a catalog of 5,000 products is ~1.5 MB in memory.
        if (_catalogs.Count >= RepositoryPages.RevisionsScanned + 8) _catalogs.Clear();
        _catalogs[manifest.Revision] = catalog;
        return catalog;
    }

    /// <summary>Reads again once after catching up with packs written since the store was opened (a publish, a gc).</summary>
    public async ValueTask<T> WithRefreshAsync<T>(Func<ValueTask<T>> read, CancellationToken ct)
    {
        try
        {
            return await read();
        }
        catch (CairnException e) when (e.Code == ErrorCode.ObjectMissing)
        {
            await options.Repository.Objects.RefreshAsync(ct);
            return await read();
        }
    }

    public async Task RunAsync(HttpContext c, Func<PageContext, CancellationToken, Task<object>> render, bool signInPage = false)
    {
        c.Items["kind"] = "dashboard";
        var page = new PageContext(this, c);
        SecureHeaders(c);
        if (options.RequireSignIn && !signInPage && !page.SignedIn)
        {
            if (Dashboard.AcceptsHtml(c.Request) && !Dashboard.WantsJson(c.Request))
            {
                c.Response.StatusCode = StatusCodes.Status303SeeOther;
                c.Response.Headers.Location = page.Url("/login") + "?return=" + Uri.EscapeDataString(c.Request.Path + c.Request.QueryString);
                return;
            }

            await WriteAsync(c, page, ErrorPage.Of(401, ErrorCodes.Name(ErrorCode.OperatorSignInRequired), "this dashboard needs the operator's sign-in",
                "sign in at " + page.Url("/login") + ", or send 'Authorization: Bearer OPERATOR-TOKEN'"));
            return;
        }

        object result;
        var ct = c.RequestAborted;
        try
        {
            try
            {
                result = await render(page, ct);
            }
            catch (CairnException e) when (e.Code == ErrorCode.ObjectMissing)
            {
                await options.Repository.Objects.RefreshAsync(ct);
                result = await render(page, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return;
        }
        catch (CairnException e)
        {
            var status = e.Code switch
            {
                ErrorCode.ProductNotFound or ErrorCode.RevisionNotFound or ErrorCode.InvalidPath or ErrorCode.SiteUnknown => 404,
                ErrorCode.Usage or ErrorCode.InvalidProductReference => 400,
                _ => 500,
            };
            if (status == 500) log.LogError("dashboard {Path}: {Code} {Message}", c.Request.Path, e.CodeName, e.Message);
            result = ErrorPage.Of(status, e.CodeName, e.Message, e.Hint);
        }

        await WriteAsync(c, page, result);
    }

    public static async Task WriteAsync(HttpContext c, PageContext page, object result)
    {
        if (result is RawPage raw)
        {
            c.Response.ContentType = raw.ContentType;
            await c.Response.WriteAsync(raw.Body, c.RequestAborted);
            return;
        }

        var p = (IDashboardPage)result;
        c.Response.StatusCode = p.Status;
        if (Dashboard.WantsJson(c.Request))
        {
            c.Response.ContentType = "application/json; charset=utf-8";
            // Serialized into memory, then sent: the server allows no synchronous writes to the response.
            var buffer = new System.Buffers.ArrayBufferWriter<byte>(16 * 1024);
            using (var writer = new Utf8JsonWriter(buffer))
            {
                p.WriteJson(writer);
            }

            await c.Response.Body.WriteAsync(buffer.WrittenMemory, c.RequestAborted);
            return;
        }

        c.Response.ContentType = "text/html; charset=utf-8";
        var html = new HtmlWriter();
        Layout.Write(html, page, p);
        await c.Response.WriteAsync(html.ToString(), Encoding.UTF8, c.RequestAborted);
    }
}
