using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Gateway.Tests.Infrastructure;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Trust;
using Cairn.Trust.Provenance;

namespace Cairn.Gateway.Tests;

/// <summary>
/// The gateway checks a site's signed statements before it commits (docs/security.md, "Provenance"): with a real
/// repository directory and coordination database, sites registered with their own Ed25519 keys.
/// </summary>
public sealed class SiteAttestationTests : IAsyncLifetime
{
    private const string Platform = InProcessGateway.Platform;
    private const string AttestationsPath = "logs/linux-x86_64/zlib/1.3/attestations.intoto.jsonl";
    private readonly KeyPair _keyA = Keys.Generate(KeyKind.Builder);
    private readonly KeyPair _keyB = Keys.Generate(KeyKind.Builder);
    private InProcessGateway _gw = null!;

    public async Task InitializeAsync() => _gw = await InProcessGateway.StartAsync("cairn-gw-attest", DatabaseKind.Sqlite, TimeProvider.System);

    public async Task DisposeAsync()
    {
        await _gw.DisposeAsync();
        _keyA.Dispose();
        _keyB.Dispose();
    }

    private async Task<IGateway> SiteAsync(string site, KeyPair? key)
    {
        var token = await _gw.RegisterSiteAsync(site, TokenScope.Everything);
        if (key is not null)
        {
            var registered = await _gw.Store.SetSiteKeyAsync(site, Keys.Encode(key.Public), CancellationToken.None);
            Assert.Equal(Keys.Encode(key.Public), (await _gw.Store.GetSiteAsync(site, CancellationToken.None))!.PublicKey);
            Assert.Equal(registered.PublicKey, Keys.Encode(key.Public));
        }

        return await _gw.Service.AuthenticateAsync(token.Secret, CancellationToken.None);
    }

    private static BuildFacts Facts(string site) => new()
    {
        Platform = Platform, Name = "zlib", Version = "1.3", RecipePath = "zlib", RecipeDigest = Digest.Of("recipe"u8),
        DeploymentRoot = "/cvmfs/cairn", DeploymentSite = "generic", SandboxContract = 2, SeccompFilter = Digest.Of("bpf"u8), BuildKey = "k1",
        Site = site, CairnVersion = "test", InvocationId = "1", StartedOn = DateTimeOffset.UtcNow, FinishedOn = DateTimeOffset.UtcNow,
        LogPath = "logs/linux-x86_64/zlib/1.3/build.log", LogSha256 = Digest.Of("log"u8),
        CheckScript = "check.sh", CheckScriptSha256 = Digest.Of("check"u8), PassedTests = ["zlib check"],
    };

    /// <summary>Claims k1 for zlib/1.3 (a refused commit leaves the claim live, so it is taken once per test).</summary>
    private static async Task<long> ClaimAsync(IGateway gateway, JobOfferKind expected = JobOfferKind.Build)
    {
        var offer = await gateway.RequestJobAsync(SiteWorkspace.Job("k1", "zlib", "1.3"), CancellationToken.None);
        Assert.Equal(expected, offer.Kind);
        return offer.Claim!.FencingToken;
    }

    /// <summary>Uploads the tree and the given bundle (if any) and commits them under the claim.</summary>
    private static async Task<CommitOutcome> CommitAsync(IGateway gateway, SiteWorkspace site, long fencingToken, Func<Digest, byte[]>? bundle,
        CommitMode mode = CommitMode.Publish, string? content = null)
    {
        var root = await site.TreeAsync(new Dictionary<string, string> { ["lib/libz.so"] = content ?? "zlib " + site.Site });
        var extras = new List<CommittedExtra>();
        if (bundle is not null)
        {
            var entry = await site.FileAsync("attestations.intoto.jsonl", System.Text.Encoding.UTF8.GetString(bundle(root.Digest)));
            extras.Add(new CommittedExtra(AttestationsPath, entry));
        }

        await site.UploadAsync(gateway, [root, .. extras.Select(e => e.Entry)]);
        var commit = site.Commit("k1", fencingToken, "zlib", "1.3", root, mode, extras: extras) with { Attestations = bundle is null ? null : AttestationsPath };
        return await gateway.CommitAsync(commit, CancellationToken.None);
    }

