using System.CommandLine;
using System.Text;
using System.Text.Json.Serialization.Metadata;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.Backends;
using Cairn.Repository.Http;
using Microsoft.Extensions.Logging;

namespace Cairn.Cli;

/// <summary>Options every command shares, and the plumbing that turns them into a repository, output and logging.</summary>
public static class GlobalOptions
{
    /// <summary>An option every command accepts (recursive), wherever it stands on the command line.</summary>
    private static Option<T> Shared<T>(string name, string description, params string[] aliases) =>
        new(name, aliases) { Description = description, Recursive = true };

    public static Option<string[]> Repo { get; } = new("--repo")
    {
        Description = "Repository directory, s3://BUCKET/PREFIX?endpoint=URL, or http(s):// URLs of servers holding it (comma-separated or repeated, tried in order) (default: $CAIRN_REPO)",
        Recursive = true,
        Arity = ArgumentArity.ZeroOrMore,
    };

    public static Option<string?> Proxy { get; } = Shared<string?>("--proxy",
        "HTTP proxies for http(s) repositories, tried in order (comma-separated; DIRECT = none) (default: $HTTP_PROXY)");

    public static Option<string?> SigningKey { get; } = Shared<string?>("--signing-key",
        "Publishing key that signs each new revision of a repository directory (default: $CAIRN_SIGNING_KEY; none: unsigned)");

    public static Option<string?> Trust { get; } = Shared<string?>("--trust",
        "Root key file or fingerprint (ed25519:HEX) an http(s) repository must be signed under (default: $CAIRN_TRUST; none: unsigned)");

    public static Option<string?> HttpTimeout { get; } = Shared<string?>("--http-timeout",
        "Seconds one HTTP request may take, for http(s) repositories (default: $CAIRN_HTTP_TIMEOUT or 60)");

    public static Option<string?> HttpDeadline { get; } = Shared<string?>("--http-deadline",
        "Seconds one file may take across all servers, proxies and retries (default: $CAIRN_HTTP_DEADLINE or 600)");

    public static Option<string?> LowSpeedLimit { get; } = Shared<string?>("--low-speed-limit",
        "Abandon a server sending slower than this many bytes/s over $CAIRN_LOW_SPEED_TIME (20) seconds; 0 = off (default: $CAIRN_LOW_SPEED_LIMIT or 1K)");

    public static Option<bool> Json { get; } = Shared<bool>("--json",
        "Print machine-readable JSON on stdout");

    public static Option<bool> Verbose { get; } = Shared<bool>("--verbose",
        "Log what is happening on stderr", "-v");

    public static Option<int> LockTimeout { get; } = new("--lock-timeout")
    {
        Description = "Seconds to wait for another cairn process holding the repository lock",
        DefaultValueFactory = _ => 600,
        Recursive = true,
    };
}

public sealed class CliContext(ParseResult parse, TextWriter stdout, TextWriter stderr) : IDisposable
{
    private readonly ILoggerFactory _loggers = LoggerFactory.Create(b =>
    {
        b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        b.SetMinimumLevel(parse.GetValue(GlobalOptions.Verbose) ? LogLevel.Information : LogLevel.Warning);
        b.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
    });

    public ParseResult Parse => parse;

    public TextWriter Out => stdout;

    public TextWriter Error => stderr;

    public bool Json => parse.GetValue(GlobalOptions.Json);

    public TimeProvider Time { get; } = TimeProvider.System;

    public ILogger Logger => _loggers.CreateLogger("cairn");

    /// <summary>A repository a command takes as an argument (cairn mount REPO …) rather than through --repo.</summary>
    public string? RepositoryOverride { get; set; }

    public string RepositoryPath =>
        RepositoryOverride ?? (parse.GetValue(GlobalOptions.Repo) is { Length: > 0 } repos ? string.Join(',', repos) : null)
        ?? Environment.GetEnvironmentVariable("CAIRN_REPO")
        ?? throw new CairnException(ErrorCode.Usage, "no repository given", "pass --repo PATH or set CAIRN_REPO");

