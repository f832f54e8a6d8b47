using System.Text.Json;
using Cairn.Core;
using Microsoft.Extensions.Time.Testing;

namespace Cairn.Trust.Tests;

/// <summary>The signature format's own guarantees, checked without a server.</summary>
public sealed class EnvelopeTests : IDisposable
{
    private readonly TrustWorld _w = new();

    public void Dispose() => _w.Dispose();

    private static Manifest Sample(string repository = "trusted", long revision = 5) =>
        new(1, repository, revision, revision - 1, DateTimeOffset.UtcNow, Digest.Of("root"u8), 1, Digest.Of("catalog"u8), new Dictionary<string, long>(), "m");

    private ManifestVerifier Verifier(TimeProvider? time = null) => new(_w.RootPublic, _w.State, time ?? TimeProvider.System);

    [Fact]
    public void ACertificateCannotBeReplayedAsAManifestStatement()
    {
        using var signer = TrustWorld.Signer(_w.PublishingKey);
        var m = Sample();
        var file = JsonSerializer.Deserialize(signer.Sign(CairnJson.Serialize(m, CoreJson.Default.Manifest), m), TrustJson.Default.SignatureFile)!;
        // The root-signed certificate relabelled as a statement: the payload type is part of what was signed.
        var forged = file with { Statement = file.Certificate with { PayloadType = Envelope.ManifestType } };
        var e = Assert.Throws<CairnException>(() => Verifier().CheckEnvelope(JsonSerializer.SerializeToUtf8Bytes(forged, TrustJson.Default.SignatureFile), "trusted", null, "x"));
        Assert.Equal(ErrorCode.TrustSignatureInvalid, e.Code);
    }

    [Fact]
    public void ExpiredCertificatesAreRefusedByPublisherAndClient()
    {
        var shortKey = _w.Dir.Sub("short.key");
        _w.NewPublishingKey(shortKey, validFor: TimeSpan.FromDays(30));
        var m = Sample();
        var bytes = CairnJson.Serialize(m, CoreJson.Default.Manifest);
        byte[] sig;
        using (var signer = TrustWorld.Signer(shortKey)) sig = signer.Sign(bytes, m);
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow + TimeSpan.FromDays(31));
        using (var late = TrustWorld.Signer(shortKey, time))
        {
            Assert.Equal(ErrorCode.TrustCertificateExpired, Assert.Throws<CairnException>(() => late.Sign(bytes, m)).Code);
        }

        // An older revision asked for by number was signed while the key was valid: still accepted.
        var verifier = Verifier(time);
        Assert.Equal(5, verifier.CheckEnvelope(sig, "trusted", 5, "r").Revision);
        // As the head it has expired (the signature's 7 days lapsed first).
        Assert.Equal(ErrorCode.TrustManifestExpired, Assert.Throws<CairnException>(() => verifier.CheckEnvelope(sig, "trusted", null, "h")).Code);
    }

    [Fact]
    public void AKeyCertifiedForOtherRepositoriesIsRefused()
    {
        using var root = Keys.ReadPrivate(_w.RootKey, KeyKind.Root);
        using var key = Keys.Generate(KeyKind.Publishing);
        var cert = Keys.Certify(root, key.Public, "alpha-only", DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1), ["alpha"]);
        var path = _w.Dir.Sub("alpha.key");
        Keys.WritePrivate(key, path, cert, root.Public);
        var m = Sample("beta");
        using var signer = TrustWorld.Signer(path);
        var e = Assert.Throws<CairnException>(() => Verifier().CheckEnvelope(signer.Sign(CairnJson.Serialize(m, CoreJson.Default.Manifest), m), "beta", null, "x"));
        Assert.Equal(ErrorCode.TrustWrongRepository, e.Code);
    }

    [Fact]
    public void RevocationListsOnlyGrowAndMustBeRootSigned()
    {
        using var root = Keys.ReadPrivate(_w.RootKey, KeyKind.Root);
        using var other = Keys.Generate(KeyKind.Root);
        var first = Keys.Revoke(root, null, ["ed25519:" + new string('a', 64)], "test", DateTimeOffset.UtcNow);
        var list = first.Read(TrustJson.Default.RevocationList, "l");
        var second = Keys.Revoke(root, list, ["ed25519:" + new string('b', 64)], null, DateTimeOffset.UtcNow).Read(TrustJson.Default.RevocationList, "l");
        Assert.Equal(2, second.Serial);
        Assert.Equal(2, second.Revoked.Count);
        var forged = Keys.Revoke(other, list, [], null, DateTimeOffset.UtcNow);
        Assert.Null(Keys.ReadRevocations(JsonSerializer.SerializeToUtf8Bytes(forged, TrustJson.Default.Envelope), root.Public));
    }
}

/// <summary>Publishing side of a signed directory repository.</summary>
public sealed class PublisherTests : IDisposable
{
    private readonly TrustWorld _w = new();

    public void Dispose() => _w.Dispose();

    [Fact]
    public async Task ASignedRepositoryRefusesAnUnsignedCommit()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        await using var open = await Cairn.Repository.FileSystem.DirectoryRepository.OpenAsync(repo, TimeProvider.System, null, TimeSpan.FromSeconds(10), default);
        var src = _w.Dir.Sub("src2");
        Directory.CreateDirectory(src);
        File.WriteAllText(Path.Combine(src, "f"), "x");
        var e = await Assert.ThrowsAsync<CairnException>(() => open.PublishDirectoryAsync(new ProductRef("x", "1"), src, new Cairn.Repository.PublishOptions { PublishedBy = "t" }, null, default));
        Assert.Equal(ErrorCode.Usage, e.Code);
        Assert.False(File.Exists(Path.Combine(repo, TrustWorld.RevisionFile(3))));
    }
}
