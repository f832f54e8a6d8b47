using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Gateway.Client;
using Cairn.Repository;
using Cairn.Repository.FileSystem;

namespace Cairn.Gateway.Tests.Infrastructure;

/// <summary>
/// What a site holds before it publishes: a local object store with built product trees in it. Builds trees from
/// a dictionary of files, uploads what a commit needs, and makes <see cref="ProductCommit"/>s.
/// </summary>
public sealed class SiteWorkspace : IAsyncDisposable
{
    private readonly TempDir _dir = new("cairn-gw-site");

    public SiteWorkspace(string site)
    {
        Site = site;
        Objects = new PackObjectStore(_dir.Sub("packs"), _dir.Sub("tmp"));
        Directory.CreateDirectory(_dir.Sub("packs"));
        Directory.CreateDirectory(_dir.Sub("tmp"));
    }

    public string Site { get; }

    public PackObjectStore Objects { get; }

    public string Path => _dir.Path;

    /// <summary>Stores a tree of files ("bin/tool" → content) and returns its directory entry.</summary>
    public async Task<TreeEntry> TreeAsync(IReadOnlyDictionary<string, string> files)
    {
        var staging = _dir.Sub("staging-" + Guid.NewGuid().ToString("n")[..8]);
        foreach (var (path, content) in files)
        {
            var full = System.IO.Path.Combine(staging, path);
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
            await File.WriteAllTextAsync(full, content);
        }

        Directory.CreateDirectory(staging);
        var root = await DirectorySnapshot.StoreAsync(new Ingest(Objects), staging, null, CancellationToken.None);
        await Objects.FlushAsync(CancellationToken.None);
        Directory.Delete(staging, recursive: true);
        return root;
    }

    /// <summary>Stores one file's content and returns its entry (an extra: a log or a modulefile).</summary>
    public async Task<TreeEntry> FileAsync(string name, string content)
    {
        using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content));
        var entry = await new Ingest(Objects).AddFileAsync(name, stream, stream.Length, false, CancellationToken.None);
        await Objects.FlushAsync(CancellationToken.None);
        return entry;
    }

    public Task<UploadResult> UploadAsync(IGateway gateway, params TreeEntry[] roots) =>
        ObjectUploader.UploadAsync(gateway, Objects, roots, 4, CancellationToken.None);

    public static string ProductPath(string platform, string name, string version) => $"{platform}/{name}/{version}";

    /// <summary>A commit of NAME/VERSION with a passing result (or the given checks).</summary>
    public ProductCommit Commit(string buildKey, long fencingToken, string name, string version, TreeEntry root, CommitMode mode = CommitMode.Publish,
        string channel = "testing", CheckOutcome? checks = null, IReadOnlyList<CommittedExtra>? extras = null, string platform = "linux-x86_64") =>
        new(mode, buildKey, fencingToken, platform, new ProductRef(name, version), root, extras ?? [], [], null, null, channel,
            new BuildResult(buildKey, Site, ProductPath(platform, name, version), root.Digest, checks ?? new CheckOutcome(3, 0, 0), $"test environment of {Site}",
                TimeSpan.FromSeconds(12), null));

    public static JobRequest Job(string buildKey, string name, string version, string platform = "linux-x86_64", TimeSpan? ttl = null) =>
        new(buildKey, ProductPath(platform, name, version), null, ttl ?? TimeSpan.FromMinutes(5));

    public async ValueTask DisposeAsync()
    {
        await Objects.DisposeAsync();
        _dir.Dispose();
    }
}
