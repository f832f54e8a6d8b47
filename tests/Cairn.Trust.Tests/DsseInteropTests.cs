using System.Text;
using Cairn.Core;
using Cairn.Trust.Provenance;

namespace Cairn.Trust.Tests;

/// <summary>
/// Cairn's DSSE against an independent implementation: @sigstore/core's preAuthEncoding with Node's Ed25519
/// (tests/interop/dsse, installed by scripts/install-deps.sh with npm ci), run as a real process.
/// </summary>
public sealed class DsseInteropTests : IDisposable
{
    private readonly TempDir _dir = new("cairn-dsse-interop");

    public void Dispose() => _dir.Dispose();

    private static string Script
    {
        get
        {
            var folder = Path.Combine(Checkout.Root, "tests", "interop", "dsse");
            Assert.True(File.Exists(Path.Combine(folder, "node_modules", "@sigstore", "core", "package.json")),
                $"@sigstore/core is not installed in {folder}: run scripts/install-deps.sh (npm ci there)");
            return Path.Combine(folder, "dsse-interop.mjs");
        }
    }

    private static async Task<RunResult> NodeAsync(params string[] args) => await Exec.RunAsync(["node", Script, .. args]);

    [Fact]
    public async Task SigstoresPreAuthEncodingIsCairnsOnTheSpecVectorAndOnAStatement()
    {
        var vector = await NodeAsync("pae", "http://example.com/HelloWorld", "hello world");
        Assert.True(vector.ExitCode == 0, vector.ToString());
        Assert.Equal("DSSEv1 29 http://example.com/HelloWorld 11 hello world", vector.Stdout);
        Assert.Equal(vector.Stdout, Encoding.UTF8.GetString(Dsse.PreAuthEncoding("http://example.com/HelloWorld", "hello world"u8)));

        var body = "{\"name\":\"caf\u00e9\"}";
        var node = await NodeAsync("pae", Dsse.InTotoPayloadType, body);
        Assert.Equal(Encoding.UTF8.GetString(Dsse.PreAuthEncoding(Dsse.InTotoPayloadType, Encoding.UTF8.GetBytes(body))), node.Stdout);
    }

    [Fact]
    public async Task NodeVerifiesTheBundleCairnWritesAndRejectsATamperedOne()
    {
        using var key = Keys.Generate(KeyKind.Builder);
        var bundle = _dir.Sub("libpng-1.6.39.intoto.jsonl");
        var envelopes = Attester.Sign(ProvenanceTests.Facts(), Digest.Of("root"u8), key);
        File.WriteAllBytes(bundle, AttestationBundle.Write(envelopes));

        var ok = await NodeAsync("verify", bundle, Keys.Encode(key.Public));
        Assert.True(ok.ExitCode == 0, ok.ToString());
        Assert.Contains("verified 1 https://slsa.dev/provenance/v1 linux-x86_64/libpng/1.6.39", ok.Stdout, StringComparison.Ordinal);
        Assert.Contains("verified 2 https://in-toto.io/attestation/test-result/v0.1 linux-x86_64/libpng/1.6.39", ok.Stdout, StringComparison.Ordinal);

        // The same bytes with the payload type changed: the PAE covers it, so Node must refuse too.
        var tampered = _dir.Sub("tampered.intoto.jsonl");
        File.WriteAllBytes(tampered, AttestationBundle.Write([envelopes[0] with { PayloadType = "application/json" }]));
        var bad = await NodeAsync("verify", tampered, Keys.Encode(key.Public));
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("BAD 1", bad.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CairnReadsAndVerifiesAnEnvelopeNodeSigned()
    {
        var root = Digest.Of("root"u8);
        var facts = ProvenanceTests.Facts();
        var provenance = _dir.Sub("provenance.json");
        var tests = _dir.Sub("tests.json");
        File.WriteAllBytes(provenance, CairnJson.Serialize(Attester.Provenance(facts, root), ProvenanceJson.Default.ProvenanceStatement));
        File.WriteAllBytes(tests, CairnJson.Serialize(Attester.TestResult(facts, root), ProvenanceJson.Default.TestResultStatement));
        var first = await NodeAsync("sign", provenance, Dsse.InTotoPayloadType, _dir.Sub("a.jsonl"));
        Assert.True(first.ExitCode == 0, first.ToString());
        var keyA = first.Stdout.Trim();
        var second = await NodeAsync("sign", tests, Dsse.InTotoPayloadType, _dir.Sub("b.jsonl"));
        var keyB = second.Stdout.Trim();
        Assert.NotEqual(keyA, keyB);

        var envelopes = AttestationBundle.Read(File.ReadAllBytes(_dir.Sub("a.jsonl")), "a.jsonl");
        Assert.Equal("node", envelopes[0].Signatures[0].KeyId);
        Assert.True(Dsse.IsSignedBy(envelopes[0], Keys.DecodePublic(keyA)!));
        Assert.False(Dsse.IsSignedBy(envelopes[0], Keys.DecodePublic(keyB)!));

        // Both of Node's envelopes as one bundle, each key trusted for site-a (the statement's builder): it verifies.
        var bundle = AttestationBundle.Write([.. envelopes, .. AttestationBundle.Read(File.ReadAllBytes(_dir.Sub("b.jsonl")), "b.jsonl")]);
        var policy = new ProvenancePolicy(1, [new TrustedBuilder("site-a", keyA), new TrustedBuilder("site-a", keyB)]);
        var verified = new ProvenanceVerifier(policy).Verify(bundle, ProvenanceTests.Expected(root), "node bundle");
        Assert.Equal([InToto.BuilderId("site-a")], verified.Builders);
    }
}

/// <summary>The checkout (the folder holding Cairn.slnx), found from the test binaries or this source file.</summary>
internal static class Checkout
{
    public static string Root { get; } = Find();

    private static string Find([System.Runtime.CompilerServices.CallerFilePath] string sourceFile = "")
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile) })
        {
            for (var dir = string.IsNullOrEmpty(start) ? null : new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Cairn.slnx"))) return dir.FullName;
            }
        }

        throw new InvalidOperationException($"cannot find the checkout (Cairn.slnx) above {AppContext.BaseDirectory}");
    }
}
