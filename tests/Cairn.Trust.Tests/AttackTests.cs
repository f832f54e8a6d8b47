using System.Text;
using System.Text.Json;
using Cairn.Core;
using Cairn.Server.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace Cairn.Trust.Tests;

/// <summary>One test per attack of docs/security.md, each against a real HTTP server serving crafted content.</summary>
public sealed class AttackTests : IDisposable
{
    private readonly TrustWorld _w = new();

    public void Dispose() => _w.Dispose();

    [Fact]
    public async Task SignedRepositoryIsAcceptedByKeyFileAndByFingerprint()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        await using var server = await CraftedServer.StartAsync(repo);
        Assert.Equal(2, (await _w.ReadHeadAsync(server.Url)).Revision);
        Assert.Equal(2, (await _w.ReadHeadAsync(server.Url, trust: _w.RootFingerprint)).Revision);
        // The signature was checked before the manifest was read.
        var order = server.Requests.ToList();
        Assert.True(order.IndexOf("manifest.sig") < order.IndexOf("manifest.json"), string.Join(", ", order));
    }

    [Fact]
    public async Task BadSignatureIsRefused()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        await using var server = await CraftedServer.StartAsync(repo);
        // The attacker re-states the manifest (another length and hash) under the old signature.
        var file = JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(repo, "manifest.sig")), TrustJson.Default.SignatureFile)!;
        var statement = file.Statement.Read(TrustJson.Default.ManifestStatement, "s") with { Revision = 99 };
        var forged = file with { Statement = file.Statement with { Payload = Convert.ToBase64String(JsonSerializer.SerializeToUtf8Bytes(statement, TrustJson.Default.ManifestStatement)) } };
        server.Serve("manifest.sig", JsonSerializer.SerializeToUtf8Bytes(forged, TrustJson.Default.SignatureFile));
        await _w.RefusedAsync(server.Url, ErrorCode.TrustSignatureInvalid);
        Assert.False(server.WasRequested("manifest.json"));
    }

    [Fact]
    public async Task ManifestOfAnotherRepositoryIsRefused()
    {
        var alpha = await _w.CreateRepositoryAsync("alpha", "alpha");
        var beta = await _w.CreateRepositoryAsync("beta", "beta");
        await using var server = await CraftedServer.StartAsync(alpha);
        // Validly signed by the same publisher, but for another repository.
        server.Serve("manifest.sig", File.ReadAllBytes(Path.Combine(beta, "manifest.sig")));
        server.Serve("manifest.json", File.ReadAllBytes(Path.Combine(beta, "manifest.json")));
        var e = await _w.RefusedAsync(server.Url, ErrorCode.TrustWrongRepository);
        Assert.Contains("'beta'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExpiredManifestIsRefused_FreezeAttack()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        await using var server = await CraftedServer.StartAsync(repo);
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        Assert.Equal(2, (await _w.ReadHeadAsync(server.Url, time)).Revision);
        // A frozen mirror keeps serving the same, once valid, signed head.
        time.Advance(ManifestSigner.DefaultLifetime + TimeSpan.FromMinutes(1));
        await _w.RefusedAsync(server.Url, ErrorCode.TrustManifestExpired, time);
    }

    [Fact]
    public async Task OlderRevisionThanAcceptedIsRefused_RollbackAttack()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        await _w.PublishAsync(repo, "data", "2.0", "revision three");
        await using var server = await CraftedServer.StartAsync(repo);
        Assert.Equal(3, (await _w.ReadHeadAsync(server.Url)).Revision);
        // The server replays revision 2: validly signed, not expired, but older than what the client accepted.
        server.Serve("manifest.sig", File.ReadAllBytes(Path.Combine(repo, TrustWorld.RevisionFile(2, ".sig"))));
        server.Serve("manifest.json", File.ReadAllBytes(Path.Combine(repo, TrustWorld.RevisionFile(2))));
        var e = await _w.RefusedAsync(server.Url, ErrorCode.TrustRollback);
        Assert.Contains("revision 2", e.Message, StringComparison.Ordinal);
        // Remembered across processes: the real CLI refuses too (same state directory).
        var r = await Exec.CairnAsync(_w.Env, "--repo", server.Url, "--trust", _w.RootPublic, "list");
        Assert.True(r.ExitCode == 4 && r.Stderr.Contains("CAIRN-E1003", StringComparison.Ordinal), r.ToString());
    }

    [Fact]
    public async Task SameRevisionWithAnotherRootIsRefusedAndLogged_Equivocation()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        var fork = _w.Dir.Sub("fork");
        Assert.Equal(0, (await Exec.RunAsync(["cp", "-a", repo, fork])).ExitCode);
        await _w.PublishAsync(repo, "data", "2.0", "the real revision three");
        await _w.PublishAsync(fork, "evil", "6.6", "a second revision three");
        await using var server = await CraftedServer.StartAsync(repo);
        var accepted = await _w.ReadHeadAsync(server.Url);
        server.Root = fork;
        var e = await _w.RefusedAsync(server.Url, ErrorCode.TrustEquivocation);
        Assert.Contains(accepted.Root.ToString(), e.Message, StringComparison.Ordinal);
        var log = File.ReadAllText(Path.Combine(_w.State, "equivocation.log"));
        Assert.Contains("revision 3", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ObjectsOfAnotherRevisionAreRefused_MixAndMatch()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        var other = await _w.CreateRepositoryAsync("other");
        await _w.PublishAsync(other, "hello", "2.0", "other content of the same size!");
        await using var server = await CraftedServer.StartAsync(repo);
        // The manifest is the genuine signed one; every pack the head lists is answered with another repository's pack.
        var otherPack = Directory.GetFiles(Path.Combine(other, "packs"), "*.pack").OrderByDescending(f => new FileInfo(f).Length).First();
        foreach (var pack in Directory.GetFiles(Path.Combine(repo, "packs"), "*.pack"))
        {
            server.ServeFile($"packs/{Path.GetFileName(pack)}", otherPack);
        }

        var dest = _w.Dir.Sub("out");
        var r = await Exec.CairnAsync(_w.Env, "--repo", server.Url, "--trust", _w.RootPublic, "materialize", "hello/1.0", dest);
        Assert.True(r.ExitCode == 4, r.ToString());
        Assert.Contains("CAIRN-E0703", r.Stderr, StringComparison.Ordinal);
        // Nothing that does not hash from the signed root was laid out or cached.
        Assert.False(File.Exists(Path.Combine(dest, "linux-x86_64", "hello", "1.0", "share", "README")));
        Assert.False(Directory.Exists(_w.Dir.Sub("cli-cache")) && Directory.EnumerateFiles(_w.Dir.Sub("cli-cache"), "*", SearchOption.AllDirectories)
            .Any(f => File.ReadAllBytes(f).AsSpan().IndexOf("other content"u8) >= 0));
    }

    [Fact]
    public async Task EndlessManifestIsCutAtItsSignedLength_EndlessData()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        await using var server = await CraftedServer.StartAsync(repo);
        server.ServeEndless("manifest.json");
        server.ServeEndless(TrustWorld.RevisionFile(2));
        var started = System.Diagnostics.Stopwatch.StartNew();
        var e = await _w.RefusedAsync(server.Url, ErrorCode.TrustManifestTooLarge);
        Assert.Contains("signed length", e.Message, StringComparison.Ordinal);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(20), $"took {started.Elapsed}");

        // And an endless signature file is cut at the envelope limit.
        server.Overrides.Clear();
        server.ServeEndless("manifest.sig");
        await _w.RefusedAsync(server.Url, ErrorCode.TrustManifestTooLarge);
    }

    [Fact]
    public async Task HugeRevisionSignedByRevokedKeyIsRefusedBeforeItIsRead_FastForward()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        await using var server = await CraftedServer.StartAsync(repo);
        Assert.Equal(2, (await _w.ReadHeadAsync(server.Url)).Revision);
        var stateBefore = Directory.GetFiles(Path.Combine(_w.State, "trust"), "trusted@*.json").Select(File.ReadAllText).Single();

        // A publishing key is stolen; the root revokes it (cairn key revoke, as a real process).
        var stolen = _w.Dir.Sub("stolen.key");
        _w.NewPublishingKey(stolen);
        var rev = await Exec.CairnAsync(_w.Env, "key", "revoke", "--root", _w.RootKey, stolen + ".pub", "-o", Path.Combine(repo, "revocations.json"), "--reason", "stolen");
        Assert.True(rev.ExitCode == 0, rev.ToString());

        // The thief signs a huge revision far ahead; the mirror serves it.
        var huge = CairnJson.Deserialize(File.ReadAllBytes(Path.Combine(repo, "manifest.json")), CoreJson.Default.Manifest, "m") with
        {
            Revision = 1_000_000, Message = new string('x', 8 << 20),
        };
        var bytes = CairnJson.Serialize(huge, CoreJson.Default.Manifest);
        using (var signer = TrustWorld.Signer(stolen)) server.Serve("manifest.sig", signer.Sign(bytes, huge));
        server.Serve("manifest.json", bytes);
        server.Requests.Clear();
        var e = await _w.RefusedAsync(server.Url, ErrorCode.TrustKeyRevoked);
        Assert.Contains("stolen", e.Message, StringComparison.Ordinal);
        Assert.False(server.WasRequested("manifest.json"), "the manifest was downloaded before its signature was checked");
        Assert.Equal(stateBefore.Split("\"timestamp\"")[0], Directory.GetFiles(Path.Combine(_w.State, "trust"), "trusted@*.json").Select(File.ReadAllText).Single().Split("\"timestamp\"")[0]);

        // The client remembers the revocation: a mirror that withholds revocations.json does not help the thief.
        File.Delete(Path.Combine(repo, "revocations.json"));
        await _w.RefusedAsync(server.Url, ErrorCode.TrustKeyRevoked);

        // An uncertified key (its certificate from another root) is refused just as early.
        var otherRoot = _w.Dir.Sub("other-root.key");
        using (var r = Keys.Generate(KeyKind.Root)) Keys.WritePrivate(r, otherRoot);
        var rogue = _w.Dir.Sub("rogue.key");
        _w.NewPublishingKey(rogue, otherRoot);
        using (var signer = TrustWorld.Signer(rogue)) server.Serve("manifest.sig", signer.Sign(bytes, huge));
        server.Requests.Clear();
        await _w.RefusedAsync(server.Url, ErrorCode.TrustKeyNotTrusted);
        Assert.False(server.WasRequested("manifest.json"));
    }

    [Fact]
    public async Task PublishingKeyRotatesWithoutTouchingClients()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        await using var server = await CraftedServer.StartAsync(repo);
        Assert.Equal(2, (await _w.ReadHeadAsync(server.Url)).Revision);
        var next = _w.Dir.Sub("next.key");
        _w.NewPublishingKey(next);
        await _w.PublishAsync(repo, "data", "2.0", "signed by the new key", next);
        Assert.Equal(3, (await _w.ReadHeadAsync(server.Url)).Revision);
    }

    [Fact]
    public async Task UnsignedRepositoryIsRefusedWhenTrustIsConfigured()
    {
        var path = _w.Dir.Sub("unsigned");
        await using (await Cairn.Repository.FileSystem.DirectoryRepository.InitAsync(path, "unsigned", "linux-x86_64", TimeProvider.System, null, default))
        {
        }

        await using var server = await CraftedServer.StartAsync(path);
        await _w.RefusedAsync(server.Url, ErrorCode.TrustSignatureMissing);
        // Without --trust the same repository is read as before.
        var r = await Exec.CairnAsync(_w.Env, "--repo", server.Url, "list");
        Assert.True(r.ExitCode == 0, r.ToString());
    }

    [Fact]
    public async Task ManifestNotMatchingItsSignatureIsRefused()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        await using var server = await CraftedServer.StartAsync(repo);
        var bytes = File.ReadAllBytes(Path.Combine(repo, "manifest.json"));
        var forged = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(bytes).Replace("\"publish ", "\"PUBLISH ", StringComparison.Ordinal));
        server.Serve("manifest.json", forged);
        server.Serve(TrustWorld.RevisionFile(2), forged);
        await _w.RefusedAsync(server.Url, ErrorCode.TrustManifestMismatch);
    }
}