    private async Task<long> HeadAsync() => (await _gw.Repository.HeadAsync(CancellationToken.None)).Revision;

    [Fact]
    public async Task ASiteEnvelopeSignedByAnotherSitesKeyIsRefusedAndTheSitesOwnIsPublished()
    {
        var gateway = await SiteAsync("site-a", _keyA);
        await SiteAsync("site-b", _keyB);
        await using var site = new SiteWorkspace("site-a");
        var before = await HeadAsync();
        var token = await ClaimAsync(gateway);

        // Signed with site-b's key (a stolen key, or a gateway-side forgery with another registered key): refused.
        var forged = await Assert.ThrowsAsync<CairnException>(() => CommitAsync(gateway, site, token, root => AttestationBundle.Write(Attester.Sign(Facts("site-a"), root, _keyB))));
        Assert.Equal(ErrorCode.ProvenanceBuilderUntrusted, forged.Code);
        Assert.Contains("site-a", forged.Message, StringComparison.Ordinal);

        // Signed by site-a, but about another tree than the one uploaded.
        var other = await Assert.ThrowsAsync<CairnException>(() => CommitAsync(gateway, site, token, _ => AttestationBundle.Write(Attester.Sign(Facts("site-a"), Digest.Of("x"u8), _keyA))));
        Assert.Equal(ErrorCode.ProvenanceSubjectMismatch, other.Code);

        // No statements at all from a site with a registered key.
        Assert.Equal(ErrorCode.ProvenanceMissing, (await Assert.ThrowsAsync<CairnException>(() => CommitAsync(gateway, site, token, null))).Code);
        Assert.Equal(before, await HeadAsync());

        var outcome = await CommitAsync(gateway, site, token, root => AttestationBundle.Write(Attester.Sign(Facts("site-a"), root, _keyA)));
        Assert.True(outcome.RepositoryWritten);
        var head = await _gw.Repository.HeadAsync(CancellationToken.None);
        var catalog = await _gw.Repository.CatalogAsync(head, CancellationToken.None);
        var record = catalog.Find(Platform, new ProductRef("zlib", "1.3"))!;
        Assert.Equal(AttestationsPath, record.Attestations);

        // Stored as a repository file the catalog names: a client trusting site-a's key verifies it; trusting only site-b's, it refuses.
        var verified = await ProductProvenance.VerifyAsync(_gw.Repository, head, catalog, record,
            new ProvenanceVerifier(ProvenancePolicy.OneBuilder("site-a", _keyA.Public)), CancellationToken.None);
        Assert.Equal([InToto.BuilderId("site-a")], verified.Builders);
        var untrusted = await Assert.ThrowsAsync<CairnException>(() => ProductProvenance.VerifyAsync(_gw.Repository, head, catalog, record,
            new ProvenanceVerifier(ProvenancePolicy.OneBuilder("site-b", _keyB.Public)), CancellationToken.None));
        Assert.Equal(ErrorCode.ProvenanceBuilderUntrusted, untrusted.Code);
    }

    [Fact]
    public async Task AKeylessSiteIsRefusedOnlyWhenTheGatewayRequiresKeys()
    {
        await using var strict = new GatewayService(_gw.Store, _gw.Repository, new GatewayOptions { RequireSiteKeys = true });
        await _gw.Store.RegisterSiteAsync("site-c", new SiteCapabilities(Platform, null, []), CancellationToken.None);
        var token = await _gw.Store.IssueTokenAsync("site-c", TokenScope.Everything, CancellationToken.None);
        await using var site = new SiteWorkspace("site-c");
        var before = await HeadAsync();
        var strictGateway = strict.For(await _gw.Store.AuthenticateAsync(token.Secret, CancellationToken.None));
        var claim = await ClaimAsync(strictGateway);
        var e = await Assert.ThrowsAsync<CairnException>(() => CommitAsync(strictGateway, site, claim, null));
        Assert.Equal(ErrorCode.ProvenanceSiteKeyMissing, e.Code);
        Assert.Equal(before, await HeadAsync());

        var lenient = await _gw.Service.AuthenticateAsync(token.Secret, CancellationToken.None);
        Assert.True((await CommitAsync(lenient, site, claim, null)).RepositoryWritten);
    }

