using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Repository.Http;

/// <summary>How a remote repository is reached: servers in failover order, proxies, the local cache and the limits.</summary>
public sealed record RemoteOptions
{
    /// <summary>Base URLs of servers holding the same repository (a cairn serve, or a static web server), tried in order.</summary>
    public required IReadOnlyList<Uri> Servers { get; init; }

    /// <summary>HTTP proxies tried in order for each server; null (DIRECT) means no proxy. Empty: direct only.</summary>
    public IReadOnlyList<Uri?> Proxies { get; init; } = [];

    /// <summary>Local cache of verified objects and pack indexes; null: no cache.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Size limit of the cache; the least recently used entries are evicted beyond it.</summary>
    public long CacheMaxBytes { get; init; } = 10L << 30;

    /// <summary>One request, from sending it to the last byte of the body.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A request whose data arrives slower than this many bytes per second, averaged over <see cref="LowSpeedTime"/>,
    /// is abandoned and the next server asked (like curl's --speed-limit); 0 turns the check off. It also bounds the
    /// wait for the response headers.
    /// </summary>
    public long LowSpeedLimit { get; init; } = 1024;

    public TimeSpan LowSpeedTime { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Everything one file may take: every server, proxy and retry together (CAIRN-E0707 beyond it).</summary>
    public TimeSpan Deadline { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Further rounds over all servers after a round in which some failed (refused, timeout, 5xx, too slow).</summary>
    public int Retries { get; init; } = 1;

    /// <summary>Pause before the first retry round, doubling for each further one.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A server or proxy that failed is tried last for this long, doubling per failure up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(2);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Bounds for bodies whose size nothing declares (manifests, revisions, indexes).</summary>
    public long MaxManifestBytes { get; init; } = 64L << 20;

    public long MaxIndexBytes { get; init; } = 256L << 20;

    /// <summary>Largest object accepted (an index entry declaring more is refused).</summary>
    public long MaxObjectBytes { get; init; } = 256L << 20;

    /// <summary>
    /// Checks signed manifests (docs/security.md); null: the repository is read unsigned. When set, no manifest is
    /// accepted without a valid signature.
    /// </summary>
    public IManifestVerifier? Verifier { get; init; }

    /// <summary>Checks the publication log whenever a signed head or revision is read (docs/security.md); null: not checked.</summary>
    public Transparency.ILogChecker? Log { get; init; }

    /// <summary>Fetch each object from /objects/&lt;digest&gt; (cairn serve only) instead of a range of its pack.</summary>
    public bool PreferObjectUrls { get; init; }

    /// <summary>
    /// Applies the network settings given as environment variables (docs/distribution.md): CAIRN_HTTP_TIMEOUT,
    /// CAIRN_HTTP_DEADLINE, CAIRN_LOW_SPEED_TIME and CAIRN_RETRY_DELAY in seconds, CAIRN_LOW_SPEED_LIMIT as a size per
    /// second (0 = off), CAIRN_HTTP_RETRIES as a count. Explicit values (the CLI's options) are applied after this.
    /// </summary>
    public RemoteOptions WithSettings(Func<string, string?> setting)
    {
        var o = this;
        if (setting("CAIRN_HTTP_TIMEOUT") is { Length: > 0 } timeout) o = o with { RequestTimeout = Seconds("CAIRN_HTTP_TIMEOUT", timeout) };
        if (setting("CAIRN_HTTP_DEADLINE") is { Length: > 0 } deadline) o = o with { Deadline = Seconds("CAIRN_HTTP_DEADLINE", deadline) };
        if (setting("CAIRN_LOW_SPEED_TIME") is { Length: > 0 } time) o = o with { LowSpeedTime = Seconds("CAIRN_LOW_SPEED_TIME", time) };
        if (setting("CAIRN_RETRY_DELAY") is { Length: > 0 } delay) o = o with { RetryDelay = Seconds("CAIRN_RETRY_DELAY", delay, allowZero: true) };
        if (setting("CAIRN_LOW_SPEED_LIMIT") is { Length: > 0 } limit)
        {
            o = o with { LowSpeedLimit = limit.Trim() == "0" ? 0 : Size("CAIRN_LOW_SPEED_LIMIT", limit) };
        }

        if (setting("CAIRN_HTTP_RETRIES") is { Length: > 0 } retries)
        {
            if (!int.TryParse(retries, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) || n > 10)
            {
                throw Invalid("CAIRN_HTTP_RETRIES", retries, "a count from 0 to 10");
            }

            o = o with { Retries = n };
        }

        return o;
    }

    private static TimeSpan Seconds(string name, string text, bool allowZero = false)
    {
        if (!double.TryParse(text, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out var s)
            || s > 86_400 || (s <= 0 && !allowZero) || s < 0)
        {
            throw Invalid(name, text, "a number of seconds such as 30 or 0.5");
        }

        return TimeSpan.FromSeconds(s);
    }

    private static long Size(string name, string text)
    {
        try
        {
            return ParseSize(text);
        }
        catch (CairnException)
        {
            throw Invalid(name, text, "a size such as 1K or 1048576");
        }
    }

    private static CairnException Invalid(string name, string text, string expected) =>
        new(ErrorCode.RemoteSettingInvalid, $"{name}='{text}' is not {expected}", $"fix or unset {name} (docs/distribution.md lists the network settings)");

    /// <summary>Parses a server list: comma-separated http(s) URLs.</summary>
    public static IReadOnlyList<Uri> ParseServers(IEnumerable<string> values) => HttpLocation.ParseServers(values);

    /// <summary>Parses a proxy list like CVMFS's: entries separated by ',', ';' or '|'; DIRECT means no proxy.</summary>
    public static IReadOnlyList<Uri?> ParseProxies(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return [];
        var result = new List<Uri?>();
        foreach (var part in value.Split([',', ';', '|'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (part.Equals("DIRECT", StringComparison.OrdinalIgnoreCase))
            {
                result.Add(null);
                continue;
            }

            var text = part.Contains("://", StringComparison.Ordinal) ? part : "http://" + part;
            if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp)
            {
                throw new CairnException(ErrorCode.RemoteInvalidUrl, $"'{part}' is not a proxy URL", "give proxies as http://HOST:PORT (or DIRECT), separated by commas");
            }

            result.Add(uri);
        }

        return result;
    }

    /// <summary>Parses sizes such as 500M, 10G, 1048576.</summary>
    public static long ParseSize(string text)
    {
        var t = text.Trim();
        long factor = 1;
        if (t.Length > 0 && char.IsLetter(t[^1]))
        {
            factor = char.ToUpperInvariant(t[^1]) switch
            {
                'K' => 1L << 10,
                'M' => 1L << 20,
                'G' => 1L << 30,
                'T' => 1L << 40,
                _ => 0,
            };
            t = t[..^1];
        }

        if (factor == 0 || !long.TryParse(t, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) || n <= 0)
        {
            throw new CairnException(ErrorCode.Usage, $"'{text}' is not a size", "write a size such as 500M or 10G");
        }

        return n * factor;
    }
}
