using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Repository.Http;
using Cairn.Server.Tests.Infrastructure;

namespace Cairn.Trust.Tests;

/// <summary>
/// A root key, certified publishing keys and signed repositories in a temp directory, plus in-process clients that
/// trust the root; every test builds its own (nothing is shared between attacks).
/// </summary>
public sealed class TrustWorld : IDisposable
{
    public TempDir Dir { get; } = new("cairn-trust-test");

    public string RootKey => Dir.Sub("root.key");

    public string RootPublic => Dir.Sub("root.key.pub");

    public string PublishingKey => Dir.Sub("publishing.key");

    public string State => Dir.Sub("state");

    public string RootFingerprint { get; }

    public TrustWorld()
    {
        using var root = Keys.Generate(KeyKind.Root);
        Keys.WritePrivate(root, RootKey);
        Keys.WritePublic(root.Public, KeyKind.Root, RootPublic);
        RootFingerprint = root.KeyId;
        NewPublishingKey(PublishingKey);
    }

    /// <summary>A publishing key certified by this world's root (or by <paramref name="otherRoot"/>) for 90 days.</summary>
    public string NewPublishingKey(string path, string? otherRoot = null, TimeSpan? validFor = null)
    {
        using var root = Keys.ReadPrivate(otherRoot ?? RootKey, KeyKind.Root);
        using var key = Keys.Generate(KeyKind.Publishing);
        var now = DateTimeOffset.UtcNow;
        var cert = Keys.Certify(root, key.Public, Path.GetFileNameWithoutExtension(path), now.AddMinutes(-1), now + (validFor ?? TimeSpan.FromDays(90)), []);
        Keys.WritePrivate(key, path, cert, root.Public);
        Keys.WritePublic(key.Public, KeyKind.Publishing, path + ".pub");
        return key.KeyId;
    }

    public static ManifestSigner Signer(string key, TimeProvider? time = null) => ManifestSigner.Load(key, time ?? TimeProvider.System);

    /// <summary>A signed repository with hello/1.0 (revision 2); <paramref name="name"/> is its repository name.</summary>
    public async Task<string> CreateRepositoryAsync(string dir, string name = "trusted", string? key = null)
    {
        var path = Dir.Sub(dir);
        await using var repo = await DirectoryRepository.InitAsync(path, name, "linux-x86_64", TimeProvider.System, null, default, Signer(key ?? PublishingKey));
        await PublishAsync(repo, "hello", "1.0", "hello, trust\n");
        return path;
    }

    public async Task PublishAsync(string repository, string product, string version, string content, string? key = null)
    {
        await using var repo = await DirectoryRepository.OpenAsync(repository, TimeProvider.System, null, DirectoryRepository.DefaultLockTimeout, default, Signer(key ?? PublishingKey));
        await PublishAsync(repo, product, version, content);
    }

    private async Task PublishAsync(WritableRepository repo, string product, string version, string content)
    {
        var src = Dir.Sub($"src-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path.Combine(src, "share"));
        File.WriteAllText(Path.Combine(src, "share", "README"), content);
        File.WriteAllBytes(Path.Combine(src, "share", "data.bin"), Enumerable.Range(0, 200_000).Select(i => (byte)(i * 7 + content.Length)).ToArray());
        await repo.PublishDirectoryAsync(new ProductRef(product, version), src, new PublishOptions { PublishedBy = "test" }, null, default);
    }

    public RemoteOptions Options(string url, TimeProvider? time = null, string? trust = null) => new()
    {
        Servers = RemoteOptions.ParseServers([url]),
        CacheDirectory = Dir.Sub("cache"),
        InitialBackoff = TimeSpan.Zero,
        Verifier = new ManifestVerifier(trust ?? RootPublic, State, time ?? TimeProvider.System),
    };

    /// <summary>Opens the remote repository as a trusting client and reads its head; throws what the client refuses.</summary>
    public async Task<Manifest> ReadHeadAsync(string url, TimeProvider? time = null, string? trust = null)
    {
        await using var repo = await HttpRepository.OpenAsync(Options(url, time, trust), time ?? TimeProvider.System, null, default);
        return await repo.HeadAsync(default);
    }

    public async Task<CairnException> RefusedAsync(string url, ErrorCode expected, TimeProvider? time = null, string? trust = null)
    {
        var e = await Assert.ThrowsAsync<CairnException>(() => ReadHeadAsync(url, time, trust));
        Assert.True(e.Code == expected, $"expected {expected}, got {e.Code}: {e.Message}");
        return e;
    }

    public static string RevisionFile(long revision, string ext = ".json") => $"revisions/{revision:D16}{ext}";

    public IReadOnlyDictionary<string, string> Env => new Dictionary<string, string> { ["CAIRN_STATE"] = State, ["CAIRN_CACHE"] = Dir.Sub("cli-cache") };

    public void Dispose() => Dir.Dispose();
}
