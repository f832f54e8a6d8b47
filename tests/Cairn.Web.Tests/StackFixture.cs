using System.Text;
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
/// A repository holding a small stack (zlib ← libpng ← freetype, netcdf on an unpublished hdf5), a product whose
/// file names, log, tests and publisher are XSS attempts, and a product with a 2,500-line log; a real gateway
/// (Kestrel, SQLite) over it with three sites whose results agree, disagree (libpng on site-c), fail (hdf5) and
/// build (openblas); and cairn serve over the same directory.
/// </summary>
public sealed class StackFixture : IAsyncLifetime
{
    public const string Platform = "linux-x86_64";
    public const string LongLineMarker = "LONG-LINE-START";

    /// <summary>Markup that must show up as text and never run (each would open an alert dialog if it did).</summary>
    public static readonly string[] Attacks =
    [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(2)>",
        "javascript:alert(3)",
        "'><svg onload=alert(4)>",
    ];

    private readonly TempDir _dir = new("cairn-web");
    private SqliteCoordinationStore _store = null!;
    private WritableRepository _repository = null!;
    private GatewayService _service = null!;
    private WebApplication _gateway = null!;
    private WebApplication _serve = null!;

    public string RepoPath => _dir.Sub("repo");

    public string GatewayUrl { get; private set; } = "";

    public string ServeUrl { get; private set; } = "";

    public ICoordinationStore Store => _store;

    public static readonly IReadOnlyDictionary<string, string> ExpectedStatus = new Dictionary<string, string>
    {
        ["linux-x86_64/zlib/1.2.13"] = "up to date",
        ["linux-x86_64/libpng/1.6.40"] = "up to date",
        ["linux-x86_64/freetype/2.12.1"] = "up to date",
        ["linux-x86_64/evil/1.0"] = "up to date",
        ["linux-x86_64/biglog/1.0"] = "up to date",
        ["linux-x86_64/netcdf/4.9.2"] = "blocked",
        ["linux-x86_64/hdf5/1.14.0"] = "failed",
        ["linux-x86_64/openblas/0.3.21"] = "building",
    };

    public async Task InitializeAsync()
    {
        var ct = CancellationToken.None;
        _repository = await DirectoryRepository.InitAsync(RepoPath, "example-stack", Platform, TimeProvider.System, null, ct);
        var zlib = await PublishAsync("zlib", "1.2.13", [], "k-zlib", files: new()
        {
            ["include/zlib.h"] = "/* zlib.h -- interface of the 'zlib' general purpose compression library */\n#define ZLIB_VERSION \"1.2.13\"\n",
            ["lib/libz.so.1.2.13"] = "\u007fELF\0\0binary",
            ["share/man/man3/zlib.3"] = ".TH ZLIB 3\n",
        }, log: string.Join('\n', Enumerable.Range(1, 40).Select(i => $"make[1]: compiling step {i}")) + "\nPASS: example\n",
            junit: "<testsuite name=\"zlib\"><testcase classname=\"zlib\" name=\"example\"/><testcase classname=\"zlib\" name=\"minigzip\"/><testcase classname=\"zlib\" name=\"infcover\"><skipped message=\"no coverage build\"/></testcase></testsuite>");
        var libpng = await PublishAsync("libpng", "1.6.40", ["zlib/1.2.13"], "k-libpng", log: "checking for zlib... yes\nPASS: pngtest\n");
        await PublishAsync("freetype", "2.12.1", ["libpng/1.6.40", "zlib/1.2.13"], "k-freetype", log: "freetype built\n");
        await PublishAsync("netcdf", "4.9.2", ["hdf5/1.14.0"], "k-netcdf-old", log: "netcdf built against an older hdf5\n");
        await PublishAsync("biglog", "1.0", [], "k-biglog",
            log: string.Join('\n', Enumerable.Range(1, 2500).Select(i => $"log line {i}")) + "\n" + LongLineMarker + new string('x', 100_000) + "\nlast line\n");
        var evilFiles = Attacks.Select((a, i) => ($"{a.Replace('/', '_')}.txt", $"content {i}: {a}")).ToDictionary(x => x.Item1, x => x.Item2);
        await PublishAsync("evil", "1.0", [], "k-evil", files: evilFiles,
            log: string.Join('\n', Attacks.Select(a => "log says " + a)) + "\n<a href=\"javascript:alert(5)\">click</a>\n",
            junit: $"<testsuite name=\"{Xml(Attacks[1])}\"><testcase name=\"{Xml(Attacks[0])}\"><failure message=\"{Xml(Attacks[3])}\"/></testcase></testsuite>",
            publishedBy: Attacks[1], report: Attacks[3], module: "#%Module\n# " + Attacks[0] + "\n");

        var time = TimeProvider.System;
        _store = await SqliteCoordinationStore.OpenAsync(_dir.Sub("coordination.db"), time, null, ct);
        foreach (var site in new[] { "site-a", "site-b", "site-c" })
        {
            await _store.RegisterSiteAsync(site, new SiteCapabilities(Platform, "debian/12", site == "site-c" ? ["gpu"] : []), ct);
            await _store.IssueTokenAsync(site, new TokenScope(["/"], ["*"]), ct);
        }

        var passing = new CheckOutcome(3, 0, 0, [new("zlib.example", TestOutcome.Passed)]);
        foreach (var site in new[] { "site-a", "site-b", "site-c" })
        {
            await Result("k-zlib", site, "zlib/1.2.13", zlib, passing);
        }

        await _store.PromoteAsync("k-zlib", ChannelPolicy.Stable, ct);
        var png = new CheckOutcome(1, 0, 0, [new("libpng.pngtest", TestOutcome.Passed)]);
        await Result("k-libpng", "site-a", "libpng/1.6.40", libpng, png);
        await Result("k-libpng", "site-b", "libpng/1.6.40", libpng, png);
        // The planted disagreement: an irreproducible build on site-c (its checks pass, its output digest differs).
        await Result("k-libpng", "site-c", "libpng/1.6.40", Digest.Of("libpng built with a timestamp"u8), png);
        await Result("k-freetype", "site-a", "freetype/2.12.1", (await FindAsync("freetype/2.12.1")).Root, new CheckOutcome(2, 0, 0));
        foreach (var site in new[] { "site-a", "site-b" })
        {
            await Result("k-hdf5", site, "hdf5/1.14.0", null, new CheckOutcome(0, 1, 0, [new("hdf5.testhdf5", TestOutcome.Failed, "segmentation fault in H5Dwrite")]));
        }

        await Result("k-evil", "site-a", "evil/1.0", null, new CheckOutcome(0, 1, 0, [new(Attacks[1], TestOutcome.Failed, Attacks[0])]),
            environment: Attacks[0], log: "javascript:alert(6)");
        await Result("k-openblas-old", "site-c", "openblas/0.3.21", null, new CheckOutcome(0, 1, 0));
        await Result("k-openblas", "site-a", "openblas/0.3.21", null, new CheckOutcome(0, 1, 0));
        var claim = await _store.TryClaimAsync("k-openblas", "site-b", TimeSpan.FromHours(1), null, ct);
        Assert.True(claim.Granted);

        _service = new GatewayService(_store, _repository);
        _gateway = GatewayHost.Build(new GatewayHostOptions { Service = _service, RepositoryDirectory = RepoPath, Listen = "http://127.0.0.1:0" });
        await _gateway.StartAsync(ct);
        GatewayUrl = CairnServer.Addresses(_gateway)[0];
        _serve = CairnServer.Build(new ServeOptions { RepositoryPath = RepoPath, Listen = "http://127.0.0.1:0" });
        await _serve.StartAsync(ct);
        ServeUrl = CairnServer.Addresses(_serve)[0];
    }

