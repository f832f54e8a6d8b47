using System.Text;
using Cairn.Coordination;
using Cairn.Core;
using Microsoft.Extensions.Time.Testing;

namespace Cairn.Web.Tests;

public sealed class StatusAndMetricsTests
{
    private static ProductRecord Product(string name, string version, string? key, params string[] deps) =>
        new("linux-x86_64", name, version, Digest.Of(Encoding.UTF8.GetBytes(name)), 1, 1, key, deps, null, "ci", DateTimeOffset.UnixEpoch);

    private static BuildResult Result(string key, string site, string product, bool passing, DateTimeOffset at) =>
        new BuildResult(key, site, "linux-x86_64/" + product, passing ? Digest.Of("x"u8) : null, new CheckOutcome(passing ? 1 : 0, passing ? 0 : 1, 0), "env", TimeSpan.Zero, null)
        { RecordedAt = at };

    [Fact]
    public void AFailureBlocksEverythingAboveItAndAClaimMeansBuilding()
    {
        var catalog = new Catalog(1, [Product("zlib", "1", "kz"), Product("png", "1", "kp", "zlib/1"), Product("ft", "1", "kf", "png/1"), Product("app", "1", "ka", "ft/1", "gone/1")]);
        var t0 = DateTimeOffset.UnixEpoch;
        // png's newest key fails everywhere; zlib's newest result passes; a site is building ft's key.
        var results = new[]
        {
            Result("kz", "a", "zlib/1", true, t0), Result("kp-new", "a", "png/1", false, t0.AddMinutes(1)), Result("kp-new", "b", "png/1", false, t0.AddMinutes(2)),
            Result("kp", "a", "png/1", true, t0),
        };
        var claims = new[] { new Claim("kf", "c", 7, t0, t0.AddHours(1)) };
        var s = StackStatus.Compute(catalog, claims, results);
        Assert.Equal("up to date", s.Status["linux-x86_64/zlib/1"]);
        Assert.Equal("failed", s.Status["linux-x86_64/png/1"]);
        Assert.Contains("a: the build produced no output; 1 check(s) failed", s.Reason["linux-x86_64/png/1"]);
        Assert.Equal("building", s.Status["linux-x86_64/ft/1"]);
        Assert.Equal("not built", s.Status["linux-x86_64/gone/1"]);
        // app depends on a missing package (directly) and on ft (building): blocked by the missing one.
        Assert.Equal("blocked", s.Status["linux-x86_64/app/1"]);
        Assert.Equal("linux-x86_64/gone/1", s.BlockedBy["linux-x86_64/app/1"]);
        Assert.Equal(5, s.Nodes.Count);
    }

    [Fact]
    public void WithoutCoordinationOnlyTheCatalogSpeaks()
    {
        var s = StackStatus.Compute(new Catalog(1, [Product("a", "1", null), Product("b", "1", null, "a/1")]), [], []);
        Assert.All(s.Status.Values, v => Assert.Equal("up to date", v));
    }

    [Fact]
    public void JUnitCasesAreReadAndADtdIsRefused()
    {
        var xml = Encoding.UTF8.GetBytes("<testsuites><testsuite name=\"s\"><testcase classname=\"c\" name=\"ok\"/><testcase name=\"bad\"><failure message=\"boom\">trace</failure></testcase>" +
            "<testcase name=\"skip\"><skipped/></testcase></testsuite></testsuites>");
        var cases = JUnit.Parse(xml, "r.xml").ToList();
        Assert.Equal([("c.ok", "passed", (string?)null), ("bad", "failed", "boom"), ("skip", "skipped", null)], cases.Select(c => (c.Name, c.Outcome, c.Message)));

        var billionLaughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]><testsuite><testcase name=\"&lol2;\"/></testsuite>"u8.ToArray();
        var refused = Assert.Single(JUnit.Parse(billionLaughs, "evil.xml"));
        Assert.Equal("(unreadable JUnit report)", refused.Name);
    }

    [Fact]
    public void MetricsBecomeRatesPerKind()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var objects = 0;
        var sampler = new MetricsSampler(() =>
            $"# TYPE cairn_http_requests_total counter\ncairn_http_requests_total{{kind=\"object\",method=\"GET\",status=\"200\"}} {objects}\n" +
            $"cairn_http_requests_total{{kind=\"object\",method=\"GET\",status=\"404\"}} 1\ncairn_http_response_bytes_total{{kind=\"object\"}} {objects * 1000}\n",
            time, TimeSpan.FromSeconds(10));
        sampler.Sample();
        Assert.Empty(sampler.Rates());
        objects = 50;
        time.Advance(TimeSpan.FromSeconds(10));
        sampler.Sample();
        objects = 150;
        time.Advance(TimeSpan.FromSeconds(10));
        sampler.Sample();
        var rates = sampler.Rates().ToDictionary(s => s.Name);
        Assert.Equal([5.0, 10.0], rates["requests/s{object}"].Values);
        Assert.Equal([5000.0, 10000.0], rates["bytes/s{object}"].Values);
    }
}
