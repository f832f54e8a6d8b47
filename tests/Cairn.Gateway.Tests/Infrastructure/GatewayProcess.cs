using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Cairn.Coordination;
using Cairn.Gateway.Client;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Gateway.Tests.Infrastructure;

public sealed record GatewayProcessOptions
{
    public DatabaseKind Database { get; init; } = DatabaseKind.Sqlite;

    /// <summary>An existing repository directory; null: a fresh one (cairn init) removed at the end.</summary>
    public string? Repository { get; init; }

    /// <summary>--signing-key for the gateway; null: unsigned.</summary>
    public string? SigningKey { get; init; }

    /// <summary>More arguments for cairn gateway (e.g. --lease-ttl 5).</summary>
    public IReadOnlyList<string> ExtraArguments { get; init; } = [];

    public string Platform { get; init; } = "linux-x86_64";
}

/// <summary>
/// <c>cairn gateway</c> as a real process on a free loopback port, over SQLite or a fresh PostgreSQL schema, with
/// helpers to register sites and issue tokens (in-process, on the same database), make clients, and stop it
/// politely (SIGTERM), kill it (SIGKILL) or restart it on the same port. Everything it made is removed at dispose.
/// Shared with the site-side tests (Sites/).
/// </summary>
public sealed partial class GatewayProcess : IAsyncDisposable
{
    [GeneratedRegex(@" on (?<url>http://[0-9.:\[\]a-z]+)")]
    private static partial Regex Listening();

    private readonly StringBuilder _log = new();
    private readonly TempDir? _repoDir;
    private Process? _process;

    private GatewayProcess(GatewayProcessOptions options, TestDatabase database, string repository, TempDir? repoDir)
    {
        Options = options;
        Database = database;
        Repository = repository;
        _repoDir = repoDir;
    }

    public GatewayProcessOptions Options { get; }

    public TestDatabase Database { get; }

    /// <summary>The repository directory the gateway publishes into (read it directly, or through <see cref="Url"/>).</summary>
    public string Repository { get; }

    public int Port { get; private set; }

    public Uri Url => new($"http://127.0.0.1:{Port}/");

    public bool Running => _process is { HasExited: false };

    public int ProcessId => _process?.Id ?? 0;

    public string Log
    {
        get
        {
            lock (_log) return _log.ToString();
        }
    }

    public static async Task<GatewayProcess> StartAsync(GatewayProcessOptions? options = null)
    {
        options ??= new GatewayProcessOptions();
        TempDir? repoDir = null;
        var repository = options.Repository;
        if (repository is null)
        {
            repoDir = new TempDir("cairn-gw-repo");
            repository = repoDir.Sub("repo");
            var init = new List<string> { "--repo", repository };
            if (options.SigningKey is not null) init.AddRange(["--signing-key", options.SigningKey]);
            await Exec.CairnOkAsync([.. init, "init", "--platform", options.Platform]);
        }

        var gateway = new GatewayProcess(options, TestDatabase.Create(options.Database), repository, repoDir);
        try
        {
            await gateway.LaunchAsync(0);
        }
        catch
        {
            await gateway.DisposeAsync();
            throw;
        }

        return gateway;
    }

