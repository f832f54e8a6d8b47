using System.Net;
using System.Security.Cryptography;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Repository.Http;
using Cairn.Repository.IO;
using Cairn.Repository.S3;
using Microsoft.Extensions.Logging;

namespace Cairn.Cli.Commands.Replicate;

public sealed record ReplicateResult(long Revision, int PacksCopied, int PacksPresent, int RevisionsCopied, long BytesCopied, bool HeadMoved);

/// <summary>
/// Copies a repository's files to a mirror in the order that keeps the mirror consistent at every instant:
/// packs (each index after its pack), then revisions, then manifest.json. Every file is checked before it is
/// written (pack: SHA-256 = name; index: checksum and bounds; revisions: parse and number), each lands by an
/// atomic rename (directory) or a single PUT (S3), and what already exists and verifies is skipped, so an
/// interrupted run is resumed by running it again. A mirror's head never goes backwards.
/// </summary>
public sealed class Replicator(IMirrorEndpoint source, IMirrorEndpoint destination, ILogger? logger)
{
    public async Task<ReplicateResult> RunAsync(CancellationToken ct)
    {
        var config = await source.GetAsync(FileSystemLayout.Config, ct).ConfigureAwait(false)
            ?? throw new CairnException(ErrorCode.RepositoryNotFound, $"no Cairn repository at {source.Display}", "check the source URL or path");
        var headBytes = await source.GetAsync(FileSystemLayout.Head, ct).ConfigureAwait(false)
            ?? throw new CairnException(ErrorCode.RepositoryNotFound, $"{source.Display} has no manifest.json", "initialise or publish to the source first");
        var head = CairnJson.Deserialize<Manifest>(headBytes, $"manifest '{source.Display}manifest.json'");
        var packs = head.Packs ?? throw new CairnException(ErrorCode.RemoteContentRejected,
            $"the head of {source.Display} lists no packs (written before format §6)", "publish once with a current cairn, then replicate");

        var destHead = await destination.GetAsync(FileSystemLayout.Head, ct).ConfigureAwait(false) is { } d
            ? CairnJson.Deserialize<Manifest>(d, $"manifest '{destination.Display}manifest.json'") : null;
        if (await destination.GetAsync(FileSystemLayout.Config, ct).ConfigureAwait(false) is null)
        {
            CairnJson.Deserialize<RepositoryConfig>(config, $"'{source.Display}cairn.json'");
            await destination.PutAsync(FileSystemLayout.Config, config, ct).ConfigureAwait(false);
        }

        int copied = 0, present = 0;
        long bytes = 0;
        await Parallel.ForEachAsync(packs, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = ct }, async (pack, c) =>
        {
            if (await VerifiedAsync(destination, pack, c).ConfigureAwait(false) is not null)
            {
                Interlocked.Increment(ref present);
                return;
            }

            var (packBytes, idxBytes) = await VerifiedAsync(source, pack, c).ConfigureAwait(false)
                ?? throw new CairnException(ErrorCode.ObjectMissing, $"pack {pack} named by the head of {source.Display} is missing or damaged there",
                    "run 'cairn verify --full' on the source; replicate from another server");
            await destination.PutAsync($"packs/{pack}.pack", packBytes, c).ConfigureAwait(false);
            FaultPoints.Hit("replicate-pack");
            await destination.PutAsync($"packs/{pack}.idx", idxBytes, c).ConfigureAwait(false);
            Interlocked.Increment(ref copied);
            Interlocked.Add(ref bytes, packBytes.Length + idxBytes.Length);
            logger?.LogInformation("copied pack {Pack} ({Bytes} bytes)", pack, packBytes.Length);
        }).ConfigureAwait(false);

        var revisions = 0;
        for (var r = 1L; r <= head.Revision; r++)
        {
            var key = RevisionKey(r);
            if (await destination.GetAsync(key, ct).ConfigureAwait(false) is { } existing && Parses(existing, r)) continue;
            // gc deletes old revisions: a gap in the source is not an error.
            if (await source.GetAsync(key, ct).ConfigureAwait(false) is not { } rev) continue;
            if (!Parses(rev, r))
            {
                throw new CairnException(ErrorCode.RemoteContentRejected, $"revision {r} of {source.Display} is malformed", "run 'cairn verify' on the source");
            }

            // A signed source's detached signature goes with its revision, before it, so a mirror never serves
            // a signed revision without its signature (format §6.1). Clients check it; it need not be parsed here.
            var signatureKey = Path.ChangeExtension(key, ".sig");
            if (await source.GetAsync(signatureKey, ct).ConfigureAwait(false) is { } signature)
            {
                await destination.PutAsync(signatureKey, signature, ct).ConfigureAwait(false);
            }

            await destination.PutAsync(key, rev, ct).ConfigureAwait(false);
            revisions++;
            bytes += rev.Length;
        }

        if (await source.GetAsync(FileSystemLayout.Revocations, ct).ConfigureAwait(false) is { } revocations)
        {
            await destination.PutAsync(FileSystemLayout.Revocations, revocations, ct).ConfigureAwait(false);
        }

