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

        var bytes = await ReadAsync(repository, entry, where, ct).ConfigureAwait(false);
        var head = await repository.HeadAsync(ct).ConfigureAwait(false);
        var catalog = await repository.CatalogAsync(head, ct).ConfigureAwait(false);
        var dependencies = commit.Dependencies.Select(id => catalog.Find(commit.Platform, ProductRef.Parse(id)) is { } d
            ? new ProductInput(d.PathInRepository, d.Root)
            : new ProductInput($"{commit.Platform}/{id}", default)).ToList();
        var expected = new ProvenanceExpectation(productPath, commit.Root.Digest, dependencies,
            catalog.Products.ToDictionary(p => p.PathInRepository, p => p.Root, StringComparer.Ordinal));
        new ProvenanceVerifier(ProvenancePolicy.OneBuilder(site.Name, key)) { RequireEverySigned = true }.Verify(bytes, expected, where);
    }

    /// <summary>
    /// A confirmation that reproduced the published root adds the confirming site's statements (already checked by
    /// <see cref="CheckAsync"/>) to the product's bundle, so clients can require K distinct sites (docs/format/provenance.md §5).
    /// </summary>
    public static async Task AppendConfirmationAsync(ICoordinationStore store, WritableRepository repository, SiteIdentity identity, ProductCommit commit,
        IReadOnlyList<(string Path, TreeEntry Entry)> extras, ProductRecord published, CancellationToken ct)
    {
        if (published.Root != commit.Root.Digest || commit.Attestations is not { } path) return;
        if ((await store.GetSiteAsync(identity.Site, ct).ConfigureAwait(false))?.PublicKey is null) return;
        var entry = extras.FirstOrDefault(e => e.Path == path).Entry;
        if (entry is null) return;
        var bytes = await ReadAsync(repository, entry, $"site {identity.Site}'s confirmation of {published.PathInRepository}", ct).ConfigureAwait(false);
        await using var session = await repository.BeginPublishAsync(ct).ConfigureAwait(false);
        await session.AppendAttestationsAsync(published.Platform, published.Ref, published.Root, published.Attestations ?? path, bytes, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// With site keys required, stable needs <paramref name="required"/> distinct registered sites whose statements in
    /// the product's bundle verify for its published root and say PASSED; without, the coherence decision stands alone.
    /// </summary>
    public static async Task<bool> EnoughForStableAsync(ICoordinationStore store, WritableRepository repository, string productPath, int required, bool requireSiteKeys, CancellationToken ct)
    {
        if (!requireSiteKeys) return true;
        var sites = (await store.ListSitesAsync(ct).ConfigureAwait(false)).Where(s => s.PublicKey is not null).ToList();
        if (sites.Count == 0) return false;
        var head = await repository.HeadAsync(ct).ConfigureAwait(false);
        var catalog = await repository.CatalogAsync(head, ct).ConfigureAwait(false);
        var record = catalog.Products.FirstOrDefault(p => p.PathInRepository == productPath);
        if (record is null) return false;
        var policy = new ProvenancePolicy(1, [.. sites.Select(s => new TrustedBuilder(s.Name, s.PublicKey!))], Math.Max(1, required));
        try
        {
            await ProductProvenance.VerifyAsync(repository, head, catalog, record, new ProvenanceVerifier(policy), ct).ConfigureAwait(false);
            return true;
        }
        catch (CairnException e) when (e.Code is >= ErrorCode.ProvenanceMissing and < (ErrorCode)1250)
        {
            return false;
        }
    }

    private static async Task<byte[]> ReadAsync(WritableRepository repository, TreeEntry entry, string where, CancellationToken ct)
    {
        if (!entry.IsFile || entry.Size > AttestationBundle.MaxBytes) throw new CairnException(ErrorCode.ProvenanceMalformed, $"{where}: not a file of at most {AttestationBundle.MaxBytes} bytes");
        await repository.Objects.RefreshAsync(ct).ConfigureAwait(false);
        using var bytes = new MemoryStream((int)entry.Size);
        await repository.Trees.CopyContentAsync(entry, bytes, ct).ConfigureAwait(false);
        return bytes.ToArray();
    }
}
