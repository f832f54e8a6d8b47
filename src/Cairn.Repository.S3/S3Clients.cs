using Amazon.Runtime;
using Amazon.S3;

namespace Cairn.Repository.S3;

/// <summary>Makes the S3 client for a repository's <see cref="S3Location"/> (parsed by Cairn.Repository).</summary>
public static class S3Clients
{
    public static AmazonS3Client CreateClient(this S3Location location)
    {
        ArgumentNullException.ThrowIfNull(location);
        var config = new AmazonS3Config
        {
            // Checksums only where S3 requires them: S3-compatible servers (s3rver, older Ceph) reject the
            // aws-chunked trailers the v4 SDK sends by default.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            AuthenticationRegion = location.Region,
            MaxErrorRetry = 4,
        };
        if (location.Endpoint is { } e)
        {
            config.ServiceURL = e.ToString();
            config.ForcePathStyle = true;
        }
        else
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(location.Region);
        }

        var key = location.AccessKey ?? Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID");
        var secret = location.SecretKey ?? Environment.GetEnvironmentVariable("AWS_SECRET_ACCESS_KEY");
        return key is { Length: > 0 } && secret is not null
            ? new AmazonS3Client(new BasicAWSCredentials(key, secret), config)
            : new AmazonS3Client(config);
    }
}