    /// <summary>--repo (or CAIRN_REPO, or the command's argument) parsed: a directory, an s3:// bucket or http(s) servers.</summary>
    public RepositoryLocation Location => RepositoryLocation.Parse(RepositoryPath);

    /// <summary>The location of a repository <paramref name="command"/> writes; http(s) servers are refused (CAIRN-E0701).</summary>
    public WritableLocation WritableLocation(string command) => RepositoryLocation.ParseWritable(RepositoryPath, command);

    public Task<ProductRepository> OpenRepositoryAsync(CancellationToken ct) => RepositoryOpener.OpenAsync(Location, OpenSettings(), ct);

    /// <summary>Opens the repository <paramref name="command"/> writes; an http(s) --repo is refused before anything is read.</summary>
    public Task<WritableRepository> OpenWritableRepositoryAsync(string command, CancellationToken ct) =>
        RepositoryOpener.OpenWritableAsync(WritableLocation(command), OpenSettings(), ct);

    public OpenSettings OpenSettings() => new()
    {
        Time = Time,
        Logger = Logger,
        LockTimeout = TimeSpan.FromSeconds(parse.GetValue(GlobalOptions.LockTimeout)),
        Signer = Signer(),
        Remote = http => RemoteRepositoryOptions(http.Servers),
    };

    /// <summary>The key that signs build attestations: --signing-key / CAIRN_SIGNING_KEY, else this host's builder key in $CAIRN_STATE.</summary>
    public Cairn.Trust.KeyPair BuilderKey() =>
        Cairn.Trust.Provenance.BuilderKeys.Load(parse.GetValue(GlobalOptions.SigningKey) ?? Environment.GetEnvironmentVariable("CAIRN_SIGNING_KEY"),
            Cairn.Trust.ManifestVerifier.DefaultStateDirectory);

    /// <summary>The publishing key from --signing-key or CAIRN_SIGNING_KEY, read at the first commit (readers need no access to it).</summary>
    public Cairn.Repository.IManifestSigner? Signer() =>
        (parse.GetValue(GlobalOptions.SigningKey) ?? Environment.GetEnvironmentVariable("CAIRN_SIGNING_KEY")) is { Length: > 0 } key
            ? new Cairn.Trust.LazySigner(key, Time)
            : null;

    /// <summary>Servers from --repo, proxies from --proxy or HTTP_PROXY, the client cache from the command's --cache or CAIRN_CACHE.</summary>
    /// <param name="servers">Other servers than --repo's (cairn build --deps-from http://…), with the same proxies, cache and trust.</param>
    public RemoteOptions RemoteRepositoryOptions(string servers) => RemoteRepositoryOptions(HttpLocation.ParseServers([servers]));

    private RemoteOptions RemoteRepositoryOptions(IReadOnlyList<Uri> servers)
    {
        var cacheOption = parse.CommandResult.Command.Options.OfType<Option<string?>>().FirstOrDefault(o => o.Name == "--cache");
        var cache = (cacheOption is null ? null : parse.GetValue(cacheOption))
            ?? Environment.GetEnvironmentVariable("CAIRN_CACHE") ?? HttpRepository.DefaultCacheDirectory;
        var size = Environment.GetEnvironmentVariable("CAIRN_CACHE_SIZE");
        var verifier = (parse.GetValue(GlobalOptions.Trust) ?? Environment.GetEnvironmentVariable("CAIRN_TRUST")) is { Length: > 0 } trust
            ? new Cairn.Trust.ManifestVerifier(trust, Cairn.Trust.ManifestVerifier.DefaultStateDirectory, Time, Logger)
            : null;
        return new RemoteOptions
        {
            Servers = servers,
            Proxies = RemoteOptions.ParseProxies(parse.GetValue(GlobalOptions.Proxy)
                ?? Environment.GetEnvironmentVariable("HTTP_PROXY") ?? Environment.GetEnvironmentVariable("http_proxy")),
            CacheDirectory = cache,
            Verifier = verifier,
            Log = verifier is null ? null : LogVerifier(verifier),
            CacheMaxBytes = string.IsNullOrEmpty(size) ? new RemoteOptions { Servers = [] }.CacheMaxBytes : RemoteOptions.ParseSize(size),
        }.WithSettings(name => name switch
        {
            // The options win over the environment.
            "CAIRN_HTTP_TIMEOUT" => parse.GetValue(GlobalOptions.HttpTimeout) ?? Environment.GetEnvironmentVariable(name),
            "CAIRN_HTTP_DEADLINE" => parse.GetValue(GlobalOptions.HttpDeadline) ?? Environment.GetEnvironmentVariable(name),
            "CAIRN_LOW_SPEED_LIMIT" => parse.GetValue(GlobalOptions.LowSpeedLimit) ?? Environment.GetEnvironmentVariable(name),
            _ => Environment.GetEnvironmentVariable(name),
        });
    }