    private static string Xml(string s) => System.Security.SecurityElement.Escape(s);

    private async Task<ProductRecord> FindAsync(string product) =>
        await _repository.FindAsync(ProductRef.Parse(product), Platform, null, CancellationToken.None);

    private Task<BuildResult> Result(string key, string site, string product, Digest? root, CheckOutcome checks, string? environment = null, string? log = null) =>
        _store.RecordResultAsync(new BuildResult(key, site, $"{Platform}/{product}", root, checks, environment ?? $"{site}: debian/12, kernel 6.1, 8 CPUs",
            TimeSpan.FromSeconds(42), log ?? $"logs/{Platform}/{product}/build.log"), CancellationToken.None);

    private async Task<Digest> PublishAsync(string name, string version, IReadOnlyList<string> deps, string buildKey, Dictionary<string, string>? files = null,
        string? log = null, string? junit = null, string? publishedBy = null, string? report = null, string? module = null)
    {
        var source = _dir.Sub($"src-{name}");
        files ??= new() { [$"lib/lib{name}.so"] = $"{name} {version}", [$"include/{name}.h"] = $"/* {name} {version} */\n" };
        foreach (var (path, content) in files)
        {
            var full = Path.Combine(source, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            await File.WriteAllTextAsync(full, content);
        }

        var extras = new List<ExtraFile>();
        string? logPath = null;
        if (log is not null)
        {
            logPath = $"logs/{Platform}/{name}/{version}/build.log";
            extras.Add(new ExtraFile(logPath, await HostFileAsync($"{name}.log", log)));
        }

        if (junit is not null) extras.Add(new ExtraFile($"logs/{Platform}/{name}/{version}/junit/check.xml", await HostFileAsync($"{name}.xml", junit)));
        extras.Add(new ExtraFile($"modules/{Platform}/{name}/{version}",
            await HostFileAsync($"{name}.module", module ?? $"#%Module1.0\nmodule-whatis \"{name} {version}\"\nprepend-path PATH $root/bin\n")));
        var result = await _repository.PublishDirectoryAsync(new ProductRef(name, version), source, new PublishOptions
        {
            BuildKey = buildKey,
            Dependencies = deps,
            Tests = new TestSummary(3, 0, 1, report),
            PublishedBy = publishedBy ?? "ci@site-a",
            ExtraFiles = extras,
            Log = logPath,
        }, null, CancellationToken.None);
        return result.Product.Root;
    }

    private async Task<string> HostFileAsync(string name, string content)
    {
        var path = _dir.Sub("extra-" + name);
        await File.WriteAllTextAsync(path, content, new UTF8Encoding(false));
        return path;
    }

    public async Task DisposeAsync()
    {
        await _serve.StopAsync();
        await _gateway.StopAsync();
        await _serve.DisposeAsync();
        await _gateway.DisposeAsync();
        await _service.DisposeAsync();
        await _repository.DisposeAsync();
        await _store.DisposeAsync();
        _dir.Dispose();
    }
}

[CollectionDefinition("stack")]
public sealed class StackCollection : ICollectionFixture<StackFixture>;
