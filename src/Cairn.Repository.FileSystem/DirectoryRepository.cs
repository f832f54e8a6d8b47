using Cairn.Core;
using Cairn.Repository.IO;
using Microsoft.Extensions.Logging;

namespace Cairn.Repository.FileSystem;

/// <summary>Creates and opens repositories kept in a local directory (the embedded default).</summary>
public static class DirectoryRepository
{
    public const int FormatVersion = 1;

    public static TimeSpan DefaultLockTimeout { get; } = TimeSpan.FromMinutes(10);

    public static async Task<WritableRepository> InitAsync(string path, string? name, string? platform, TimeProvider time, ILogger? logger, CancellationToken ct, IManifestSigner? signer = null)
    {
        var full = Path.GetFullPath(path);
        var configPath = Path.Combine(full, FileSystemLayout.Config);
        if (File.Exists(configPath))
        {
            throw new CairnException(ErrorCode.RepositoryExists, $"'{full}' already holds a Cairn repository", "use it as it is, or choose another directory");
        }

        if (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any())
        {
            throw new CairnException(ErrorCode.DestinationNotEmpty, $"'{full}' exists and is not empty", "give a new or empty directory");
        }

        var config = new RepositoryConfig(FormatVersion, name ?? Path.GetFileName(full), platform ?? Platforms.Current, time.GetUtcNow());
        Platforms.Validate(config.Platform);
        foreach (var dir in new[] { FileSystemLayout.Revisions, FileSystemLayout.Packs, FileSystemLayout.Tmp, FileSystemLayout.Locks })
        {
            Directory.CreateDirectory(Path.Combine(full, dir));
        }

        DurableFile.WriteAllBytes(configPath, CairnJson.Serialize(config, CoreJson.Default.RepositoryConfig), Path.Combine(full, FileSystemLayout.Tmp));
        var repo = await OpenAsync(full, time, logger, DefaultLockTimeout, ct, signer).ConfigureAwait(false);
        await repo.InitializeAsync(ct).ConfigureAwait(false);
        return repo;
    }

    public static Task<WritableRepository> OpenAsync(string path, TimeProvider time, ILogger? logger, TimeSpan lockTimeout, CancellationToken ct, IManifestSigner? signer = null)
    {
        var full = Path.GetFullPath(path);
        var configPath = Path.Combine(full, FileSystemLayout.Config);
        if (!File.Exists(configPath))
        {
            throw new CairnException(ErrorCode.RepositoryNotFound, $"no Cairn repository at '{full}'",
                "run 'cairn init PATH', or point --repo / CAIRN_REPO at an existing repository");
        }

        var config = CairnJson.Deserialize(File.ReadAllBytes(configPath), CoreJson.Default.RepositoryConfig, $"'{configPath}'");
        if (config.Format != FormatVersion)
        {
            throw new CairnException(ErrorCode.UnsupportedRepositoryVersion,
                $"'{full}' has repository format {config.Format}; this cairn reads format {FormatVersion}", "use a matching cairn release");
        }

        var objects = new PackObjectStore(Path.Combine(full, FileSystemLayout.Packs), Path.Combine(full, FileSystemLayout.Tmp));
        var revisions = new FileRevisionStore(full, config, time, lockTimeout) { Signer = signer };
        return Task.FromResult(new WritableRepository(objects, revisions, time, logger));
    }

    public static string DefaultCacheDirectory(string repositoryPath) => new DirectoryLocation(repositoryPath).CacheDirectory;
}
