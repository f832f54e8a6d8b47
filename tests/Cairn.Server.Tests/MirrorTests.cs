using System.Text.Json.Nodes;
using Cairn.Server.Tests.Infrastructure;

namespace Cairn.Server.Tests;

/// <summary>
/// A signed origin, a stale mirror made by `cairn replicate` before the origin's last publish, and broken copies,
/// each served by its own real `cairn serve` (and nginx): the client reads every server's head and uses the newest
/// valid one.
/// </summary>
public sealed class SignedMirrors : IAsyncLifetime
{
    public TempDir Work { get; } = new("cairn-mirrors");

    public Dictionary<string, string> Env(string state) => new() { ["CAIRN_STATE"] = Work.Sub(state) };

    public string Root => Work.Sub("root.key.pub");

    public string Fresh => Work.Sub("fresh");

    public string Stale => Work.Sub("stale");

    public CairnServe FreshServe { get; private set; } = null!;

    public CairnServe StaleServe { get; private set; } = null!;

    public CairnServe BadSignature { get; private set; } = null!;

    public CairnServe Expired { get; private set; } = null!;

    public CairnServe OtherRepository { get; private set; } = null!;

    public List<string> NewTree { get; private set; } = [];

    private static Task<RunResult> Faketime(string offset, Dictionary<string, string> env, params string[] args) =>
        Exec.RunAsync(["/usr/bin/faketime", offset, .. CairnUnderTest.Command, .. args], env);

    public async Task InitializeAsync()
    {
        Assert.True(File.Exists("/usr/bin/faketime"), "faketime is not installed: run scripts/install-deps.sh (Debian package faketime)");
        var env = Env("publisher");
        await Exec.CairnOkAsync(env, "key", "generate", "--root", "-o", Work.Sub("root.key"));
        await Exec.CairnOkAsync(env, "key", "generate", "--publishing", "-o", Work.Sub("pub.key"));
        // Certified from twenty days ago, so that a signature made ten days ago (the expired copy) is in its validity.
        var certify = await Faketime("-20 days", env, "key", "certify", "--root", Work.Sub("root.key"), Work.Sub("pub.key"), "--days", "90");
        Assert.True(certify.ExitCode == 0, certify.ToString());
        var signing = new Dictionary<string, string>(env) { ["CAIRN_SIGNING_KEY"] = Work.Sub("pub.key") };

        await Exec.CairnOkAsync(signing, "init", Fresh, "--name", "mirrored");
        await Exec.CairnOkAsync(signing, "--repo", Fresh, "publish", "hello/1.0", Tree("hello", 1));
        await Exec.CairnOkAsync(env, "replicate", Fresh, Stale);
        // After the mirror was made: a product whose objects only the fresh server has.
        await Exec.CairnOkAsync(signing, "--repo", Fresh, "publish", "late/1.0", Tree("late", 2));
        NewTree = TestRepository.Describe(Work.Sub("late"));

        var bad = Work.Sub("bad-signature");
        TestRepository.CopyDirectory(Fresh, bad);
        SpoilSignature(Path.Combine(bad, "manifest.sig"));

        var expired = Work.Sub("expired");
        TestRepository.CopyDirectory(Fresh, expired);
        var resign = await Faketime("-10 days", signing, "--repo", expired, "key", "resign", "--days", "1");
        Assert.True(resign.ExitCode == 0, resign.ToString());

        var other = Work.Sub("other");
        await Exec.CairnOkAsync(signing, "init", other, "--name", "another");
        await Exec.CairnOkAsync(signing, "--repo", other, "publish", "late/1.0", Tree("other-late", 3));
        for (var i = 0; i < 3; i++) await Exec.CairnOkAsync(signing, "--repo", other, "publish", $"pad/{i}", Tree($"pad{i}", 10 + i));
        // Its cairn.json says "another" too; a client that learned the name "mirrored" from the first server refuses it.

        FreshServe = await CairnServe.StartAsync(Fresh);
        StaleServe = await CairnServe.StartAsync(Stale);
        BadSignature = await CairnServe.StartAsync(bad);
        Expired = await CairnServe.StartAsync(expired);
        OtherRepository = await CairnServe.StartAsync(other);
    }

    private string Tree(string name, int seed)
    {
        var dir = Work.Sub(name);
        Directory.CreateDirectory(Path.Combine(dir, "lib"));
        File.WriteAllText(Path.Combine(dir, "README"), $"{name}\n");
        File.WriteAllBytes(Path.Combine(dir, "lib", "data.bin"), TestRepository.Random(300_000, seed));
        return dir;
    }

    /// <summary>Changes one byte of the Ed25519 signature in an envelope, keeping it well-formed JSON and base64.</summary>
    private static void SpoilSignature(string path)
    {
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        // The signature file holds the statement's envelope (and the certificate's): spoil the statement's.
        var statement = json.First(p => p.Key.Equals("statement", StringComparison.OrdinalIgnoreCase)).Value!.AsObject();
        var signatures = statement.First(p => p.Key.Equals("signatures", StringComparison.OrdinalIgnoreCase)).Value!.AsArray();
        var first = signatures[0]!.AsObject();
        var key = first.First(p => p.Key.Equals("sig", StringComparison.OrdinalIgnoreCase)).Key;
        var sig = Convert.FromBase64String(first[key]!.GetValue<string>());
        sig[5] ^= 0x01;
        first[key] = Convert.ToBase64String(sig);
        File.WriteAllText(path, json.ToJsonString());
    }

