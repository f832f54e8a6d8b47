using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Cairn.Core;

namespace Cairn.Repository.S3;

/// <summary>
/// Where a repository lives in S3-compatible storage: <c>s3://[KEY:SECRET@]BUCKET[/PREFIX][?endpoint=URL&amp;region=R]</c>.
/// Credentials come from the URL's user info, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else the SDK's default chain.
/// </summary>
public sealed record S3Location(string Bucket, string Prefix, Uri? Endpoint, string Region, string? AccessKey, string? SecretKey)
{
    public static bool IsS3(string? repository) => repository?.StartsWith("s3://", StringComparison.OrdinalIgnoreCase) == true;

    public static S3Location Parse(string url)
    {
        if (!IsS3(url) || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
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
    public string Display => $"s3://{Bucket}/{Prefix}";

    public string Key(string relative) => Prefix + relative;

    public AmazonS3Client CreateClient()
    {
        var config = new AmazonS3Config
        {
            // Checksums only where S3 requires them: S3-compatible servers (s3rver, older Ceph) reject the
            // aws-chunked trailers the v4 SDK sends by default.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            AuthenticationRegion = Region,
            MaxErrorRetry = 4,
        };
        if (Endpoint is { } e)
        {
            config.ServiceURL = e.ToString();
            config.ForcePathStyle = true;
        }
        else
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(Region);
        }

        var key = AccessKey ?? Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID");
        var secret = SecretKey ?? Environment.GetEnvironmentVariable("AWS_SECRET_ACCESS_KEY");
        return key is { Length: > 0 } && secret is not null
            ? new AmazonS3Client(new BasicAWSCredentials(key, secret), config)
            : new AmazonS3Client(config);
    }

    private static CairnException Invalid(string url, string why) =>
        new(ErrorCode.StorageInvalidUrl, $"invalid S3 repository URL '{Redact(url)}': {why}",
            "write it as s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=REGION");

    private static string Redact(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var u) && u.UserInfo.Length > 0 ? url.Replace(u.UserInfo + "@", "***@", StringComparison.Ordinal) : url;
}
