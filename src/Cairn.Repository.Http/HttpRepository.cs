using Cairn.Core;
using Microsoft.Extensions.Logging;

namespace Cairn.Repository.Http;

/// <summary>Opens a repository served over HTTP (cairn serve, nginx, a mirror) for reading.</summary>
public static class HttpRepository
{
    public static string DefaultCacheDirectory => RepositoryLocation.UserCacheDirectory;

    public static async Task<ProductRepository> OpenAsync(RemoteOptions options, TimeProvider time, ILogger? logger, CancellationToken ct)
    {
        var fetcher = new RemoteFetcher(options, time, logger);
        ClientCache? cache = null;
        try
        {
            if (options.CacheDirectory is { } dir)
            {
                try
                {
                    cache = new ClientCache(dir, options.CacheMaxBytes, time, logger);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or CairnException)
                {
                    // A cache that cannot be used costs speed, never the read.
                    logger?.LogWarning("cache directory {Dir} is not usable ({Message}); reading without a cache", dir, e.Message);
                }
            }

            var revisions = await HttpRevisionStore.OpenAsync(fetcher, options, ct, logger).ConfigureAwait(false);
            var objects = new HttpObjectStore(fetcher, cache, options, revisions.PacksAsync, logger);
            return new ProductRepository(objects, revisions, time, logger);
        }
        catch
        {
            fetcher.Dispose();
            cache?.Dispose();
            throw;
        }
    }
}