    public async Task DisposeAsync()
    {
        foreach (var s in new[] { FreshServe, StaleServe, BadSignature, Expired, OtherRepository })
        {
            if (s is not null) await s.DisposeAsync();
        }

        Work.Dispose();
    }
}

public sealed class MirrorTests(SignedMirrors m) : IClassFixture<SignedMirrors>
{
    private string Fresh(string name) => m.Work.Sub($"{name}-{Guid.NewGuid():N}"[..(name.Length + 9)]);

    /// <summary>The product's own directory in a materialized tree (TREE/PLATFORM/late/1.0).</summary>
    private static List<string> Product(string tree) =>
        TestRepository.Describe(Directory.GetDirectories(tree, "1.0", SearchOption.AllDirectories).Single(d => d.EndsWith("/late/1.0", StringComparison.Ordinal)));

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TheNewestValidSignedRevisionWinsInEitherOrder(bool staleFirst)
    {
        var servers = staleFirst ? $"{m.StaleServe.Url},{m.FreshServe.Url}" : $"{m.FreshServe.Url},{m.StaleServe.Url}";
        var env = m.Env($"state-{Guid.NewGuid():N}");
        var list = await Exec.CairnOkAsync(env, "--repo", servers, "--trust", m.Root, "list");
        Assert.Contains("late/1.0", list.Stdout, StringComparison.Ordinal);
        Assert.Contains("stale", list.Stderr, StringComparison.Ordinal);
        Assert.Contains(m.StaleServe.Url, list.Stderr, StringComparison.Ordinal);

        // The new product's objects are only on the fresh server: a stale mirror asked first answers 404 and the
        // client moves on.
        var staleObjectsBefore = await m.StaleServe.RequestCountAsync("pack");
        var tree = Fresh("tree");
        await Exec.CairnOkAsync(env, "--repo", servers, "--trust", m.Root, "materialize", "late/1.0", tree, "--cache", Fresh("cache"));
        Assert.Equal(m.NewTree, Product(tree));
        if (staleFirst) Assert.True(await m.StaleServe.RequestCountAsync() > staleObjectsBefore);
    }

    [Fact]
    public async Task InvalidMirrorsAreSkippedEachWithItsReason()
    {
        var env = m.Env($"state-{Guid.NewGuid():N}");
        var servers = string.Join(',', m.StaleServe.Url, m.BadSignature.Url, m.Expired.Url, m.OtherRepository.Url, m.FreshServe.Url);
        var r = await Exec.CairnOkAsync(env, "--repo", servers, "--trust", m.Root, "materialize", "late/1.0", Fresh("tree"), "--cache", Fresh("cache"));
        foreach (var (server, reason) in new[]
                 {
                     (m.BadSignature.Url, "CAIRN-E1000"), (m.Expired.Url, "expired"), (m.OtherRepository.Url, "another"), (m.StaleServe.Url, "stale"),
                 })
        {
            Assert.Contains(r.Stderr.Split('\n'), line => line.Contains(server, StringComparison.Ordinal) && line.Contains(reason, StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task AfterTheNewHeadOnlyStaleOrInvalidMirrorsAreARollbackOrAListedError()
    {
        var env = m.Env($"state-{Guid.NewGuid():N}");
        await Exec.CairnOkAsync(env, "--repo", $"{m.StaleServe.Url},{m.FreshServe.Url}", "--trust", m.Root, "list");

        // The client remembers the revision it accepted: the stale mirror alone is a rollback.
        var stale = await Exec.CairnAsync(env, "--repo", m.StaleServe.Url, "--trust", m.Root, "list");
        Assert.True(stale.ExitCode != 0 && stale.Stderr.Contains("CAIRN-E1003", StringComparison.Ordinal), stale.ToString());

        // Several servers, all refused for different reasons: one error naming each server and its reason.
        var mixed = await Exec.CairnAsync(env, "--repo", $"{m.StaleServe.Url},{m.BadSignature.Url},{m.Expired.Url}", "--trust", m.Root, "list");
        Assert.NotEqual(0, mixed.ExitCode);
        Assert.Contains("CAIRN-E0706", mixed.Stderr, StringComparison.Ordinal);
        foreach (var s in new[] { m.StaleServe.Url, m.BadSignature.Url, m.Expired.Url }) Assert.Contains(s, mixed.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ASignedRepositoryServedByNginxVerifies()
    {
        await using var nginx = await Nginx.StartAsync(m.Fresh, m.Work);
        var env = m.Env($"state-{Guid.NewGuid():N}");
        var list = await Exec.CairnOkAsync(env, "--repo", nginx.Url, "--trust", m.Root, "list");
        Assert.Contains("late/1.0", list.Stdout, StringComparison.Ordinal);
        var history = await Exec.CairnOkAsync(env, "--repo", nginx.Url, "--trust", m.Root, "--json", "history");
        Assert.Contains("\"revision\": 1", history.Stdout, StringComparison.Ordinal);
        var tree = Fresh("tree");
        await Exec.CairnOkAsync(env, "--repo", $"{nginx.Url},{m.StaleServe.Url}", "--trust", m.Root, "materialize", "late/1.0", tree, "--cache", Fresh("cache"));
        Assert.Equal(m.NewTree, Product(tree));
    }
}
