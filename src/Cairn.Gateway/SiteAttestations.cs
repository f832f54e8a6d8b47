using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Trust;
using Cairn.Trust.Provenance;

namespace Cairn.Gateway;

/// <summary>
/// The gateway's check of a site's signed statements before its commit is written (docs/security.md,
/// "Provenance"): a site with a registered key must send statements signed by that key alone, naming the product it
/// uploaded with the dependencies the repository publishes, and PASSED. The gateway holds no site key, so it cannot
/// write a site's verdict; it only refuses what a site did not sign.
/// </summary>
internal static class SiteAttestations
{
    public static async Task CheckAsync(ICoordinationStore store, WritableRepository repository, SiteIdentity identity, ProductCommit commit,
        IReadOnlyList<(string Path, TreeEntry Entry)> extras, bool requireSiteKeys, CancellationToken ct)
    {
        var productPath = $"{commit.Platform}/{commit.Product.Name}/{commit.Product.Version}";
        var site = await store.GetSiteAsync(identity.Site, ct).ConfigureAwait(false)
            ?? throw new CairnException(ErrorCode.SiteUnknown, $"site {identity.Site} is not registered with the gateway", "register it (cairn gateway site add)");
        if (site.PublicKey is null || Keys.DecodePublic(site.PublicKey) is not { } key)
        {
            if (!requireSiteKeys) return;
            throw new CairnException(ErrorCode.ProvenanceSiteKeyMissing, $"site {site.Name} has no key registered with this gateway, which requires one to accept {productPath}",
                $"register the site's public key: cairn gateway site add {site.Name} --platform {site.Capabilities.Platform} --key SITE.key.pub");
        }

        var where = $"site {site.Name}'s attestations for {productPath}";
        var entry = commit.Attestations is { } path ? extras.FirstOrDefault(e => e.Path == path).Entry : null;
        if (entry is null)
        {
            throw new CairnException(ErrorCode.ProvenanceMissing, $"site {site.Name} committed {productPath} without signed statements, though it has a registered key",
                "build with a cairn that attests its products, signing with the site's key (--signing-key SITE.key)");
        }

        if (!entry.IsFile || entry.Size > AttestationBundle.MaxBytes) throw new CairnException(ErrorCode.ProvenanceMalformed, $"{where}: not a file of at most {AttestationBundle.MaxBytes} bytes");
        await repository.Objects.RefreshAsync(ct).ConfigureAwait(false);
        using var bytes = new MemoryStream((int)entry.Size);
        await repository.Trees.CopyContentAsync(entry, bytes, ct).ConfigureAwait(false);

        var head = await repository.HeadAsync(ct).ConfigureAwait(false);
        var catalog = await repository.CatalogAsync(head, ct).ConfigureAwait(false);
        var dependencies = commit.Dependencies.Select(id => catalog.Find(commit.Platform, ProductRef.Parse(id)) is { } d
            ? new ProductInput(d.PathInRepository, d.Root)
            : new ProductInput($"{commit.Platform}/{id}", default)).ToList();
        var expected = new ProvenanceExpectation(productPath, commit.Root.Digest, dependencies,
            catalog.Products.ToDictionary(p => p.PathInRepository, p => p.Root, StringComparer.Ordinal));
        new ProvenanceVerifier(ProvenancePolicy.OneBuilder(site.Name, key)) { RequireEverySigned = true }.Verify(bytes.ToArray(), expected, where);
    }
}
