using System.Security.Cryptography;
using System.Text;
using Cairn.Coordination;
using Cairn.Core;
using Microsoft.AspNetCore.Http;

namespace Cairn.Web;

/// <summary>
/// The operator's sign-in (docs/dashboard.md, "Operator actions"). The operator proves the operator token once, on
/// the sign-in form; the gateway answers with a session cookie (HttpOnly, SameSite=Strict, eight hours) whose value
/// is an id and expiry MACed with a key drawn at start-up, so sessions end when the server restarts and nothing is
/// stored. Forms that change state carry an anti-forgery token: the MAC of the session cookie under the same key
/// (a double-submit token tied to the session; a page on another origin can neither read the cookie nor compute it).
/// Chosen over ASP.NET Core antiforgery because it needs no Data Protection key ring on disk.
/// </summary>
internal sealed class OperatorSessions
{
    public const string CookieName = "cairn_operator";
    public const string AntiForgeryField = "_csrf";
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(8);

    private readonly byte[] _tokenHash;
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);

    public OperatorSessions(string token)
    {
        if (token.Length < 32)
        {
            throw new CairnException(ErrorCode.Usage, "the operator token is shorter than 32 characters",
                "write a random secret to the token file, e.g. head -c 32 /dev/urandom | base64 > operator.token");
        }

        _tokenHash = SHA256.HashData(Encoding.UTF8.GetBytes(token));
    }

    /// <summary>Compares in constant time (of the hashes), so the comparison leaks nothing about the secret.</summary>
    public bool IsOperatorToken(string? candidate) =>
        candidate is not null && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(candidate)), _tokenHash);

    public string NewSession(DateTimeOffset now)
    {
        var payload = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12)) + "." + (now + Lifetime).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        return payload + "." + Mac("session|" + payload);
    }

    /// <summary>The session id of a valid, unexpired session cookie value; else null.</summary>
    public string? SessionId(string? cookie, DateTimeOffset now)
    {
        if (cookie is null) return null;
        var parts = cookie.Split('.');
        if (parts.Length != 3 || !long.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var expires)) return null;
        if (!FixedEquals(Mac("session|" + parts[0] + "." + parts[1]), parts[2])) return null;
        return now.ToUnixTimeSeconds() < expires ? parts[0] : null;
    }

    public string AntiForgeryToken(string cookie) => Mac("csrf|" + cookie);

    public bool IsAntiForgeryToken(string cookie, string? candidate) => candidate is not null && FixedEquals(AntiForgeryToken(cookie), candidate);

    private string Mac(string text) => Convert.ToHexStringLower(HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes(text)));

    private static bool FixedEquals(string expected, string candidate) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(candidate));
}

/// <summary>The operator's actions: POST forms with the session cookie and the anti-forgery token, each recorded in the audit log.</summary>
internal static class OperatorActions
{
    public const string Revoke = "revoke-token";
    public const string Promote = "promote";
    public const string Rerun = "rerun";

