using System.Text.Json;

namespace Cairn.Cli.Tests.Infrastructure;

/// <summary>What a repository looks like from outside: head, kept revisions, products and their roots, pack files.</summary>
/// <remarks>Lists are joined into strings so that records compare by value.</remarks>
public sealed record RepoState(long Head, int Revisions, string Products, string Packs)
{
    public bool Has(string product) => Products.Split(", ").Any(p => p.Contains($"/{product}=", StringComparison.Ordinal));
}

/// <summary>A repository made with `cairn init` in a temp directory, driven only through the CLI.</summary>
public sealed class TestRepository
{
    /// <summary>Wraps an existing repository directory.</summary>
    public TestRepository(string path) => Path = path;

    public string Path { get; }

    public string PacksDirectory => System.IO.Path.Combine(Path, "packs");

    public static async Task<TestRepository> CreateAsync(string path, CancellationToken ct)
    {
        var r = await Exec.CairnAsync(["init", path], ct);
        Assert.True(r.ExitCode == 0, r.ToString());
        return new TestRepository(path);
    }

    public Task<RunResult> RunAsync(CancellationToken ct, params string[] args) => Exec.CairnAsync(["--repo", Path, .. args], ct);

    public string[] Command(params string[] args) => Exec.CairnCommand(["--repo", Path, .. args]);

    /// <summary>Runs cairn and fails the test unless it exits 0.</summary>
    public async Task<RunResult> OkAsync(CancellationToken ct, params string[] args)
    {
        var r = await RunAsync(ct, args);
        Assert.True(r.ExitCode == 0, r.ToString());
        return r;
    }

    public async Task<string> RootAsync(string product, CancellationToken ct)
    {
        var r = await OkAsync(ct, "show", product, "--json");
        using var doc = JsonDocument.Parse(r.Stdout);
        return doc.RootElement.GetProperty("product").GetProperty("root").GetString()!;
    }

    public async Task<RepoState> StateAsync(CancellationToken ct)
    {
        // Read-only commands take no lock: run both at once.
        var historyTask = OkAsync(ct, "history", "--json");
        var listTask = OkAsync(ct, "list", "--json");
        var history = await historyTask;
        var list = await listTask;
        using var h = JsonDocument.Parse(history.Stdout);
        using var l = JsonDocument.Parse(list.Stdout);
        var products = l.RootElement.GetProperty("products").EnumerateArray()
            .Select(p => $"{p.GetProperty("platform").GetString()}/{p.GetProperty("name").GetString()}/{p.GetProperty("version").GetString()}={p.GetProperty("root").GetString()![..12]}")
            .Order(StringComparer.Ordinal).ToList();
        var packs = Directory.EnumerateFiles(PacksDirectory).Select(System.IO.Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList();
        return new RepoState(h.RootElement.GetProperty("head").GetInt64(), h.RootElement.GetProperty("revisions").GetArrayLength(),
            string.Join(", ", products), string.Join(", ", packs.Select(p => p[..Math.Min(12, p.Length)] + System.IO.Path.GetExtension(p))));
    }

    /// <summary>verify --full must pass; returns its report for further checks.</summary>
    public async Task VerifyFullOkAsync(CancellationToken ct)
    {
        var r = await RunAsync(ct, "verify", "--full", "--json");
        Assert.True(r.ExitCode == 0, "verify --full failed: " + r);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.True(doc.RootElement.GetProperty("ok").GetBoolean(), r.ToString());
    }

    /// <summary>The problems verify reports: (code, products it names).</summary>
    public static IReadOnlyList<(string Code, IReadOnlyList<string> Products)> Problems(RunResult verify)
    {
        using var doc = JsonDocument.Parse(verify.Stdout);
        return doc.RootElement.GetProperty("problems").EnumerateArray()
            .Select(p => (p.GetProperty("code").GetString()!, (IReadOnlyList<string>)p.GetProperty("products").EnumerateArray().Select(x => x.GetString()!).ToList()))
            .ToList();
    }
}

public static class CairnAssert
{
    /// <summary>A refused command: the documented exit code and the error code on stderr.</summary>
    public static void Fails(RunResult r, int exitCode, string code)
    {
        Assert.True(r.ExitCode == exitCode, $"expected exit {exitCode} with {code}; got {r}");
        Assert.True(r.Stderr.Contains($"cairn: error {code}", StringComparison.Ordinal), $"expected {code} on stderr; got {r}");
    }
}
