using System.Security.Cryptography;
using System.Text.Json;
using Cairn.Server.Tests.Infrastructure;

namespace Cairn.Repository.S3.Tests;

/// <summary>
/// cairn replicate from a real cairn serve into a directory: packs streamed and hashed on the way in, durability
/// batched before the head moves. What must hold whatever the speed-ups: nothing partial or unverified under its
/// name, resumable after a crash, a damaged mirror repaired, torn files above the head replaced, head never back.
/// </summary>
public sealed class ReplicateDirectoryTests
{
    /// <summary>A source with one multi-chunk pack (incompressible 3 MiB) and a few small products.</summary>
    private static async Task<string> SourceAsync(TempDir dir, int products = 2)
    {
        var repo = dir.Sub("source");
        await Exec.CairnOkAsync("init", repo, "--name", "origin");
        var big = dir.Sub("big");
        Directory.CreateDirectory(big);
        var blob = new byte[3 << 20];
        new Random(42).NextBytes(blob);
        File.WriteAllBytes(Path.Combine(big, "blob.bin"), blob);
        File.WriteAllText(Path.Combine(big, "readme.txt"), "big product");
        await Exec.CairnOkAsync("--repo", repo, "publish", "big/1.0", big);
        for (var i = 0; i < products; i++) await PublishSmallAsync(dir, repo, $"p{i}");
        return repo;
    }

    private static async Task PublishSmallAsync(TempDir dir, string repo, string name)
    {
        var files = dir.Sub("files-" + name);
        Directory.CreateDirectory(files);
        File.WriteAllText(Path.Combine(files, "readme.txt"), $"product {name}");
        await Exec.CairnOkAsync("--repo", repo, "publish", $"{name}/1.0", files);
    }

    private static string LargestPack(string repo) =>
        Directory.EnumerateFiles(Path.Combine(repo, "packs"), "*.pack").OrderByDescending(f => new FileInfo(f).Length).First();