    public static async Task HandleAsync(DashboardSite site, HttpContext c, string action)
    {
        c.Items["kind"] = "dashboard";
        var page = new PageContext(site, c);
        DashboardSite.SecureHeaders(c);
        var ct = c.RequestAborted;
        if (site.Options.Coordination is not { } store || site.Sessions is null)
        {
            await DashboardSite.WriteAsync(c, page, ErrorPage.Of(404, ErrorCodes.Name(ErrorCode.OperatorActionsDisabled), "this server has no operator actions", "start cairn gateway with --operator-token-file FILE"));
            return;
        }

        if (page.OperatorCookie is not { } cookie)
        {
            await DashboardSite.WriteAsync(c, page, ErrorPage.Of(401, ErrorCodes.Name(ErrorCode.OperatorSignInRequired), "operator actions need an operator sign-in", "sign in with the operator token first"));
            return;
        }

        if (!c.Request.HasFormContentType)
        {
            await DashboardSite.WriteAsync(c, page, ErrorPage.Of(400, ErrorCodes.Name(ErrorCode.Usage), "an operator action is a form POST", "use the buttons of the dashboard"));
            return;
        }

        var form = await c.Request.ReadFormAsync(ct);
        if (!site.Sessions.IsAntiForgeryToken(cookie, form[OperatorSessions.AntiForgeryField].ToString() is { Length: > 0 } t ? t : null))
        {
            await DashboardSite.WriteAsync(c, page, ErrorPage.Of(400, ErrorCodes.Name(ErrorCode.DashboardAntiForgeryRejected), "the form's anti-forgery token is missing or not this session's",
                "reload the page and submit the form again"));
            return;
        }

        var actor = $"operator session {page.OperatorSessionId} from {c.Connection.RemoteIpAddress}";
        try
        {
            var (detail, target, back) = action switch
            {
                Revoke => await RevokeAsync(store, Field(form, "token"), ct),
                Promote => await PromoteAsync(store, Field(form, "key"), form["channel"].ToString() is { Length: > 0 } ch ? ch : ChannelPolicy.Stable, ct),
                Rerun => await RerunAsync(store, Field(form, "key"), ct),
                _ => throw new CairnException(ErrorCode.Usage, $"no operator action '{action}'", $"use {Revoke}, {Promote} or {Rerun}"),
            };
            page.Site.ForgetRecentResults();
            // After the change, in its own transaction: a crash in between leaves an unaudited change, never an audited one that did not happen.
            await store.RecordOperatorActionAsync(new OperatorAction(action, target, detail, actor), ct);
            c.Response.StatusCode = StatusCodes.Status303SeeOther;
            c.Response.Headers.Location = page.Url(back);
        }
        catch (CairnException e)
        {
            var status = e.Code switch
            {
                ErrorCode.PromotionRefused => 409,
                ErrorCode.ProductNotFound or ErrorCode.SiteUnknown => 404,
                _ => 400,
            };
            await DashboardSite.WriteAsync(c, page, ErrorPage.Of(status, e.CodeName, e.Message, e.Hint));
        }
    }

    private static string Field(IFormCollection form, string name) => form[name].ToString() is { Length: > 0 } v ? v
        : throw new CairnException(ErrorCode.Usage, $"the form has no '{name}'", "use the buttons of the dashboard");

    private static async Task<(string, string, string)> RevokeAsync(ICoordinationStore store, string tokenId, CancellationToken ct)
    {
        if (!await store.RevokeTokenAsync(tokenId, ct))
        {
            throw new CairnException(ErrorCode.Usage, $"no live token {tokenId}: it does not exist or was revoked already", "see the sites page");
        }

        return ("revoked", tokenId, "/sites");
    }

    private static async Task<(string, string, string)> PromoteAsync(ICoordinationStore store, string buildKey, string channel, CancellationToken ct)
    {
        // The channel's policy still decides: an operator confirms a promotion the agreeing sites allow, never forces one.
        var p = await store.PromoteAsync(buildKey, channel, ct);
        return ($"promoted to {channel}: root {p.Root}, {p.AgreeingSites} agreeing site(s)", buildKey, "/coherence/" + Uri.EscapeDataString(buildKey));
    }

    private static async Task<(string, string, string)> RerunAsync(ICoordinationStore store, string buildKey, CancellationToken ct)
    {
        var sites = await store.ForgetFailedResultsAsync(buildKey, ct);
        if (sites.Count == 0)
        {
            throw new CairnException(ErrorCode.Usage, $"build key {buildKey} has no failed result to forget", "re-run is for keys that failed on some site");
        }

        return ($"forgot the failed results of {string.Join(", ", sites)}", buildKey, "/coherence/" + Uri.EscapeDataString(buildKey));
    }

    /// <summary>A one-button POST form carrying the anti-forgery token (written only for a signed-in operator).</summary>
    public static void Form(HtmlWriter html, PageContext page, string action, string label, params (string Name, string Value)[] fields)
    {
        if (page.AntiForgery is not { } csrf) return;
        html.Open("form", ("method", "post"), ("action", page.Url("/actions/" + action)), ("class", "action"));
        html.Void("input", ("type", "hidden"), ("name", OperatorSessions.AntiForgeryField), ("value", csrf));
        foreach (var (name, value) in fields) html.Void("input", ("type", "hidden"), ("name", name), ("value", value));
        html.Element("button", label, ("type", "submit"));
        html.Close("form");
    }
}

