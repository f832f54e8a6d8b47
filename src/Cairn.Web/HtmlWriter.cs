using System.Globalization;
using System.Text;

namespace Cairn.Web;

/// <summary>
/// Writes HTML where every piece of text and every attribute value is encoded unless the caller spells out a
/// literal tag: names, logs, file names and test names come from recipes and sites, never from us
/// (docs/adr/0012-dashboard-html-writer.md). Tag and attribute names are compile-time constants by convention;
/// URLs pass <see cref="SafeHref"/>, so a <c>javascript:</c> link cannot be produced from data.
/// </summary>
public sealed class HtmlWriter
{
    private readonly StringBuilder _out = new(16 * 1024);

    public int Length => _out.Length;

    public override string ToString() => _out.ToString();

    /// <summary>Encoded text content.</summary>
    public HtmlWriter Text(string? text)
    {
        Encode(_out, text, attribute: false);
        return this;
    }

    public HtmlWriter Text(long number) => Text(number.ToString(CultureInfo.InvariantCulture));

    /// <summary>An opening tag; attributes are (name, value) pairs, a null value omits the attribute.</summary>
    public HtmlWriter Open(string tag, params (string Name, string? Value)[] attributes)
    {
        _out.Append('<').Append(tag);
        foreach (var (name, value) in attributes)
        {
            if (value is null) continue;
            _out.Append(' ').Append(name).Append("=\"");
            Encode(_out, name is "href" or "src" or "action" or "xlink:href" ? SafeHref(value) : value, attribute: true);
            _out.Append('"');
        }

        _out.Append('>');
        return this;
    }

    public HtmlWriter Close(string tag)
    {
        _out.Append("</").Append(tag).Append('>');
        return this;
    }

    /// <summary>An element with encoded text content.</summary>
    public HtmlWriter Element(string tag, string? text, params (string Name, string? Value)[] attributes) =>
        Open(tag, attributes).Text(text).Close(tag);

    public HtmlWriter Link(string href, string? text, string? cssClass = null) =>
        Element("a", text, ("href", href), ("class", cssClass));

    /// <summary>A void element such as input or br.</summary>
    public HtmlWriter Void(string tag, params (string Name, string? Value)[] attributes)
    {
        Open(tag, attributes);
        return this;
    }

    /// <summary>Markup written by this assembly (a doctype, an SVG produced by <see cref="HtmlWriter"/> itself).</summary>
    internal HtmlWriter Trusted(string markup)
    {
        _out.Append(markup);
        return this;
    }

    /// <summary>
    /// A link target built from data is allowed only when it is relative (our own pages) or http(s); anything
    /// else (javascript:, data:, vbscript:, a scheme hidden behind control characters) becomes "#".
    /// </summary>
    public static string SafeHref(string href)
    {
        ArgumentNullException.ThrowIfNull(href);
        var trimmed = href.Trim();
        if (trimmed.Length == 0) return "#";
        if (trimmed.StartsWith('/') || trimmed.StartsWith('#') || trimmed.StartsWith('?'))
        {
            // "//host" is protocol-relative: someone else's page, not ours.
            return trimmed.StartsWith("//", StringComparison.Ordinal) || trimmed.StartsWith("/\\", StringComparison.Ordinal) ? "#" : trimmed;
        }

        if (Uri.TryCreate(trimmed, UriKind.Absolute, out var uri))
        {
            return uri.Scheme is "http" or "https" ? uri.AbsoluteUri : "#";
        }

        // A relative path without a scheme; a colon before any slash would make a browser read a scheme.
        var colon = trimmed.IndexOf(':', StringComparison.Ordinal);
        var slash = trimmed.IndexOf('/', StringComparison.Ordinal);
        return colon >= 0 && (slash < 0 || colon < slash) ? "#" : trimmed;
    }

    /// <summary>Encodes &amp; &lt; &gt; " ' and control characters; everything else is written as is (UTF-8 page).</summary>
    public static void Encode(StringBuilder sb, string? text, bool attribute)
    {
        ArgumentNullException.ThrowIfNull(sb);
        if (text is null) return;
        foreach (var c in text)
        {
            switch (c)
            {
                case '&': sb.Append("&amp;"); break;
                case '<': sb.Append("&lt;"); break;
                case '>': sb.Append("&gt;"); break;
                case '"': sb.Append("&quot;"); break;
                case '\'': sb.Append("&#39;"); break;
                case '\n' or '\t':
                    sb.Append(c);
                    break;
                case '\r':
                    if (attribute) sb.Append("&#13;");
                    else sb.Append(c);
                    break;
                default:
                    // Control characters (a log's escape sequences) are shown as U+FFFD rather than passed to the parser.
                    if (char.IsControl(c)) sb.Append('\uFFFD');
                    else sb.Append(c);
                    break;
            }
        }
    }

    public static string Encode(string? text)
    {
        var sb = new StringBuilder(text?.Length ?? 0);
        Encode(sb, text, attribute: true);
        return sb.ToString();
    }
}
