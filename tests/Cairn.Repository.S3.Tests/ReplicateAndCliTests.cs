using System.Text.Json;
using Cairn.Server.Tests.Infrastructure;

namespace Cairn.Repository.S3.Tests;

/// <summary>The CLI on s3:// repositories, and cairn replicate from a real cairn serve into a directory and a bucket.</summary>
public sealed class ReplicateAndCliTests(S3Server s3) : IClassFixture<S3Server>
{
    private static async Task<string> SourceWithProductsAsync(TempDir dir, int products)
    {
        var repo = dir.Sub("source");
        await Exec.CairnOkAsync("init", repo, "--name", "origin");
        for (var i = 0; i < products; i++)
        {
            var files = dir.Sub($"files{i}");
            Directory.CreateDirectory(files);
            File.WriteAllText(Path.Combine(files, "readme.txt"), $"product {i}");
            var blob = new byte[200_000 + i];
            new Random(i).NextBytes(blob);
            File.WriteAllBytes(Path.Combine(files, "data.bin"), blob);
            await Exec.CairnOkAsync("--repo", repo, "publish", $"p{i}/1.0", files);
        }

        return repo;
    }

    [Fact]
    public async Task EveryCommandWorksOnAnS3Repository()
    {
        using var dir = new TempDir();
        var url = s3.NewUrl();
        await Exec.CairnOkAsync("init", url, "--name", "bucketrepo");
        var files = dir.Sub("files");
        Directory.CreateDirectory(Path.Combine(files, "bin"));
        File.WriteAllText(Path.Combine(files, "bin", "tool"), "#!/bin/sh\necho hi\n");
        await Exec.CairnOkAsync("--repo", url, "publish", "tool/2.0", files);
        var list = await Exec.CairnOkAsync("--repo", url, "list");
        Assert.Contains("tool", list.Stdout);
        await Exec.CairnOkAsync("--repo", url, "materialize", "tool/2.0", dir.Sub("out"));
        Assert.Equal("#!/bin/sh\necho hi\n", File.ReadAllText(Directory.EnumerateFiles(dir.Sub("out"), "tool", SearchOption.AllDirectories).Single()));
        await Exec.CairnOkAsync("--repo", url, "verify", "--full");
        await Exec.CairnOkAsync("--repo", url, "gc");
        await Exec.CairnOkAsync("--repo", url, "verify", "--full");
        var bad = await Exec.CairnAsync("--repo", "s3://bucket?color=blue", "list");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("CAIRN-E1100", bad.Stderr);
    }

    [Fact]
    public async Task ReplicateFromServeResumesAfterACrashAndTheMirrorServes()
    {
        using var dir = new TempDir();
        var source = await SourceWithProductsAsync(dir, 3);
        await using var origin = await CairnServe.StartAsync(source);
        var mirror = dir.Sub("mirror");

        // Killed (SIGKILL) right after the first pack lands, before its index: no head, nothing half-visible.
        var crashed = await Exec.CairnAsync(new Dictionary<string, string> { ["CAIRN_FAULT_POINT"] = "replicate-pack" }, "replicate", origin.Url, mirror);
        Assert.True(crashed.ExitCode == 137, $"the fault point 'replicate-pack' was not reached (exit 137 = SIGKILL expected): {crashed}");
        Assert.False(File.Exists(Path.Combine(mirror, "manifest.json")));

        var resumed = await Exec.CairnOkAsync("--json", "replicate", origin.Url, mirror);
        using (var json = JsonDocument.Parse(resumed.Stdout))
        {
            Assert.True(json.RootElement.GetProperty("headMoved").GetBoolean());
            Assert.Equal(4, json.RootElement.GetProperty("revision").GetInt64());
        }

        await Exec.CairnOkAsync("--repo", mirror, "verify", "--full");
        var again = await Exec.CairnOkAsync("--json", "replicate", origin.Url, mirror);
        using (var json = JsonDocument.Parse(again.Stdout))
        {
            Assert.Equal(0, json.RootElement.GetProperty("packsCopied").GetInt32());
            Assert.Equal(0, json.RootElement.GetProperty("revisionsCopied").GetInt32());
        }

        await using var served = await CairnServe.StartAsync(mirror);
        var list = await Exec.CairnOkAsync("--repo", served.Url, "list");
        for (var i = 0; i < 3; i++) Assert.Contains($"p{i}", list.Stdout);
        await Exec.CairnOkAsync("--repo", served.Url, "materialize", "p2/1.0", dir.Sub("out"), "--cache", dir.Sub("cache"));
        Assert.Equal("product 2", File.ReadAllText(Directory.EnumerateFiles(dir.Sub("out"), "readme.txt", SearchOption.AllDirectories).Single()));
    }

