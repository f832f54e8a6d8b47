using System.Text;
using System.Text.Json;
using Cairn.Core;
using Cairn.Trust.Provenance;

namespace Cairn.Trust.Tests;

/// <summary>The provenance format's guarantees (docs/format/provenance.md): each refusal is a test that a forgery would pass without its check.</summary>
public sealed class ProvenanceTests : IDisposable
{
    private readonly KeyPair _siteA = Keys.Generate(KeyKind.Builder);
    private readonly KeyPair _siteB = Keys.Generate(KeyKind.Builder);
    private readonly KeyPair _stranger = Keys.Generate(KeyKind.Builder);
    private static readonly Digest Root = Digest.Of("the product's root tree"u8);
    private static readonly Digest ZlibRoot = Digest.Of("zlib's root tree"u8);

    public void Dispose()
    {
        _siteA.Dispose();
        _siteB.Dispose();
        _stranger.Dispose();
    }

    public static BuildFacts Facts(string site = "site-a", IReadOnlyList<string>? failed = null) => new()
    {
        Platform = "linux-x86_64", Name = "libpng", Version = "1.6.39",
        RecipePath = "libpng", RecipeDigest = Digest.Of("recipe listing"u8),
        DeploymentRoot = "/cvmfs/cairn", DeploymentSite = "generic",
        SandboxContract = 2, SeccompFilter = Digest.Of("bpf"u8), BuildKey = Digest.Of("key"u8).ToString(),
        Sources = [new SourceInput("libpng-1.6.39.tar.gz", "https://example.org/libpng-1.6.39.tar.gz", Digest.Of("tarball"u8))],
        Dependencies = [new ProductInput("linux-x86_64/zlib/1.2.13", ZlibRoot)],
        Site = site, CairnVersion = "1.0.0", InvocationId = "00000000-0000-0000-0000-000000000001",
        StartedOn = new DateTimeOffset(2026, 12, 8, 1, 0, 0, TimeSpan.Zero), FinishedOn = new DateTimeOffset(2026, 12, 8, 1, 5, 0, TimeSpan.Zero),
        LogPath = "logs/linux-x86_64/libpng/1.6.39/build.log", LogSha256 = Digest.Of("log"u8),
        CheckScript = "check.sh", CheckScriptSha256 = Digest.Of("make check"u8),
        PassedTests = ["pngtest.read", "pngtest.write"], FailedTests = failed ?? [],
    };

    public static ProvenanceExpectation Expected(Digest? root = null, Digest? zlib = null) => new("linux-x86_64/libpng/1.6.39", root ?? Root,
        [new ProductInput("linux-x86_64/zlib/1.2.13", zlib ?? ZlibRoot)],
        new Dictionary<string, Digest> { ["linux-x86_64/zlib/1.2.13"] = zlib ?? ZlibRoot, ["linux-x86_64/libpng/1.6.39"] = root ?? Root });

    private static ProvenanceVerifier Trusting(params (string Id, KeyPair Key)[] builders) =>
        new(new ProvenancePolicy(1, [.. builders.Select(b => new TrustedBuilder(b.Id, Keys.Encode(b.Key.Public)))]));

    private static ErrorCode Refusal(Action check) => Assert.Throws<CairnException>(check).Code;

    [Fact]
    public void PreAuthEncodingMatchesTheDsseSpecVector()
    {
        // protocol.md, "Test Vectors": payload type http://example.com/HelloWorld, body "hello world".
        var pae = Dsse.PreAuthEncoding("http://example.com/HelloWorld", "hello world"u8);
        Assert.Equal("DSSEv1 29 http://example.com/HelloWorld 11 hello world", Encoding.ASCII.GetString(pae));
        // Lengths are byte counts, not characters.
        Assert.Equal(Encoding.UTF8.GetBytes("DSSEv1 3 t\u00e9 2 \u00e9"), Dsse.PreAuthEncoding("t\u00e9", Encoding.UTF8.GetBytes("\u00e9")));
    }