    [Fact]
    public async Task StableNeedsSignedPassedStatementsFromKDistinctRegisteredSites()
    {
        await using var strict = new GatewayService(_gw.Store, _gw.Repository, new GatewayOptions { RequireSiteKeys = true, LeaseWait = TimeSpan.FromSeconds(60) });
        async Task<IGateway> Strict(string name, KeyPair key)
        {
            await _gw.Store.RegisterSiteAsync(name, new SiteCapabilities(Platform, null, []), CancellationToken.None);
            await _gw.Store.SetSiteKeyAsync(name, Keys.Encode(key.Public), CancellationToken.None);
            var token = await _gw.Store.IssueTokenAsync(name, TokenScope.Everything, CancellationToken.None);
            return strict.For(await _gw.Store.AuthenticateAsync(token.Secret, CancellationToken.None));
        }

        var a = await Strict("site-a", _keyA);
        var b = await Strict("site-b", _keyB);
        await using var siteA = new SiteWorkspace("site-a");
        await using var siteB = new SiteWorkspace("site-b");
        var first = await CommitAsync(a, siteA, await ClaimAsync(a), root => AttestationBundle.Write(Attester.Sign(Facts("site-a"), root, _keyA)), content: "same");
        Assert.True(first.RepositoryWritten);
        Assert.Equal([ChannelPolicy.Testing], first.Promotions);

        // site-b confirms the same tree, but its statements carry site-a's signature (one site counted twice): refused, not promoted.
        var claimB = await ClaimAsync(b, JobOfferKind.Confirm);
        var twice = await Assert.ThrowsAsync<CairnException>(() => CommitAsync(b, siteB, claimB,
            root => AttestationBundle.Write(Attester.Sign(Facts("site-a"), root, _keyA)), CommitMode.Confirm, "same"));
        Assert.Equal(ErrorCode.ProvenanceBuilderUntrusted, twice.Code);
        Assert.DoesNotContain(await _gw.Store.GetPromotionsAsync("k1", CancellationToken.None), p => p.Channel == ChannelPolicy.Stable);

        // Its own statements: appended to the product's bundle in a new revision, and now two distinct sites attest it.
        var before = await HeadAsync();
        var second = await CommitAsync(b, siteB, claimB, root => AttestationBundle.Write(Attester.Sign(Facts("site-b"), root, _keyB)), CommitMode.Confirm, "same");
        Assert.Equal(CoherenceStatus.Agreement, second.Coherence);
        Assert.Contains(ChannelPolicy.Stable, second.Promotions);
        Assert.Equal(before + 1, await HeadAsync());

        var head = await _gw.Repository.HeadAsync(CancellationToken.None);
        var catalog = await _gw.Repository.CatalogAsync(head, CancellationToken.None);
        var record = catalog.Find(Platform, new ProductRef("zlib", "1.3"))!;
        Assert.Equal(4, (await ProductProvenance.DescribeAsync(_gw.Repository, head, record, CancellationToken.None)).Count);
        var both = new ProvenancePolicy(1, [new TrustedBuilder("site-a", Keys.Encode(_keyA.Public)), new TrustedBuilder("site-b", Keys.Encode(_keyB.Public))], MinimumBuilders: 2);
        var verified = await ProductProvenance.VerifyAsync(_gw.Repository, head, catalog, record, new ProvenanceVerifier(both), CancellationToken.None);
        Assert.Equal([InToto.BuilderId("site-a"), InToto.BuilderId("site-b")], verified.Builders);
    }
}