/// <summary>The sign-in page and its form: the operator token in, a session cookie out.</summary>
internal static class SignIn
{
    public static Task<object> PageAsync(PageContext page, CancellationToken ct) =>
        Task.FromResult<object>(PageOf(page, null, 200));

    private static Page<SignInView> PageOf(PageContext page, string? message, int status) =>
        new Page<SignInView>("Sign in", "", new SignInView(page.Site.Sessions is not null, page.SignedIn, message), DashboardJson.Default.SignInView, (html, pg, m) =>
        {
            html.Element("h1", "Operator sign-in");
            if (!m.Enabled)
            {
                html.Element("p", "This server has no operator token: there is nothing to sign in to.", ("class", "muted"));
                return;
            }

            if (m.Message is not null) html.Element("p", m.Message, ("class", "error"), ("role", "alert"));
            if (m.SignedIn) html.Element("p", "You are signed in as the operator.");
            html.Open("form", ("method", "post"), ("action", pg.Url("/login")), ("class", "signin"));
            html.Void("input", ("type", "hidden"), ("name", "return"), ("value", pg.Query("return") ?? ""));
            html.Open("label").Text("Operator token ").Void("input", ("type", "password"), ("name", "token"), ("autocomplete", "current-password"), ("required", "required")).Close("label");
            html.Text(" ");
            html.Element("button", "Sign in", ("type", "submit"));
            html.Close("form");
            html.Element("p", "The session lasts eight hours, or until the server restarts.", ("class", "muted"));
        }, status);

    public static async Task PostAsync(DashboardSite site, HttpContext c)
    {
        c.Items["kind"] = "dashboard";
        var page = new PageContext(site, c);
        DashboardSite.SecureHeaders(c);
        if (site.Sessions is not { } sessions)
        {
            await DashboardSite.WriteAsync(c, page, PageOf(page, null, 404));
            return;
        }

        var form = c.Request.HasFormContentType ? await c.Request.ReadFormAsync(c.RequestAborted) : FormCollection.Empty;
        if (!sessions.IsOperatorToken(form["token"].ToString()))
        {
            await DashboardSite.WriteAsync(c, page, PageOf(page, "That is not the operator token.", 401));
            return;
        }

        c.Response.Cookies.Append(OperatorSessions.CookieName, sessions.NewSession(page.Now), new CookieOptions
        {
            HttpOnly = true, SameSite = SameSiteMode.Strict, Path = page.Base, Secure = c.Request.IsHttps, MaxAge = OperatorSessions.Lifetime,
        });
        var back = form["return"].ToString();
        // Only a page of this dashboard: the return address must not send the operator elsewhere.
        var local = back.StartsWith(page.Base + "/", StringComparison.Ordinal) && !back.Contains("//", StringComparison.Ordinal) && !back.Contains('\\', StringComparison.Ordinal);
        c.Response.StatusCode = StatusCodes.Status303SeeOther;
        c.Response.Headers.Location = local ? back : page.Url("/");
    }

    public static async Task LogoutAsync(DashboardSite site, HttpContext c)
    {
        c.Items["kind"] = "dashboard";
        var page = new PageContext(site, c);
        DashboardSite.SecureHeaders(c);
        var form = c.Request.HasFormContentType ? await c.Request.ReadFormAsync(c.RequestAborted) : FormCollection.Empty;
        if (page.OperatorCookie is { } cookie && !site.Sessions!.IsAntiForgeryToken(cookie, form[OperatorSessions.AntiForgeryField].ToString()))
        {
            await DashboardSite.WriteAsync(c, page, ErrorPage.Of(400, ErrorCodes.Name(ErrorCode.DashboardAntiForgeryRejected), "the form's anti-forgery token is missing or not this session's", "reload the page and sign out again"));
            return;
        }

        c.Response.Cookies.Delete(OperatorSessions.CookieName, new CookieOptions { Path = page.Base });
        c.Response.StatusCode = StatusCodes.Status303SeeOther;
        c.Response.Headers.Location = page.Url("/");
    }
}
