using System.Net;
using Cairn.Core;

namespace Cairn.Repository;

/// <summary>
/// Where a repository lives, parsed once from <c>--repo</c>, <c>CAIRN_REPO</c> or a gateway's store: a directory, an
/// S3 bucket (<see cref="S3Location"/>) or one or more http(s) servers (<see cref="HttpLocation"/>). The kind is the
/// type; only the opener (Cairn.Repository.Backends) turns a location into a repository.
/// </summary>
public abstract record RepositoryLocation
{
    /// <summary>How the location is shown in messages (no credentials).</summary>
    public abstract string Display { get; }

    public static RepositoryLocation Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.StartsWith("s3://", StringComparison.OrdinalIgnoreCase)) return S3Location.Parse(text);
        if (text.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || text.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            return new HttpLocation(HttpLocation.ParseServers([text]));
        }

        return new DirectoryLocation(text);
    }

    /// <summary>
    /// Parses the location of a repository <paramref name="command"/> writes: http(s) servers serve a repository
    /// read-only, so they are refused here (CAIRN-E0701), before the command does anything.
    /// </summary>
    public static WritableLocation ParseWritable(string text, string command) =>
        Parse(text) switch
        {
            WritableLocation writable => writable,
            var other => throw new CairnException(ErrorCode.RemoteReadOnly,
                $"cairn {command} writes the repository, and {other.Display} is served over http(s), which is read-only",
                "run it where the repository is: --repo DIR or --repo s3://BUCKET/PREFIX (the server's own repository)"),
        };

    /// <summary>The user's cache of remote repositories ($XDG_CACHE_HOME/cairn, else ~/.cache/cairn).</summary>
    public static string UserCacheDirectory =>
        Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "cairn");
}

/// <summary>A repository this process can write: a directory or an S3 bucket.</summary>
public abstract record WritableLocation : RepositoryLocation
{
    /// <summary>Local work space of builds into this repository (logs, scratch trees).</summary>
    public abstract string BuildsDirectory { get; }

    /// <summary>Local cache of materialized files for this repository.</summary>
    public abstract string CacheDirectory { get; }
}

/// <summary>A repository in a local directory (the default; docs/format/repository.md).</summary>
public sealed record DirectoryLocation(string Path) : WritableLocation
{
    public string FullPath => System.IO.Path.GetFullPath(Path);

    public override string Display => Path;

    public override string BuildsDirectory => System.IO.Path.Combine(FullPath, "builds");

    public override string CacheDirectory => System.IO.Path.Combine(FullPath, "cache");
}

/// <summary>One repository served by several http(s) servers, tried in order (docs/distribution.md).</summary>
public sealed record HttpLocation(IReadOnlyList<Uri> Servers) : RepositoryLocation
{
    public override string Display => string.Join(",", Servers);

    /// <summary>Parses a server list: comma-separated http(s) URLs (each given value may hold several).</summary>
    public static IReadOnlyList<Uri> ParseServers(IEnumerable<string> values)
    {
        var result = new List<Uri>();
        foreach (var part in values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            if (!Uri.TryCreate(part, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            {
                throw new CairnException(ErrorCode.RemoteInvalidUrl, $"'{part}' is not an http:// or https:// URL", "give server URLs such as https://repo.example.org/cairn, separated by commas");
            }

            result.Add(uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/"));
        }

        if (result.Count == 0)
        {
            throw new CairnException(ErrorCode.RemoteInvalidUrl, "no server URL given", "pass --repo https://HOST/PATH (several separated by commas)");
        }

        return result;
    }
}

/// <summary>
/// Where a repository lives in S3-compatible storage: <c>s3://[KEY:SECRET@]BUCKET[/PREFIX][?endpoint=URL&amp;region=R]</c>.
/// Credentials come from the URL's user info, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else the SDK's default chain
/// (the client is made by Cairn.Repository.S3).
/// </summary>
public sealed record S3Location(string Bucket, string Prefix, Uri? Endpoint, string Region, string? AccessKey, string? SecretKey) : WritableLocation
{
    public static new S3Location Parse(string url)
    {
        if (!url.StartsWith("s3://", StringComparison.OrdinalIgnoreCase) || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw Invalid(url, "expected s3://BUCKET/PREFIX");
        }

        Uri? endpoint = null;
        var region = Environment.GetEnvironmentVariable("AWS_REGION") is { Length: > 0 } r ? r : "us-east-1";
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            var value = kv.Length == 2 ? WebUtility.UrlDecode(kv[1]) : "";
            switch (kv[0])
            {
                case "endpoint":
                    if (!Uri.TryCreate(value, UriKind.Absolute, out endpoint) || endpoint.Scheme is not ("http" or "https"))
                    {
                        throw Invalid(url, $"endpoint '{value}' is not an http(s) URL");
                    }

                    break;
                case "region":
                    region = value;
                    break;
                default:
                    throw Invalid(url, $"unknown parameter '{kv[0]}'");
            }
        }

        string? key = null, secret = null;
        if (uri.UserInfo is { Length: > 0 } info)
        {
            var parts = info.Split(':', 2);
            key = Uri.UnescapeDataString(parts[0]);
            secret = parts.Length == 2 ? Uri.UnescapeDataString(parts[1]) : null;
        }

        var prefix = uri.AbsolutePath.Trim('/');
        return new S3Location(uri.Host, prefix.Length == 0 ? "" : prefix + "/", endpoint, region, key, secret);
    }

    /// <summary>The URL without credentials, for messages and logs.</summary>
    public override string Display => $"s3://{Bucket}/{Prefix}";

    public string Key(string relative) => Prefix + relative;

    /// <summary>Builds of a bucket's repository work in the user's cache (a bucket has no local directory).</summary>
    public override string BuildsDirectory => System.IO.Path.Combine(UserCacheDirectory, "s3", Bucket, Prefix, "builds");

    public override string CacheDirectory => System.IO.Path.Combine(UserCacheDirectory, "s3", Bucket, Prefix, "cache");

    private static CairnException Invalid(string url, string why) =>
        new(ErrorCode.StorageInvalidUrl, $"invalid S3 repository URL '{Redact(url)}': {why}",
            "write it as s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=REGION");

    private static string Redact(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var u) && u.UserInfo.Length > 0 ? url.Replace(u.UserInfo + "@", "***@", StringComparison.Ordinal) : url;
}
