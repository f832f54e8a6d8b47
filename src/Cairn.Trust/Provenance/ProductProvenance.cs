using System.Runtime.CompilerServices;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Trust.Provenance;

/// <summary>
/// A product's attestations as stored in a revision (the file its catalog record names), for cairn attest, cairn
/// verify --provenance, cairn export and the dashboard. Reading goes through the repository libraries only.
/// </summary>
public static class ProductProvenance
{
    /// <summary>The bundle's bytes; null when the product has none (published, not built, or built before attestations).</summary>
    public static async Task<byte[]?> ReadAsync(ProductRepository repository, Manifest manifest, ProductRecord record, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(repository);
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(record);
        if (record.Attestations is not { } path) return null;
        var entry = await repository.Trees.LookupAsync(manifest.Root, path, ct).ConfigureAwait(false);
        if (entry is not { IsFile: true })
        {
            throw new CairnException(ErrorCode.ProvenanceMissing, $"{record.PathInRepository}: its attestations {path} are missing from revision {manifest.Revision}",
                "the repository is damaged: run 'cairn verify', restore from a mirror, or rebuild the product");
        }

        if (entry.Size > AttestationBundle.MaxBytes) throw Dsse.Malformed(path, $"{entry.Size} bytes, above the limit of {AttestationBundle.MaxBytes}");
        using var buffer = new MemoryStream((int)entry.Size);
        await repository.Trees.CopyContentAsync(entry, buffer, ct).ConfigureAwait(false);
        return buffer.ToArray();
    }

    /// <summary>The statements of a product as people read them (unverified), or empty when it has none.</summary>
    public static async Task<IReadOnlyList<AttestationView>> DescribeAsync(ProductRepository repository, Manifest manifest, ProductRecord record, CancellationToken ct)
    {
        var bytes = await ReadAsync(repository, manifest, record, ct).ConfigureAwait(false);
        return bytes is null ? [] : AttestationBundle.Describe(bytes, record.Attestations!);
    }

    /// <summary>
    /// What the product's statements must match in <paramref name="manifest"/>: the root of the tree actually at
    /// PLATFORM/NAME/VERSION (what materialize, mount and export deliver), and the published dependency products.
    /// </summary>
    public static async Task<ProvenanceExpectation> ExpectationAsync(ProductRepository repository, Manifest manifest, Catalog catalog, ProductRecord record, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(repository);
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(record);
        var entry = await repository.Trees.LookupAsync(manifest.Root, record.PathInRepository, ct).ConfigureAwait(false);
        var index = Indexes.GetValue(catalog, CatalogIndex.Of);
        var dependencies = new List<ProductInput>();
        foreach (var id in record.Dependencies)
        {
            var dep = ProductRef.Parse(id);
            if (index.Records.TryGetValue((record.Platform, dep.Name, dep.Version), out var d)) dependencies.Add(new ProductInput(d.PathInRepository, d.Root));
            else dependencies.Add(new ProductInput($"{record.Platform}/{id}", default));
        }

        return new ProvenanceExpectation(record.PathInRepository, entry?.Digest ?? default, dependencies, index.Roots);
    }

    // Verifying every product of a revision asks for the same catalog's lookups once per product: built once per
    // catalog (catalogs are immutable), not once per product, which made verifying n products O(n²).
    private static readonly ConditionalWeakTable<Catalog, CatalogIndex> Indexes = new();

    private sealed record CatalogIndex(IReadOnlyDictionary<string, Digest> Roots, Dictionary<(string, string, string), ProductRecord> Records)
    {
        public static CatalogIndex Of(Catalog catalog)
        {
            var records = new Dictionary<(string, string, string), ProductRecord>();
            foreach (var p in catalog.Products) records[(p.Platform, p.Name, p.Version)] = p;
            return new CatalogIndex(catalog.Products.ToDictionary(p => p.PathInRepository, p => p.Root, StringComparer.Ordinal), records);
        }
    }

    /// <summary>
    /// Verifies every product of <paramref name="catalog"/>, on all cores (each product's check is independent reads
    /// and signature checks); results in catalog order, a product's refusal (CAIRN-E12xx) in its slot.
    /// </summary>
    public static async Task<IReadOnlyList<ProvenanceCheckResult>> VerifyAllAsync(ProductRepository repository, Manifest manifest, Catalog catalog,
        ProvenanceVerifier verifier, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        var results = new ProvenanceCheckResult[catalog.Products.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, results.Length), ct, async (i, token) =>
        {
            var record = catalog.Products[i];
            try
            {
                results[i] = new ProvenanceCheckResult(record, await VerifyAsync(repository, manifest, catalog, record, verifier, token).ConfigureAwait(false), null);
            }
            catch (CairnException e) when (e.Code is >= ErrorCode.ProvenanceMissing and < (ErrorCode)1250 && e.Code != ErrorCode.ProvenancePolicyInvalid)
            {
                results[i] = new ProvenanceCheckResult(record, null, e);
            }
        }).ConfigureAwait(false);
        return results;
    }

    /// <summary>Verifies one product of a revision against <paramref name="verifier"/>'s policy (throws a CAIRN-E12xx refusal).</summary>
    public static async Task<VerifiedProvenance> VerifyAsync(ProductRepository repository, Manifest manifest, Catalog catalog, ProductRecord record,
        ProvenanceVerifier verifier, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(verifier);
        ArgumentNullException.ThrowIfNull(record);
        var bytes = await ReadAsync(repository, manifest, record, ct).ConfigureAwait(false)
            ?? throw new CairnException(ErrorCode.ProvenanceMissing, $"{record.PathInRepository} has no attestations (published by {record.PublishedBy} without cairn build, or before attestations existed)",
                "rebuild it with cairn build so it is attested, or leave it out of what you verify");
        var expected = await ExpectationAsync(repository, manifest, catalog, record, ct).ConfigureAwait(false);
        if (expected.Root != record.Root)
        {
            throw new CairnException(ErrorCode.ProvenanceSubjectMismatch,
                $"{record.PathInRepository}: the catalog says root {record.Root}, but revision {manifest.Revision}'s tree has {(expected.Root == default ? "nothing" : expected.Root.ToString())} there",
                "the revision is inconsistent: run 'cairn verify' and do not use this product");
        }

        return verifier.Verify(bytes, expected, record.Attestations!);
    }
}

/// <summary>One product's provenance check: <see cref="Verified"/> when it passed, else the refusal.</summary>
public sealed record ProvenanceCheckResult(ProductRecord Record, VerifiedProvenance? Verified, CairnException? Refusal);