    private async Task LaunchAsync(int port)
    {
        List<string> args = [.. CairnUnderTest.Command, "gateway", "--store", Repository, "--db", Database.Url, "--listen", $"http://127.0.0.1:{port}"];
        if (Options.SigningKey is not null) args.AddRange(["--signing-key", Options.SigningKey]);
        args.AddRange(Options.ExtraArguments);
        var bound = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = Exec.Start(args);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_log) _log.AppendLine(e.Data);
            var m = Listening().Match(e.Data);
            if (m.Success) bound.TrySetResult(new Uri(m.Groups["url"].Value).Port);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_log) _log.AppendLine(e.Data);
        };
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => bound.TrySetException(new InvalidOperationException($"cairn gateway exited before listening:\n{Log}"));
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        Port = await bound.Task.WaitAsync(timeout.Token);
    }

    /// <summary>Opens the gateway's coordination database in this process (SQLite and PostgreSQL both allow it while the gateway runs).</summary>
    public Task<ICoordinationStore> OpenDatabaseAsync() => CoordinationDatabase.OpenAsync(Database.Url, TimeProvider.System, NullLogger.Instance, CancellationToken.None);

    /// <summary>Registers a site (or updates it).</summary>
    public async Task<Site> AddSiteAsync(string name, string? platform = null, string? environment = null, params string[] labels)
    {
        await using var store = await OpenDatabaseAsync();
        return await store.RegisterSiteAsync(name, new SiteCapabilities(platform ?? Options.Platform, environment, labels), CancellationToken.None);
    }

    /// <summary>Issues a token for a registered site; paths default to everything, channels to any.</summary>
    public async Task<IssuedToken> IssueTokenAsync(string site, IReadOnlyList<string>? paths = null, IReadOnlyList<string>? channels = null)
    {
        await using var store = await OpenDatabaseAsync();
        return await store.IssueTokenAsync(site, new TokenScope(paths ?? ["/"], channels ?? ["*"]), CancellationToken.None);
    }

    /// <summary>Registers the site if needed, issues it a token and writes the token to a file (what --token-file reads).</summary>
    public async Task<string> TokenFileAsync(string site, string directory, IReadOnlyList<string>? paths = null, IReadOnlyList<string>? channels = null)
    {
        await AddSiteAsync(site);
        var token = await IssueTokenAsync(site, paths, channels);
        var file = Path.Combine(directory, $"{site}-{token.TokenId}.token");
        await File.WriteAllTextAsync(file, token.Secret + "\n");
        return file;
    }

    public async Task<bool> RevokeTokenAsync(string tokenId)
    {
        await using var store = await OpenDatabaseAsync();
        return await store.RevokeTokenAsync(tokenId, CancellationToken.None);
    }

    /// <summary>A client of this gateway acting with <paramref name="token"/> (null: public calls only).</summary>
    public GatewayClient Client(string? token) => new(Url, token);

    /// <summary>SIGTERM, and waits for the exit; returns the exit code.</summary>
    public async Task<int> StopAsync()
    {
        var p = _process ?? throw new InvalidOperationException("not started");
        if (!p.HasExited)
        {
            var r = await Exec.RunAsync(["kill", "-TERM", p.Id.ToString(CultureInfo.InvariantCulture)]);
            Assert.True(r.ExitCode == 0, r.ToString());
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await p.WaitForExitAsync(cts.Token);
        return p.ExitCode;
    }

    /// <summary>SIGKILL: no shutdown code runs (a crash, an OOM kill, a power cut of the process).</summary>
    public async Task KillAsync()
    {
        var p = _process ?? throw new InvalidOperationException("not started");
        if (p.HasExited) return;
        var r = await Exec.RunAsync(["kill", "-KILL", p.Id.ToString(CultureInfo.InvariantCulture)]);
        Assert.True(r.ExitCode == 0, r.ToString());
        await p.WaitForExitAsync();
    }

    /// <summary>Starts the gateway again on the same port, database and repository (after <see cref="StopAsync"/> or <see cref="KillAsync"/>).</summary>
    public async Task RestartAsync()
    {
        if (Running) throw new InvalidOperationException("the gateway still runs: stop or kill it first");
        _process?.Dispose();
        var port = Port;
        // The port was ours a moment ago; retry briefly in case the kernel has not let go of it yet.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await LaunchAsync(port);
                return;
            }
            catch (InvalidOperationException) when (attempt < 10)
            {
                await Task.Delay(200);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { } p)
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
                await p.WaitForExitAsync();
            }

            p.Dispose();
        }

        await Database.DisposeAsync();
        _repoDir?.Dispose();
    }
}
