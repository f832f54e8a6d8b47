using System.Globalization;
using System.Text.RegularExpressions;

namespace Cairn.Fuse.Tests.Stack;

/// <summary>
/// zlib → libpng → freetype from examples/stack, built once with the real cairn CLI and bubblewrap (about a minute)
/// into a repository served by `cairn serve` on loopback. Tests mount it (each on its own mount point and cache)
/// and must not change it.
/// </summary>
public sealed partial class FreetypeStackFixture : IAsyncLifetime
{
    public const string Platform = "linux-x86_64";

    public const string DeploymentRoot = "/cvmfs/cairn.test";

    public const string Site = "fuse";

    private System.Diagnostics.Process? _server;

    public string Root { get; } = Directory.CreateTempSubdirectory("cairn-fuse-stack-").FullName;

    public string Recipes => Path.Combine(Root, "recipes");

    public string Repository => Path.Combine(Root, "repo");

    public string Url { get; private set; } = "";

    public string ProductPath(string name, string version) => $"{Platform}/{name}/{version}";

    public async Task InitializeAsync()
    {
        var examples = Path.Combine(RepoRoot(), "examples", "stack");
        await Shell.ShAsync($"mkdir -p {Shell.Q(Recipes)} && cp -a {string.Join(' ', new[] { "zlib", "libpng", "freetype", "sources" }.Select(n => Shell.Q(Path.Combine(examples, n))))} {Shell.Q(Recipes)}/");
        var r = await Shell.CairnAsync("init", Repository, "--platform", Platform);
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Shell.CairnAsync(TimeSpan.FromMinutes(15), "--repo", Repository, "build", Recipes, "--only", "freetype",
            "--deployment-root", DeploymentRoot, "--deployment-site", Site);
        Assert.True(r.ExitCode == 0, r.ToString());

        _server = Shell.StartCairn("--repo", Repository, "serve", "--listen", "http://127.0.0.1:0");
        var line = await _server.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Url = UrlPattern().Match(line ?? "").Value;
        Assert.False(string.IsNullOrEmpty(Url), line);
    }

    /// <summary>The server's request counter for one kind of file (pack range reads, indexes, manifest, …), all methods and statuses.</summary>
    public async Task<long> RequestsAsync(string kind)
    {
        using var http = new HttpClient();
        var text = await http.GetStringAsync($"{Url}/metrics");
        return text.Split('\n')
            .Where(l => l.StartsWith($"cairn_http_requests_total{{kind=\"{kind}\",", StringComparison.Ordinal))
            .Sum(l => long.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
    }

    public async Task DisposeAsync()
    {
        if (_server is { HasExited: false })
        {
            _server.Kill();
            _server.WaitForExit(10_000);
        }

        _server?.Dispose();
        // Builds leave read-only directories in the unpacked-object cache.
        await Shell.ShAsync($"chmod -R u+w {Shell.Q(Root)}; rm -rf {Shell.Q(Root)}", check: false);
    }

    private static string RepoRoot([System.Runtime.CompilerServices.CallerFilePath] string sourceFile = "")
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile) })
        {
            for (var dir = start; !string.IsNullOrEmpty(dir); dir = Path.GetDirectoryName(dir))
            {
                if (File.Exists(Path.Combine(dir, "Cairn.slnx"))) return dir;
            }
        }

        throw new InvalidOperationException("cannot find the checkout (Cairn.slnx)");
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex UrlPattern();
}

[CollectionDefinition(Name)]
public sealed class FreetypeStackCollection : ICollectionFixture<FreetypeStackFixture>
{
    public const string Name = "freetype stack served over http";
}