    [Fact]
    public async Task ASignedRepositoryStaysVerifiableThroughAMirror()
    {
        using var dir = new TempDir();
        var keys = await SigningKeys.CreateAsync(dir.Path);
        var signing = keys.Environment;
        var source = dir.Sub("source");
        await Exec.CairnOkAsync(signing, "init", source);
        var files = dir.Sub("files");
        Directory.CreateDirectory(files);
        File.WriteAllText(Path.Combine(files, "readme.txt"), "signed product");
        await Exec.CairnOkAsync(signing, "--repo", source, "publish", "signed/1.0", files);

        await using var origin = await CairnServe.StartAsync(source);
        var mirror = dir.Sub("mirror");
        await Exec.CairnOkAsync("replicate", origin.Url, mirror);
        Assert.True(File.Exists(Path.Combine(mirror, "manifest.sig")));

        // A client that trusts only the root key reads the mirror: signatures travelled with the revisions.
        await using var served = await CairnServe.StartAsync(mirror);
        var list = await Exec.CairnOkAsync("--repo", served.Url, "list", "--trust", keys.RootPublicKey, "--cache", dir.Sub("cache"));
        Assert.Contains("signed", list.Stdout);
    }

    [Fact]
    public async Task AnS3RepositoryIsSignedAtEveryCommitAndTrustingClientsVerifyItThroughAMirror()
    {
        using var dir = new TempDir();
        var keys = await SigningKeys.CreateAsync(dir.Path);
        var signing = keys.Environment;
        var url = s3.NewUrl();
        await Exec.CairnOkAsync(signing, "init", url, "--name", "signedbucket");
        var files = dir.Sub("files");
        Directory.CreateDirectory(files);
        File.WriteAllText(Path.Combine(files, "readme.txt"), "signed in a bucket");
        await Exec.CairnOkAsync(signing, "--repo", url, "publish", "inbucket/1.0", files);

        // Once signed, never an unsigned head: a publish without the key is refused and changes nothing.
        File.WriteAllText(Path.Combine(files, "readme.txt"), "unsigned change");
        var unsigned = await Exec.CairnAsync("--repo", url, "publish", "inbucket/1.1", files);
        Assert.Equal(2, unsigned.ExitCode);
        Assert.Contains("must be signed", unsigned.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("inbucket/1.1", (await Exec.CairnOkAsync("--repo", url, "list")).Stdout, StringComparison.Ordinal);

        // The head's signature is renewed in place (cron), the manifest untouched.
        var before = (await Exec.CairnOkAsync("--repo", url, "--json", "show", "inbucket/1.0")).Stdout;
        var resign = await Exec.CairnOkAsync(signing, "--repo", url, "key", "resign", "--days", "2");
        Assert.Contains("revision 2 signed by", resign.Stdout, StringComparison.Ordinal);
        Assert.Equal(before, (await Exec.CairnOkAsync("--repo", url, "--json", "show", "inbucket/1.0")).Stdout);

        // Each revision's signature lands with it, so a mirror of the bucket verifies against the root key alone.
        var mirror = dir.Sub("mirror");
        await Exec.CairnOkAsync("replicate", url, mirror);
        Assert.True(File.Exists(Path.Combine(mirror, "manifest.sig")));
        Assert.Equal(2, Directory.GetFiles(Path.Combine(mirror, "revisions"), "*.sig").Length);
        await using var served = await CairnServe.StartAsync(mirror);
        var list = await Exec.CairnOkAsync("--repo", served.Url, "list", "--trust", keys.RootPublicKey, "--cache", dir.Sub("cache"));
        Assert.Contains("inbucket", list.Stdout, StringComparison.Ordinal);

        // A client trusting another root refuses the same mirror.
        await Exec.CairnOkAsync("key", "generate", "--root", "-o", dir.Sub("other.key"));
        var wrong = await Exec.CairnAsync("--repo", served.Url, "list", "--trust", dir.Sub("other.key.pub"), "--cache", dir.Sub("cache2"));
        Assert.NotEqual(0, wrong.ExitCode);
    }

    [Fact]
    public async Task ReplicateIntoABucketAndAStaleSourceNeverRollsTheMirrorBack()
    {
        using var dir = new TempDir();
        var source = await SourceWithProductsAsync(dir, 2);
        await using var origin = await CairnServe.StartAsync(source);
        var url = s3.NewUrl();
        await Exec.CairnOkAsync("replicate", origin.Url, url);
        await Exec.CairnOkAsync("--repo", url, "verify", "--full");
        Assert.Contains("p1", (await Exec.CairnOkAsync("--repo", url, "list")).Stdout);

        // A stale copy of the origin (revision 3) replicated onto the fresher bucket after a new publish (revision 4).
        var stale = dir.Sub("stale");
        await Exec.CairnOkAsync("replicate", source, stale);
        var files = dir.Sub("late");
        Directory.CreateDirectory(files);
        File.WriteAllText(Path.Combine(files, "x"), "late");
        await Exec.CairnOkAsync("--repo", source, "publish", "late/1.0", files);
        await Exec.CairnOkAsync("replicate", origin.Url, url);
        var back = await Exec.CairnOkAsync("--json", "replicate", stale, url);
        using var json = JsonDocument.Parse(back.Stdout);
        Assert.False(json.RootElement.GetProperty("headMoved").GetBoolean());
        Assert.Contains("late", (await Exec.CairnOkAsync("--repo", url, "list")).Stdout);
    }
}