    /// <summary>The publication log's client checks (docs/security.md): signed by the publishing key the head's signature names; CAIRN_LOG_POLICY names a witness policy.</summary>
    public Cairn.Trust.Transparency.LogVerifier LogVerifier(Cairn.Trust.ManifestVerifier verifier) =>
        new(Cairn.Trust.ManifestVerifier.DefaultStateDirectory, () => verifier.PublishingKeys, Time,
            Environment.GetEnvironmentVariable("CAIRN_LOG_POLICY") is { Length: > 0 } policy ? Cairn.Trust.Transparency.WitnessPolicy.Load(policy) : null, Logger,
            verifier.TrustedRoot[Cairn.Trust.Keys.FingerprintPrefix.Length..][..16]);

    /// <summary>The materialize cache: the command's --cache, else CAIRN_CACHE, else the written repository's own.</summary>
    public static string CacheDirectory(string? explicitCache, WritableLocation location) =>
        explicitCache ?? Environment.GetEnvironmentVariable("CAIRN_CACHE") ?? location.CacheDirectory;

    /// <summary>Progress on stderr only when it is a terminal; scripts and CI logs stay quiet.</summary>
    public IProgress<long>? Progress(string label, long total) =>
        Console.IsErrorRedirected || Json ? null : new TerminalProgress(stderr, label, total);

    public void EndProgress(IProgress<long>? progress) => (progress as TerminalProgress)?.Finish();

    /// <summary>Prints the result as JSON (--json), described by <paramref name="type"/> from <see cref="CliJson"/>, or as the human text.</summary>
    public void Write<T>(T result, JsonTypeInfo<T> type, Action<TextWriter> human)
    {
        if (Json)
        {
            stdout.WriteLine(Encoding.UTF8.GetString(CairnJson.SerializeIndented(result, type)));
        }
        else
        {
            human(stdout);
        }
    }

    public void Dispose() => _loggers.Dispose();
}

internal sealed class TerminalProgress(TextWriter stderr, string label, long total) : IProgress<long>
{
    private long _lastTicks;
    private readonly Lock _lock = new();

    public void Report(long value)
    {
        var now = Environment.TickCount64;
        if (now - Interlocked.Read(ref _lastTicks) < 100) return;
        lock (_lock)
        {
            _lastTicks = now;
            var text = total > 0 ? $"{label}: {Units.Bytes(value)} of {Units.Bytes(total)} ({100.0 * value / total:0}%)" : $"{label}: {Units.Bytes(value)}";
            stderr.Write($"\r{text,-70}");
        }
    }

    public void Finish()
    {
        lock (_lock)
        {
            stderr.Write($"\r{"",-70}\r");
        }
    }
}

public static class Units
{
    public static string Bytes(long n) => n switch
    {
        < 1024 => $"{n} B",
        < 1 << 20 => $"{n / 1024.0:0.0} KiB",
        < 1 << 30 => $"{n / 1048576.0:0.0} MiB",
        _ => $"{n / 1073741824.0:0.00} GiB",
    };
}