    [Fact]
    public void ABuildsTwoStatementsVerifyAndSayWhatTheDocsSay()
    {
        var bundle = AttestationBundle.Write(Attester.Sign(Facts(), Root, _siteA));
        var verified = Trusting(("site-a", _siteA)).Verify(bundle, Expected(), "bundle");
        Assert.Equal([InToto.BuilderId("site-a")], verified.Builders);
        Assert.Equal(2, verified.Statements);

        var lines = Encoding.UTF8.GetString(bundle).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        using var provenance = JsonDocument.Parse(Convert.FromBase64String(JsonDocument.Parse(lines[0]).RootElement.GetProperty("payload").GetString()!));
        var p = provenance.RootElement;
        Assert.Equal("https://in-toto.io/Statement/v1", p.GetProperty("_type").GetString());
        Assert.Equal("https://slsa.dev/provenance/v1", p.GetProperty("predicateType").GetString());
        Assert.Equal(Root.ToString(), p.GetProperty("subject")[0].GetProperty("digest").GetProperty("cairnTree").GetString());
        var definition = p.GetProperty("predicate").GetProperty("buildDefinition");
        Assert.Equal("https://cairn.dev/provenance/build/v1", definition.GetProperty("buildType").GetString());
        var uris = definition.GetProperty("resolvedDependencies").EnumerateArray().Select(d => d.GetProperty("uri").GetString()).ToList();
        Assert.Equal(["https://example.org/libpng-1.6.39.tar.gz", "cairn:product:linux-x86_64/zlib/1.2.13", "cairn:recipe:libpng"], uris);
        Assert.Equal("https://cairn.dev/builder/site-a", p.GetProperty("predicate").GetProperty("runDetails").GetProperty("builder").GetProperty("id").GetString());
        using var test = JsonDocument.Parse(Convert.FromBase64String(JsonDocument.Parse(lines[1]).RootElement.GetProperty("payload").GetString()!));
        Assert.Equal("PASSED", test.RootElement.GetProperty("predicate").GetProperty("result").GetString());
        Assert.Equal(2, test.RootElement.GetProperty("predicate").GetProperty("passedTests").GetArrayLength());
    }

    [Fact]
    public void SignedByAnotherKeyIsRefused()
    {
        var bundle = AttestationBundle.Write(Attester.Sign(Facts(), Root, _stranger));
        Assert.Equal(ErrorCode.ProvenanceBuilderUntrusted, Refusal(() => Trusting(("site-a", _siteA)).Verify(bundle, Expected(), "b")));
    }

    [Fact]
    public void ATamperedPayloadIsRefused()
    {
        var envelopes = Attester.Sign(Facts(), Root, _siteA).ToList();
        // The verdict stays PASSED but a failed test is hidden: one byte of the signed statement changed.
        var text = Encoding.UTF8.GetString(Convert.FromBase64String(envelopes[1].Payload)).Replace("pngtest.write", "pngtest.wrote", StringComparison.Ordinal);
        envelopes[1] = envelopes[1] with { Payload = Convert.ToBase64String(Encoding.UTF8.GetBytes(text)) };
        Assert.Equal(ErrorCode.ProvenanceSignatureInvalid, Refusal(() => Trusting(("site-a", _siteA)).Verify(AttestationBundle.Write(envelopes), Expected(), "b")));
    }

    [Fact]
    public void ATamperedSubjectDigestIsRefusedAsIsAnotherProductsStatement()
    {
        var envelopes = Attester.Sign(Facts(), Root, _siteA).ToList();
        var other = Digest.Of("another tree"u8).ToString();
        var text = Encoding.UTF8.GetString(Convert.FromBase64String(envelopes[0].Payload)).Replace(Root.ToString(), other, StringComparison.Ordinal);
        envelopes[0] = envelopes[0] with { Payload = Convert.ToBase64String(Encoding.UTF8.GetBytes(text)) };
        Assert.Equal(ErrorCode.ProvenanceSignatureInvalid, Refusal(() => Trusting(("site-a", _siteA)).Verify(AttestationBundle.Write(envelopes), Expected(), "b")));

        // Validly signed, but for another root than the product served (a mirror swapping in a different build).
        var genuine = AttestationBundle.Write(Attester.Sign(Facts(), Root, _siteA));
        Assert.Equal(ErrorCode.ProvenanceSubjectMismatch, Refusal(() => Trusting(("site-a", _siteA)).Verify(genuine, Expected(root: Digest.Of("served"u8)), "b")));
    }

    [Fact]
    public void AFailedVerdictIsNeverSignedForPublicationAndATrustedFailedOneIsRefused()
    {
        Assert.Equal(ErrorCode.ProvenanceNotPassed, Refusal(() => Attester.Sign(Facts(failed: ["pngtest.write"]), Root, _siteA)));

        // A trusted builder's FAILED statement (written by hand: Cairn never publishes one) is a refusal, not a shrug.
        var facts = Facts(failed: ["pngtest.write"]);
        var failedStatement = CairnJson.Serialize(Attester.TestResult(facts, Root), ProvenanceJson.Default.TestResultStatement);
        var provenance = CairnJson.Serialize(Attester.Provenance(facts, Root), ProvenanceJson.Default.ProvenanceStatement);
        var bundle = AttestationBundle.Write([Dsse.Sign(Dsse.InTotoPayloadType, provenance, _siteA), Dsse.Sign(Dsse.InTotoPayloadType, failedStatement, _siteA)]);
        Assert.Contains("FAILED", Encoding.UTF8.GetString(Convert.FromBase64String(JsonDocument.Parse(Encoding.UTF8.GetString(bundle).Split('\n')[1]).RootElement.GetProperty("payload").GetString()!)), StringComparison.Ordinal);
        Assert.Equal(ErrorCode.ProvenanceNotPassed, Refusal(() => Trusting(("site-a", _siteA)).Verify(bundle, Expected(), "b")));

        // A provenance without any test result is not a PASSED verdict either.
        var alone = AttestationBundle.Write([Dsse.Sign(Dsse.InTotoPayloadType, provenance, _siteA)]);
        Assert.Equal(ErrorCode.ProvenanceNotPassed, Refusal(() => Trusting(("site-a", _siteA)).Verify(alone, Expected(), "b")));
    }