    /// <summary>Every pack under its final name hashes to its name: nothing partial or unverified is visible.</summary>
    private static void AssertEveryVisiblePackVerifies(string mirror)
    {
        var packs = Path.Combine(mirror, "packs");
        if (!Directory.Exists(packs)) return;
        foreach (var pack in Directory.EnumerateFiles(packs, "*.pack"))
        {
            Assert.Equal(Path.GetFileNameWithoutExtension(pack), Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(pack))));
        }
    }

    private static JsonElement Json(RunResult run) => JsonDocument.Parse(run.Stdout).RootElement.Clone();

    private static long HeadRevision(string repo) =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(repo, "manifest.json"))).RootElement.GetProperty("revision").GetInt64();

    [Fact]
    public async Task ACrashMidPackLeavesNothingUnderItsNameAndTheResumedMirrorServesAndVerifies()
    {
        using var dir = new TempDir();
        var source = await SourceAsync(dir);
        await using var origin = await CairnServe.StartAsync(source);
        var mirror = dir.Sub("mirror");

        // SIGKILL after the first 1 MiB chunk of a pack is in its temporary file.
        var crashed = await Exec.CairnAsync(new Dictionary<string, string> { ["CAIRN_FAULT_POINT"] = "replicate-pack-partial" }, "replicate", origin.Url, mirror);
        Assert.True(crashed.ExitCode == 137, $"the fault point 'replicate-pack-partial' was not reached (exit 137 = SIGKILL expected): {crashed}");
        Assert.False(File.Exists(Path.Combine(mirror, "manifest.json")));
        AssertEveryVisiblePackVerifies(mirror);
        Assert.False(File.Exists(Path.Combine(mirror, "packs", Path.GetFileName(LargestPack(source)))));

        var resumed = Json(await Exec.CairnOkAsync("--json", "replicate", origin.Url, mirror));
        Assert.True(resumed.GetProperty("headMoved").GetBoolean());
        Assert.Equal(HeadRevision(source), resumed.GetProperty("revision").GetInt64());
        AssertEveryVisiblePackVerifies(mirror);
        foreach (var file in Directory.EnumerateFiles(Path.Combine(source, "revisions")))
        {
            Assert.Equal(File.ReadAllBytes(file), File.ReadAllBytes(Path.Combine(mirror, "revisions", Path.GetFileName(file))));
        }

        await Exec.CairnOkAsync("--repo", mirror, "verify", "--full");
        await using var served = await CairnServe.StartAsync(mirror);
        await Exec.CairnOkAsync("--repo", served.Url, "materialize", "big/1.0", dir.Sub("out"), "--cache", dir.Sub("cache"));
        var blob = Directory.EnumerateFiles(dir.Sub("out"), "blob.bin", SearchOption.AllDirectories).Single();
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir.Sub("big"), "blob.bin")), File.ReadAllBytes(blob));

        // Up to date: nothing copied, head unchanged.
        var again = Json(await Exec.CairnOkAsync("--json", "replicate", origin.Url, mirror));
        Assert.Equal(0, again.GetProperty("packsCopied").GetInt32());
        Assert.Equal(0, again.GetProperty("revisionsCopied").GetInt32());
        Assert.False(again.GetProperty("headMoved").GetBoolean());
    }

    [Fact]
    public async Task ACorruptedSourcePackIsRefusedAndNothingLandsUnderItsName()
    {
        using var dir = new TempDir();
        var source = await SourceAsync(dir, products: 0);
        var pack = LargestPack(source);
        using (var f = new FileStream(pack, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = f.Length / 2;
            var b = f.ReadByte();
            f.Position = f.Length / 2;
            f.WriteByte((byte)(b ^ 0x10));
        }

        await using var origin = await CairnServe.StartAsync(source);
        var mirror = dir.Sub("mirror");
        var refused = await Exec.CairnAsync("replicate", origin.Url, mirror);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("CAIRN-E0210", refused.Stderr);
        Assert.Contains(Path.GetFileNameWithoutExtension(pack), refused.Stderr);
        Assert.False(File.Exists(Path.Combine(mirror, "packs", Path.GetFileName(pack))));
        Assert.False(File.Exists(Path.ChangeExtension(Path.Combine(mirror, "packs", Path.GetFileName(pack)), ".idx")));
        Assert.False(File.Exists(Path.Combine(mirror, "manifest.json")));
        AssertEveryVisiblePackVerifies(mirror);
        // The refused copy's temporary file is gone too.
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(mirror, "tmp")));
    }

    [Fact]
    public async Task AMirrorWithADamagedPackAndIndexIsRepaired()
    {
        using var dir = new TempDir();
        var source = await SourceAsync(dir);
        await using var origin = await CairnServe.StartAsync(source);
        var mirror = dir.Sub("mirror");
        await Exec.CairnOkAsync("replicate", origin.Url, mirror);

        var packs = Directory.EnumerateFiles(Path.Combine(mirror, "packs"), "*.pack").Order(StringComparer.Ordinal).ToList();
        var big = Path.Combine(mirror, "packs", Path.GetFileName(LargestPack(source)));
        var bytes = File.ReadAllBytes(big);
        bytes[bytes.Length / 3] ^= 0x01;
        File.WriteAllBytes(big, bytes);
        var otherIdx = Path.ChangeExtension(packs.First(p => p != big), ".idx");
        File.WriteAllBytes(otherIdx, File.ReadAllBytes(otherIdx)[..^3]);

        var repaired = Json(await Exec.CairnOkAsync("--json", "replicate", origin.Url, mirror));
        Assert.Equal(2, repaired.GetProperty("packsCopied").GetInt32());
        Assert.False(repaired.GetProperty("headMoved").GetBoolean());
        AssertEveryVisiblePackVerifies(mirror);
        await Exec.CairnOkAsync("--repo", mirror, "verify", "--full");
        await Exec.CairnOkAsync("--repo", mirror, "materialize", "big/1.0", dir.Sub("out"), "--no-cache");
    }

    [Fact]
    public async Task TornRevisionsAboveTheHeadAreReplacedAndTheHeadNeverGoesBack()
    {
        using var dir = new TempDir();
        var source = await SourceAsync(dir, products: 1);
        await using var origin = await CairnServe.StartAsync(source);
        var mirror = dir.Sub("mirror");
        await Exec.CairnOkAsync("replicate", origin.Url, mirror);
        var old = HeadRevision(mirror);

        // What a crash before the flush may leave: the next revision present but empty, above the durable head.
        await PublishSmallAsync(dir, source, "late");
        var next = Path.Combine(mirror, "revisions", $"{old + 1:D16}.json");
        File.WriteAllBytes(next, []);
        var run = Json(await Exec.CairnOkAsync("--json", "replicate", origin.Url, mirror));
        Assert.True(run.GetProperty("headMoved").GetBoolean());
        Assert.Equal(1, run.GetProperty("revisionsCopied").GetInt32());
        Assert.Equal(File.ReadAllBytes(Path.Combine(source, "revisions", $"{old + 1:D16}.json")), File.ReadAllBytes(next));
        Assert.Equal(File.ReadAllBytes(Path.Combine(source, "manifest.json")), File.ReadAllBytes(Path.Combine(mirror, "manifest.json")));
        Assert.Contains("late", (await Exec.CairnOkAsync("--repo", mirror, "list")).Stdout);

        // A stale copy (the mirror's old state) replicated onto the fresher mirror leaves its head alone.
        var stale = dir.Sub("stale");
        await Exec.CairnOkAsync("replicate", mirror, stale);
        File.Copy(Path.Combine(source, "revisions", $"{old:D16}.json"), Path.Combine(stale, "manifest.json"), overwrite: true);
        Assert.Equal(old, HeadRevision(stale));
        var back = Json(await Exec.CairnOkAsync("--json", "replicate", stale, mirror));
        Assert.False(back.GetProperty("headMoved").GetBoolean());
        Assert.Equal(old + 1, HeadRevision(mirror));
        await Exec.CairnOkAsync("--repo", mirror, "verify", "--full");
    }

    [Fact]
    public async Task EverySignatureLandsWithItsRevision()
    {
        using var dir = new TempDir();
        var keys = await SigningKeys.CreateAsync(dir.Path);
        var signing = keys.Environment;
        var source = dir.Sub("source");
        await Exec.CairnOkAsync(signing, "init", source);
        for (var i = 0; i < 3; i++)
        {
            var files = dir.Sub($"files{i}");
            Directory.CreateDirectory(files);
            File.WriteAllText(Path.Combine(files, "readme.txt"), $"signed product {i}");
            await Exec.CairnOkAsync(signing, "--repo", source, "publish", $"signed{i}/1.0", files);
        }

        await using var origin = await CairnServe.StartAsync(source);
        var mirror = dir.Sub("mirror");
        await Exec.CairnOkAsync("replicate", origin.Url, mirror);
        var signatures = Directory.EnumerateFiles(Path.Combine(source, "revisions"), "*.sig").ToList();
        Assert.NotEmpty(signatures);
        foreach (var sig in signatures)
        {
            Assert.Equal(File.ReadAllBytes(sig), File.ReadAllBytes(Path.Combine(mirror, "revisions", Path.GetFileName(sig))));
        }

        Assert.Equal(File.ReadAllBytes(Path.Combine(source, "manifest.sig")), File.ReadAllBytes(Path.Combine(mirror, "manifest.sig")));
        await using var served = await CairnServe.StartAsync(mirror);
        var list = await Exec.CairnOkAsync("--repo", served.Url, "list", "--trust", keys.RootPublicKey, "--cache", dir.Sub("cache"));
        Assert.Contains("signed2", list.Stdout);
    }
}
