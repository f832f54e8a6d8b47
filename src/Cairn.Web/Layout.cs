using System.Globalization;

namespace Cairn.Web;

/// <summary>The page shell: doctype, head (stylesheet and script by fingerprinted name), navigation, main.</summary>
internal static class Layout
{
    public static void Write(HtmlWriter html, PageContext page, IDashboardPage content)
    {
        var config = page.Options.Repository.Revisions.Config;
        html.Trusted("<!DOCTYPE html>\n");
        html.Open("html", ("lang", "en"));
        html.Open("head");
        html.Void("meta", ("charset", "utf-8"));
        html.Void("meta", ("name", "viewport"), ("content", "width=device-width, initial-scale=1"));
        html.Element("title", $"{content.Title} · Cairn {config.Name}");
        html.Void("link", ("rel", "stylesheet"), ("href", page.Url("/assets/" + DashboardAssets.NameOf("dashboard.css"))));
        html.Void("link", ("rel", "icon"), ("href", page.Url("/assets/" + DashboardAssets.NameOf("favicon.svg"))), ("type", "image/svg+xml"));
        if (content.Live)
        {
            html.Open("script", ("src", page.Url("/assets/" + DashboardAssets.NameOf("live.js"))), ("defer", "defer")).Close("script");
        }

        html.Close("head");
        html.Open("body", ("data-refresh", content.Live ? "5" : null));
        html.Link("#main", "Skip to content", "skip");
        html.Open("header", ("class", "top"));
        html.Element("span", "Cairn", ("class", "brand"));
        html.Open("nav", ("aria-label", "Dashboard"));
        var sections = new List<(string Id, string Label, string Href)>
        {
            ("products", "Products", "/"),
            ("revisions", "Revisions", "/revisions"),
            ("graph", "Graph", "/graph"),
        };
        if (page.IsGateway)
        {
            sections.Add(("builds", "Builds", "/builds"));
            sections.Add(("sites", "Sites", "/sites"));
            sections.Add(("coherence", "Coherence", "/coherence"));
        }

        sections.Add(("health", "Health", "/health"));
        foreach (var (id, label, href) in sections)
        {
            html.Element("a", label, ("href", page.Url(href)), ("aria-current", id == content.Section ? "page" : null));
            html.Text(" ");
        }

        html.Close("nav");
        html.Element("span", $"{config.Name} · {config.Platform}", ("class", "repo"));
        if (page.Site.Sessions is not null)
        {
            if (page.AntiForgery is { } csrf)
            {
                html.Open("form", ("method", "post"), ("action", page.Url("/logout")), ("class", "session"));
                html.Void("input", ("type", "hidden"), ("name", OperatorSessions.AntiForgeryField), ("value", csrf));
                html.Element("button", "Sign out (operator)", ("type", "submit"));
                html.Close("form");
            }
            else
            {
                html.Link(page.Url("/login"), "Operator sign-in", "session");
            }
        }

        html.Close("header");
        html.Open("main", ("id", "main"));
        content.WriteHtml(html, page);
        html.Close("main");
        html.Close("body");
        html.Close("html");
    }

    public static string Size(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = bytes;
        var u = 0;
        while (v >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }

        return u == 0 ? $"{bytes} B" : v.ToString(v < 10 ? "0.0" : "0", CultureInfo.InvariantCulture) + " " + units[u];
    }

    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static string Ago(DateTimeOffset now, DateTimeOffset then)
    {
        var d = now - then;
        if (d < TimeSpan.Zero) return "in " + Span(-d);
        return Span(d) + " ago";
    }

    public static string Span(TimeSpan d) =>
        d.TotalSeconds < 90 ? $"{(int)d.TotalSeconds} s"
        : d.TotalMinutes < 90 ? $"{(int)d.TotalMinutes} min"
        : d.TotalHours < 48 ? $"{(int)d.TotalHours} h"
        : $"{(int)d.TotalDays} d";

    public static void Badge(HtmlWriter html, string status, string? label = null) =>
        html.Element("span", label ?? status, ("class", "badge " + StatusClass(status)));

    public static string StatusClass(string status) => status switch
    {
        "up to date" or "passed" or "agree" or "agreement" or "published" => "s-ok",
        "failed" or "differ" or "disagreement" or "failing" => "s-failed",
        "blocked" => "s-blocked",
        "building" => "s-building",
        _ => "s-none",
    };

    public static void Tests(HtmlWriter html, Cairn.Core.TestSummary? tests)
    {
        if (tests is null)
        {
            html.Element("span", "none recorded", ("class", "muted"));
            return;
        }

        Badge(html, tests.Failed > 0 ? "failed" : "passed", $"{tests.Passed} passed, {tests.Failed} failed, {tests.Skipped} skipped");
    }

    public static void Facts(HtmlWriter html, params (string Term, string? Value)[] facts)
    {
        html.Open("dl", ("class", "facts"));
        foreach (var (term, value) in facts)
        {
            if (value is null) continue;
            html.Element("dt", term).Element("dd", value);
        }

        html.Close("dl");
    }
}

/// <summary>An error as a page (HTML) or as { code, message, hint } (JSON).</summary>
internal static class ErrorPage
{
    public static IDashboardPage Of(int status, string code, string message, string? hint) =>
        new Page<DashboardError>(status == 404 ? "Not found" : "Error", "", new DashboardError(code, message, hint), DashboardJson.Default.DashboardError, (html, _, e) =>
        {
            html.Element("h1", status == 404 ? "Not found" : "Something went wrong");
            html.Element("p", e.Message);
            if (e.Hint is not null) html.Element("p", "What to do: " + e.Hint, ("class", "muted"));
            html.Element("p", e.Code, ("class", "mono muted"));
        }, status);
}