    [Fact]
    public void DependenciesOtherThanThePublishedOnesAreRefused()
    {
        var bundle = AttestationBundle.Write(Attester.Sign(Facts(), Root, _siteA));
        // zlib was replaced after libpng was built against the old one.
        Assert.Equal(ErrorCode.ProvenanceDependencyMismatch, Refusal(() => Trusting(("site-a", _siteA)).Verify(bundle, Expected(zlib: Digest.Of("new zlib"u8)), "b")));
        // The catalog says libpng depends on bzip2 too; the provenance does not name it.
        var more = Expected() with { Dependencies = [.. Expected().Dependencies, new ProductInput("linux-x86_64/bzip2/1.0.8", Digest.Of("bzip2"u8))] };
        Assert.Equal(ErrorCode.ProvenanceDependencyMismatch, Refusal(() => Trusting(("site-a", _siteA)).Verify(bundle, more, "b")));
    }

    [Fact]
    public void AKeyMaySpeakOnlyForItsOwnBuilderId()
    {
        // site-b's key signs a statement claiming site-a built it; the policy trusts site-b under its own name only.
        var bundle = AttestationBundle.Write(Attester.Sign(Facts(site: "site-a"), Root, _siteB));
        Assert.Equal(ErrorCode.ProvenanceBuilderUntrusted, Refusal(() => Trusting(("site-b", _siteB)).Verify(bundle, Expected(), "b")));
        // A builder the policy does not list at all.
        var own = AttestationBundle.Write(Attester.Sign(Facts(site: "site-b"), Root, _siteB));
        Assert.Equal(ErrorCode.ProvenanceBuilderUntrusted, Refusal(() => Trusting(("site-a", _siteA)).Verify(own, Expected(), "b")));
    }

    [Fact]
    public void KBuildersMeansKDistinctTrustedKeys()
    {
        var policy = new ProvenancePolicy(1, [new TrustedBuilder("site-a", Keys.Encode(_siteA.Public)), new TrustedBuilder("site-b", Keys.Encode(_siteB.Public))], MinimumBuilders: 2);
        var a = Attester.Sign(Facts("site-a"), Root, _siteA);
        var aAgain = Attester.Sign(Facts("site-a") with { InvocationId = "second" }, Root, _siteA);
        var b = Attester.Sign(Facts("site-b"), Root, _siteB);
        var stranger = Attester.Sign(Facts("site-c"), Root, _stranger);

        Assert.Equal(ErrorCode.ProvenanceNotPassed, Refusal(() => new ProvenanceVerifier(policy).Verify(AttestationBundle.Write([.. a, .. aAgain, .. stranger]), Expected(), "b")));
        var verified = new ProvenanceVerifier(policy).Verify(AttestationBundle.Write([.. a, .. stranger, .. b]), Expected(), "b");
        Assert.Equal([InToto.BuilderId("site-a"), InToto.BuilderId("site-b")], verified.Builders);
    }

    [Fact]
    public void MalformedBundlesArePreciseRefusals()
    {
        Assert.Equal(ErrorCode.ProvenanceMalformed, Refusal(() => AttestationBundle.Read("{\"payloadType\":1}\n"u8, "x")));
        Assert.Equal(ErrorCode.ProvenanceMalformed, Refusal(() => AttestationBundle.Read("not json\n"u8, "x")));
        Assert.Equal(ErrorCode.ProvenanceMissing, Refusal(() => Trusting(("site-a", _siteA)).Verify("\n"u8, Expected(), "x")));
        var manifestType = AttestationBundle.Write([Dsse.Sign("application/vnd.cairn.manifest-signature+json", "{}"u8.ToArray(), _siteA)]);
        Assert.Equal(ErrorCode.ProvenanceMalformed, Refusal(() => Trusting(("site-a", _siteA)).Verify(manifestType, Expected(), "x")));
    }

    [Fact]
    public void PolicyFilesAreCheckedWhenRead()
    {
        using var dir = new TempDir("cairn-policy");
        var path = dir.Sub("policy.json");
        File.WriteAllText(path, $$"""{"format":1,"builders":[{"id":"site-a","publicKey":"{{Keys.Encode(_siteA.Public)}}"}],"minimumBuilders":1}""");
        var policy = ProvenancePolicy.Load(path);
        Assert.Equal("site-a", policy.Builders[0].Id);
        File.WriteAllText(path, """{"format":1,"builders":[{"id":"site-a","publicKey":"not a key"}]}""");
        Assert.Equal(ErrorCode.ProvenancePolicyInvalid, Refusal(() => ProvenancePolicy.Load(path)));
        File.WriteAllText(path, "[]");
        Assert.Equal(ErrorCode.ProvenancePolicyInvalid, Refusal(() => ProvenancePolicy.Load(path)));
    }
}