        // The head last, and never backwards: a stale source must not roll a fresher mirror back.
        var moved = destHead is null || destHead.Revision < head.Revision;
        if (moved)
        {
            if (await source.GetAsync(FileSystemLayout.HeadSignature, ct).ConfigureAwait(false) is { } headSignature)
            {
                await destination.PutAsync(FileSystemLayout.HeadSignature, headSignature, ct).ConfigureAwait(false);
            }

            await destination.PutAsync(FileSystemLayout.Head, headBytes, ct).ConfigureAwait(false);
        }
        else if (destHead!.Revision > head.Revision)
        {
            logger?.LogWarning("{Dest} is at revision {Dest} and the source at {Src}: head left alone", destination.Display, destHead.Revision, head.Revision);
        }

        return new ReplicateResult(head.Revision, copied, present, revisions, bytes, moved);
    }

    private static string RevisionKey(long r) => S3RevisionStore.RevisionKey(r);

    private static bool Parses(byte[] bytes, long revision)
    {
        try
        {
            return CairnJson.Deserialize<Manifest>(bytes, "revision").Revision == revision;
        }
        catch (CairnException)
        {
            return false;
        }
    }

    /// <summary>The pack and its index if both exist and check out: pack hash = name, index checksum, entries inside the pack.</summary>
    private static async Task<(byte[] Pack, byte[] Index)?> VerifiedAsync(IMirrorEndpoint endpoint, string pack, CancellationToken ct)
    {
        if (await endpoint.GetAsync($"packs/{pack}.idx", ct).ConfigureAwait(false) is not { } idx) return null;
        if (await endpoint.GetAsync($"packs/{pack}.pack", ct).ConfigureAwait(false) is not { } bytes) return null;
        if (!string.Equals(Convert.ToHexStringLower(SHA256.HashData(bytes)), pack, StringComparison.Ordinal)) return null;
        try
        {
            foreach (var (_, loc) in PackIndexCodec.Parse(idx, pack, $"{endpoint.Display}packs/{pack}.idx", "the copy is damaged; replicate from another server"))
            {
                if (loc.Offset < 4 || loc.Offset + loc.StoredSize > bytes.Length) return null;
            }
        }
        catch (CairnException)
        {
            return null;
        }

        return (bytes, idx);
    }
}

/// <summary>One side of a replication: files by their layout path.</summary>
public interface IMirrorEndpoint : IDisposable
{
    string Display { get; }

    Task<byte[]?> GetAsync(string key, CancellationToken ct);

    Task PutAsync(string key, byte[] bytes, CancellationToken ct);

    public static IMirrorEndpoint Open(string location, bool writable) =>
        S3Location.IsS3(location) ? new S3Endpoint(S3Calls.Open(location))
        : RemoteOptions.IsRemote(location)
            ? writable
                ? throw new CairnException(ErrorCode.RemoteReadOnly, $"cannot replicate into {location}: http(s) repositories are read-only", "give a directory or s3:// URL as DEST")
                : new HttpEndpoint(location)
            : new DirectoryEndpoint(location);
}

internal sealed class DirectoryEndpoint(string root) : IMirrorEndpoint
{
    private readonly string _root = Path.GetFullPath(root);

    public string Display => _root + "/";

    public async Task<byte[]?> GetAsync(string key, CancellationToken ct)
    {
        try
        {
            return await File.ReadAllBytesAsync(Path.Combine(_root, key), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    public Task PutAsync(string key, byte[] bytes, CancellationToken ct)
    {
        // Partial files live in tmp/ and land by rename: an interrupted copy never leaves a short file in place.
        var tmp = Path.Combine(_root, FileSystemLayout.Tmp);
        foreach (var dir in new[] { FileSystemLayout.Packs, FileSystemLayout.Revisions, FileSystemLayout.Tmp, FileSystemLayout.Locks })
        {
            Directory.CreateDirectory(Path.Combine(_root, dir));
        }

        DurableFile.WriteAllBytes(Path.Combine(_root, key), bytes, tmp);
        return Task.CompletedTask;
    }

    public void Dispose()
    {
    }
}

internal sealed class HttpEndpoint : IMirrorEndpoint
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromMinutes(10) };
    private readonly Uri _base;

    public HttpEndpoint(string url) => _base = new Uri(url.EndsWith('/') ? url : url + "/");

    public string Display => _base.ToString();

    public async Task<byte[]?> GetAsync(string key, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_base, key));
        // The head must be the server's current one, not a proxy's copy.
        request.Headers.CacheControl = new System.Net.Http.Headers.CacheControlHeaderValue { NoCache = true };
        try
        {
            using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound) return null;
            response.EnsureSuccessStatusCode();
            return await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new CairnException(ErrorCode.RemoteUnavailable, $"GET {new Uri(_base, key)} failed: {e.Message}", "check the source server; run replicate again to resume");
        }
    }

    public Task PutAsync(string key, byte[] bytes, CancellationToken ct) => throw new NotSupportedException("http sources are read-only");

    public void Dispose() => _http.Dispose();
}

internal sealed class S3Endpoint(S3Calls s3) : IMirrorEndpoint
{
    public string Display => s3.Location.Display;

    public async Task<byte[]?> GetAsync(string key, CancellationToken ct) => (await s3.GetAsync(key, ct).ConfigureAwait(false))?.Bytes;

    public Task PutAsync(string key, byte[] bytes, CancellationToken ct) => s3.PutAsync(key, bytes, ct);

    public void Dispose() => s3.Dispose();
}
