using Cairn.Core;
using Microsoft.Extensions.Logging;

namespace Cairn.Repository.S3;

/// <summary>Creates and opens repositories kept in S3-compatible object storage (docs/adr/0007-s3-backend.md).</summary>
public static class S3Repository
{
    public const int FormatVersion = 1;
    private const string ConfigKey = RepositoryFiles.Config;

    public static Task<WritableRepository> InitAsync(string url, string? name, string? platform, TimeProvider time, ILogger? logger, TimeSpan lockTimeout, CancellationToken ct, IManifestSigner? signer = null) =>
        InitAsync(S3Location.Parse(url), name, platform, time, logger, lockTimeout, ct, signer);

    public static async Task<WritableRepository> InitAsync(S3Location location, string? name, string? platform, TimeProvider time, ILogger? logger, TimeSpan lockTimeout, CancellationToken ct, IManifestSigner? signer = null)
    {
        ArgumentNullException.ThrowIfNull(location);
        var s3 = new S3Calls(location.CreateClient(), location);
        var config = new RepositoryConfig(FormatVersion, name ?? (location.Prefix.Length > 0 ? location.Prefix.TrimEnd('/').Split('/')[^1] : location.Bucket),
            platform ?? Platforms.Current, time.GetUtcNow());
        Platforms.Validate(config.Platform);
        // Look first (servers without conditional writes ignore If-None-Match), then create only if absent.
        var created = await s3.GetAsync(ConfigKey, ct).ConfigureAwait(false) is null
            && await s3.PutAsync(ConfigKey, CairnJson.Serialize(config, CoreJson.Default.RepositoryConfig), ct, ifNoneMatch: true).ConfigureAwait(false);
        s3.Client.Dispose();
        if (!created) throw new CairnException(ErrorCode.RepositoryExists, $"{location.Display} already holds a Cairn repository", "use it as it is, or choose another prefix");
        var repo = await OpenAsync(location, time, logger, lockTimeout, ct, signer).ConfigureAwait(false);
        await repo.InitializeAsync(ct).ConfigureAwait(false);
        return repo;
    }

    /// <param name="signer">Signs every revision committed through this repository (format §6.1); null: unsigned.</param>
    public static Task<WritableRepository> OpenAsync(string url, TimeProvider time, ILogger? logger, TimeSpan lockTimeout, CancellationToken ct, IManifestSigner? signer = null) =>
        OpenAsync(S3Location.Parse(url), time, logger, lockTimeout, ct, signer);

    /// <param name="signer">Signs every revision committed through this repository (format §6.1); null: unsigned.</param>
    public static async Task<WritableRepository> OpenAsync(S3Location location, TimeProvider time, ILogger? logger, TimeSpan lockTimeout, CancellationToken ct, IManifestSigner? signer = null)
    {
        ArgumentNullException.ThrowIfNull(location);
        var s3 = new S3Calls(location.CreateClient(), location);
        try
        {
            var revisions = await OpenRevisionsAsync(s3, time, lockTimeout, signer, ct).ConfigureAwait(false);
            var objects = await S3PackObjectStore.OpenAsync(s3, ct).ConfigureAwait(false);
            return new WritableRepository(objects, revisions, time, logger);
        }
        catch
        {
            s3.Client.Dispose();
            throw;
        }
    }

    /// <summary>The object store alone (tests, tools): another view of the same bucket, as another process would have.</summary>
    public static Task<S3PackObjectStore> OpenObjectStoreAsync(string url, CancellationToken ct)
    {
        var location = S3Location.Parse(url);
        return S3PackObjectStore.OpenAsync(new S3Calls(location.CreateClient(), location), ct);
    }

    private static async Task<S3RevisionStore> OpenRevisionsAsync(S3Calls s3, TimeProvider time, TimeSpan lockTimeout, IManifestSigner? signer, CancellationToken ct)
    {
        var got = await s3.GetAsync(ConfigKey, ct).ConfigureAwait(false)
            ?? throw new CairnException(ErrorCode.RepositoryNotFound, $"no Cairn repository at {s3.Location.Display}",
                "run 'cairn init s3://…', or check the bucket, prefix and endpoint");
        var config = CairnJson.Deserialize(got.Bytes, CoreJson.Default.RepositoryConfig, $"'{s3.Location.Display}{ConfigKey}'");
        if (config.Format != FormatVersion)
        {
            throw new CairnException(ErrorCode.UnsupportedRepositoryVersion,
                $"{s3.Location.Display} has repository format {config.Format}; this cairn reads format {FormatVersion}", "use a matching cairn release");
        }

        return new S3RevisionStore(s3, config, time, lockTimeout) { Signer = signer };
    }
}
