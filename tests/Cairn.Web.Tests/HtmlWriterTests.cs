namespace Cairn.Web.Tests;

public sealed class HtmlWriterTests
{
    [Theory]
    [InlineData("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;")]
    [InlineData("\"><img src=x onerror=alert(2)>", "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;")]
    [InlineData("a & b 'c'", "a &amp; b &#39;c&#39;")]
    [InlineData("tab\there\u001b[31mred", "tab\there\uFFFD[31mred")]
    public void TextIsEncoded(string text, string expected)
    {
        Assert.Equal(expected, new HtmlWriter().Text(text).ToString());
    }

    [Fact]
    public void AttributeValuesCannotCloseTheAttribute()
    {
        var html = new HtmlWriter().Element("td", "x", ("data-product", "\" onmouseover=\"alert(1)")).ToString();
        Assert.Equal("<td data-product=\"&quot; onmouseover=&quot;alert(1)\">x</td>", html);
    }

    [Theory]
    [InlineData("javascript:alert(1)", "#")]
    [InlineData("  JaVaScRiPt:alert(1)", "#")]
    [InlineData("java\tscript:alert(1)", "#")]
    [InlineData("data:text/html,<script>alert(1)</script>", "#")]
    [InlineData("vbscript:msgbox", "#")]
    [InlineData("//evil.example/x", "#")]
    [InlineData("/\\evil.example/x", "#")]
    [InlineData("/ui/products/linux-x86_64/zlib/1.2.13", "/ui/products/linux-x86_64/zlib/1.2.13")]
    [InlineData("#L10", "#L10")]
    [InlineData("?page=2", "?page=2")]
    [InlineData("https://ci.example.org/job/1", "https://ci.example.org/job/1")]
    [InlineData("files/a:b", "files/a:b")]
    [InlineData("a:b/c", "#")]
    public void OnlyRelativeAndHttpLinksSurvive(string href, string expected)
    {
        Assert.Equal(expected, HtmlWriter.SafeHref(href));
    }

    [Fact]
    public void LinksFromDataAreSanitizedWhenWritten()
    {
        var html = new HtmlWriter().Link("javascript:alert(1)", "<b>x</b>").ToString();
        Assert.Equal("<a href=\"#\">&lt;b&gt;x&lt;/b&gt;</a>", html);
    }
}
