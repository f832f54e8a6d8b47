using System.Text.Json;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Trust.Provenance;

namespace Cairn.Trust.Tests;

/// <summary>cairn attest show, cairn verify --provenance and cairn export run as real processes on a repository with attested products.</summary>
public sealed class CliProvenanceTests : IDisposable
{
    private readonly TempDir _dir = new("cairn-provenance-cli");

    public void Dispose() => _dir.Dispose();

    private string State => _dir.Sub("state");

    private Dictionary<string, string> Env => new() { ["CAIRN_STATE"] = State, ["CAIRN_CACHE"] = _dir.Sub("cache") };

    /// <summary>libpng/1.6.39 (with zlib/1.2.13 as its dependency) published with statements signed by this host's builder key in CAIRN_STATE.</summary>
    private async Task<(string Repo, KeyPair Key)> RepositoryAsync()
    {
        var key = BuilderKeys.Load(null, State);
        var repo = _dir.Sub("repo");
        await using var repository = await DirectoryRepository.InitAsync(repo, "attested", "linux-x86_64", TimeProvider.System, null, default);
        var tree = _dir.Sub("tree");
        Directory.CreateDirectory(tree);
        File.WriteAllText(Path.Combine(tree, "libz.so"), "zlib\n");
        var zlib = await repository.PublishDirectoryAsync(new ProductRef("zlib", "1.2.13"), tree, new PublishOptions(), null, default);
        File.WriteAllText(Path.Combine(tree, "libpng.so"), "libpng\n");
        var facts = ProvenanceTests.Facts() with { Dependencies = [new ProductInput("linux-x86_64/zlib/1.2.13", zlib.Product.Root)] };
        await repository.PublishDirectoryAsync(new ProductRef("libpng", "1.6.39"), tree, new PublishOptions
        {
            Dependencies = ["zlib/1.2.13"],
            Attestations = "logs/linux-x86_64/libpng/1.6.39/attestations.intoto.jsonl",
            Attest = root => AttestationBundle.Write(Attester.Sign(facts, root, key)),
        }, null, default);
        return (repo, key);
    }

    [Fact]
    public async Task AttestShowVerifyAndExportThroughTheCli()
    {
        var (repo, key) = await RepositoryAsync();
        using (key)
        {
            var show = await Exec.CairnOkAsync(Env, "--repo", repo, "attest", "show", "libpng/1.6.39", "--json");
            using (var json = JsonDocument.Parse(show.Stdout))
            {
                var statements = json.RootElement.GetProperty("statements");
                Assert.Equal(2, statements.GetArrayLength());
                Assert.Equal("https://cairn.dev/builder/site-a", statements[0].GetProperty("builder").GetString());
                Assert.Equal("PASSED", statements[1].GetProperty("result").GetString());
                Assert.Equal(key.KeyId, statements[0].GetProperty("keyIds")[0].GetString());
            }

            var human = await Exec.CairnOkAsync(Env, "--repo", repo, "attest", "show", "libpng/1.6.39");
            Assert.Contains("tests:        PASSED, 2 passed, 0 failed", human.Stdout, StringComparison.Ordinal);

            // zlib was published by hand: no statements, so the whole check fails naming it (CAIRN-E1200), libpng passes.
            var all = await Exec.CairnAsync(Env, "--repo", repo, "verify", "--provenance");
            Assert.True(all.ExitCode == 4, all.ToString());
            Assert.Contains("ok      linux-x86_64/libpng/1.6.39", all.Stdout, StringComparison.Ordinal);
            Assert.Contains("REFUSED linux-x86_64/zlib/1.2.13: CAIRN-E1200", all.Stdout, StringComparison.Ordinal);

            // A policy trusting another builder's key only: libpng is refused as untrusted.
            using var other = Keys.Generate(KeyKind.Builder);
            var policy = _dir.Sub("policy.json");
            File.WriteAllText(policy, $$"""{"format":1,"builders":[{"id":"site-a","publicKey":"{{Keys.Encode(other.Public)}}"}]}""");
            var refused = await Exec.CairnAsync(Env, "--repo", repo, "verify", "--provenance", "--policy", policy, "--json");
            using (var json = JsonDocument.Parse(refused.Stdout))
            {
                var libpng = json.RootElement.GetProperty("products").EnumerateArray().Single(p => p.GetProperty("product").GetString() == "linux-x86_64/libpng/1.6.39");
                Assert.Equal("CAIRN-E1203", libpng.GetProperty("code").GetString());
            }

            var bad = _dir.Sub("bad-policy.json");
            File.WriteAllText(bad, "{\"format\":2}");
            var invalid = await Exec.CairnAsync(Env, "--repo", repo, "verify", "--provenance", "--policy", bad);
            Assert.True(invalid.ExitCode == 2 && invalid.Stderr.Contains("CAIRN-E1207", StringComparison.Ordinal), invalid.ToString());

            var tarball = _dir.Sub("out/libpng.tar.zst");
            Directory.CreateDirectory(_dir.Sub("out"));
            await Exec.CairnOkAsync(Env, "--repo", repo, "export", "libpng/1.6.39", "-o", tarball);
            var exported = _dir.Sub("out/libpng-1.6.39.intoto.jsonl");
            Assert.True(File.Exists(exported));
            var envelopes = AttestationBundle.Read(File.ReadAllBytes(exported), exported);
            Assert.Equal(2, envelopes.Count);
            Assert.All(envelopes, e => Assert.True(Dsse.IsSignedBy(e, key.Public)));
        }
    }
}
