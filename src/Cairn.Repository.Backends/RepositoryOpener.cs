using System.Diagnostics;
using Cairn.Core;
using Cairn.Repository.FileSystem;
using Cairn.Repository.Http;
using Cairn.Repository.Replication;
using Cairn.Repository.S3;
using Microsoft.Extensions.Logging;

namespace Cairn.Repository.Backends;

/// <summary>What opening a repository needs besides its location.</summary>
public sealed record OpenSettings
{
    public required TimeProvider Time { get; init; }

    public ILogger? Logger { get; init; }

    /// <summary>How long to wait for another process holding a repository lock (directory, S3).</summary>
    public TimeSpan LockTimeout { get; init; } = DirectoryRepository.DefaultLockTimeout;

    /// <summary>Signs every revision committed through the repository (format §6.1); null: unsigned.</summary>
    public IManifestSigner? Signer { get; init; }

    /// <summary>How http(s) servers are reached (proxies, cache, trust, limits); the servers themselves are the location's.</summary>
    public Func<HttpLocation, RemoteOptions>? Remote { get; init; }
}

/// <summary>
/// The one place a <see cref="RepositoryLocation"/> becomes a repository: the kind of location picks the backend.
/// Writing commands open a <see cref="WritableLocation"/>, so an http(s) location never reaches a write.
/// </summary>
public static class RepositoryOpener
{
    public static async Task<ProductRepository> OpenAsync(RepositoryLocation location, OpenSettings settings, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return location switch
        {
            HttpLocation http => await HttpRepository.OpenAsync(RemoteOptionsFor(http, settings), settings.Time, settings.Logger, ct).ConfigureAwait(false),
            WritableLocation writable => await OpenWritableAsync(writable, settings, ct).ConfigureAwait(false),
            _ => throw new UnreachableException($"no backend for {location?.GetType().Name}"),
        };
    }

    public static Task<WritableRepository> OpenWritableAsync(WritableLocation location, OpenSettings settings, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return location switch
        {
            DirectoryLocation directory => DirectoryRepository.OpenAsync(directory.Path, settings.Time, settings.Logger, settings.LockTimeout, ct, settings.Signer),
            S3Location s3 => S3Repository.OpenAsync(s3, settings.Time, settings.Logger, settings.LockTimeout, ct, settings.Signer),
            _ => throw new UnreachableException($"no backend for {location?.GetType().Name}"),
        };
    }

    /// <summary>Creates a repository (revision 1, empty) and opens it.</summary>
    public static Task<WritableRepository> InitAsync(WritableLocation location, string? name, string? platform, OpenSettings settings, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return location switch
        {
            DirectoryLocation directory => DirectoryRepository.InitAsync(directory.Path, name, platform, settings.Time, settings.Logger, ct, settings.Signer),
            S3Location s3 => S3Repository.InitAsync(s3, name, platform, settings.Time, settings.Logger, settings.LockTimeout, ct, settings.Signer),
            _ => throw new UnreachableException($"no backend for {location?.GetType().Name}"),
        };
    }

    /// <summary>One end of a replication (docs/format/repository.md §7.1): a source may be any location, a destination is written.</summary>
    public static IMirrorEndpoint OpenMirror(RepositoryLocation location, bool writable) => location switch
    {
        S3Location s3 => new S3MirrorEndpoint(S3Calls.Open(s3)),
        HttpLocation http when writable => throw new CairnException(ErrorCode.RemoteReadOnly,
            $"cannot replicate into {http.Display}: http(s) repositories are read-only", "give a directory or s3:// URL as DEST"),
        HttpLocation http => new HttpMirrorEndpoint(http.Servers[0].AbsoluteUri),
        DirectoryLocation directory => new DirectoryMirrorEndpoint(directory.Path),
        _ => throw new UnreachableException($"no backend for {location?.GetType().Name}"),
    };

    private static RemoteOptions RemoteOptionsFor(HttpLocation location, OpenSettings settings) =>
        (settings.Remote?.Invoke(location) ?? new RemoteOptions { Servers = location.Servers }) with { Servers = location.Servers };
}
