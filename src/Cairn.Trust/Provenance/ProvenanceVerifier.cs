using System.Text.Json;
using Cairn.Core;
using NSec.Cryptography;

namespace Cairn.Trust.Provenance;

/// <summary>A builder whose statements are trusted: its id (a full builder URI or a site name) and its Ed25519 public key (base64).</summary>
public sealed record TrustedBuilder(string Id, string PublicKey);

/// <summary>
/// Which builders a verifier trusts and how many must agree (docs/format/provenance.md §6). The policy file is this
/// record as JSON: <c>{"format":1,"builders":[{"id":"site-a","publicKey":"BASE64"}],"minimumBuilders":1}</c>.
/// </summary>
public sealed record ProvenancePolicy(int Format, IReadOnlyList<TrustedBuilder> Builders, int MinimumBuilders = 1)
{
    public static ProvenancePolicy Load(string path)
    {
        ProvenancePolicy? policy;
        try
        {
            policy = JsonSerializer.Deserialize(File.ReadAllBytes(path), ProvenanceJson.Default.ProvenancePolicy);
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw Invalid(path, e.Message);
        }

        if (policy?.Builders is null || policy.Format != 1) throw Invalid(path, "not a format 1 provenance policy");
        foreach (var b in policy.Builders)
        {
            if (string.IsNullOrEmpty(b.Id) || Keys.DecodePublic(b.PublicKey) is null) throw Invalid(path, $"builder '{b.Id}' needs an id and a base64 Ed25519 publicKey");
        }

        if (policy.MinimumBuilders < 1) throw Invalid(path, "minimumBuilders must be at least 1");
        return policy;
    }

    /// <summary>A policy trusting one builder (a local build's own key; a gateway checking one site).</summary>
    public static ProvenancePolicy OneBuilder(string builderId, PublicKey key) => new(1, [new TrustedBuilder(builderId, Keys.Encode(key))]);

    private static CairnException Invalid(string path, string why) =>
        new(ErrorCode.ProvenancePolicyInvalid, $"cannot use provenance policy '{path}': {why}",
            "write {\"format\":1,\"builders\":[{\"id\":\"SITE\",\"publicKey\":\"BASE64\"}]} (docs/format/provenance.md §6)");

    /// <summary>Builder id "*": any builder id signed by this key (a host trusting its own builder key, whatever --publisher said).</summary>
    public const string AnyBuilder = "*";

    internal static string NormalizeId(string id) => id == AnyBuilder || id.StartsWith("https://", StringComparison.Ordinal) ? id : InToto.BuilderId(id);
}

/// <summary>What the verifier compares the statements with: the product as published and the products it depends on.</summary>
/// <param name="Subject">PLATFORM/NAME/VERSION.</param>
/// <param name="Root">The root of the product as it is materialized (its tree entry in the revision).</param>
/// <param name="Dependencies">The catalog's dependency products of this product, with their published roots.</param>
/// <param name="PublishedRoots">Every product of the revision by PLATFORM/NAME/VERSION (transitive dependencies, the build environment).</param>
public sealed record ProvenanceExpectation(string Subject, Digest Root, IReadOnlyList<ProductInput> Dependencies, IReadOnlyDictionary<string, Digest> PublishedRoots);

/// <param name="Builders">The trusted builders whose signed statements say PASSED for this subject and root.</param>
public sealed record VerifiedProvenance(string Subject, Digest Root, IReadOnlyList<string> Builders, int Statements);

/// <summary>
/// Checks a product's bundle (docs/format/provenance.md §6): every envelope signed by a trusted builder verifies,
/// names the product with the root actually published, comes with a provenance whose resolved dependencies are the
/// published dependency products, and a PASSED test result; at least <see cref="ProvenancePolicy.MinimumBuilders"/>
/// distinct trusted builders say so. Statements by builders outside the policy are ignored (a confirmation by a
/// site this client does not trust proves nothing, and harms nothing).
/// </summary>
public sealed class ProvenanceVerifier
{
    private readonly ProvenancePolicy _policy;
    private readonly List<(string Id, PublicKey Key, string KeyId)> _builders;

    public ProvenanceVerifier(ProvenancePolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        _policy = policy;
        _builders = [.. policy.Builders.Select(b =>
        {
            var key = Keys.DecodePublic(b.PublicKey) ?? throw new CairnException(ErrorCode.ProvenancePolicyInvalid, $"builder '{b.Id}': not a base64 Ed25519 public key");
            return (ProvenancePolicy.NormalizeId(b.Id), key, Keys.Fingerprint(key));
        })];
    }

    /// <summary>
    /// When true, every statement must be signed by a trusted builder (the gateway accepting one site's bundle: a
    /// site may not carry statements it did not sign).
    /// </summary>
    public bool RequireEverySigned { get; init; }

    public VerifiedProvenance Verify(ReadOnlySpan<byte> bundle, ProvenanceExpectation expected, string where)
    {
        ArgumentNullException.ThrowIfNull(expected);
        var envelopes = AttestationBundle.Read(bundle, where);
        if (envelopes.Count == 0)
        {
            throw new CairnException(ErrorCode.ProvenanceMissing, $"{expected.Subject}: '{where}' holds no statement", "rebuild the product with this cairn to attest it");
        }

        var passed = new HashSet<string>(StringComparer.Ordinal);
        var provenanceBy = new HashSet<string>(StringComparer.Ordinal);
        var untrusted = new List<string>();
        for (var i = 0; i < envelopes.Count; i++)
        {
            var envelope = envelopes[i];
            var at = $"{where}, statement {i + 1}";
            if (envelope.PayloadType != Dsse.InTotoPayloadType) throw Dsse.Malformed(at, $"payload type '{envelope.PayloadType}', not {Dsse.InTotoPayloadType}");
            var signer = Signer(envelope, at, expected.Subject);
            if (signer is null)
            {
                untrusted.AddRange(envelope.Signatures.Select(s => s.KeyId));
                continue;
            }

            var header = AttestationBundle.ReadStatement(envelope, ProvenanceJson.Default.StatementHeader, at);
            CheckSubject(header, expected, at);
            if (header.PredicateType == InToto.SlsaProvenanceType)
            {
                var provenance = AttestationBundle.ReadStatement(envelope, ProvenanceJson.Default.ProvenanceStatement, at).Predicate
                    ?? throw Dsse.Malformed(at, "no predicate");
                CheckProvenance(provenance, signer, expected, at);
                provenanceBy.Add(signer);
            }
            else if (header.PredicateType == InToto.TestResultType)
            {
                var result = AttestationBundle.ReadStatement(envelope, ProvenanceJson.Default.TestResultStatement, at).Predicate
                    ?? throw Dsse.Malformed(at, "no predicate");
                if (result.Result != InToto.Passed || result.FailedTests is { Count: > 0 })
                {
                    throw new CairnException(ErrorCode.ProvenanceNotPassed,
                        $"{expected.Subject}: {signer} signed the test result {result.Result} ({result.FailedTests?.Count ?? 0} failed: {string.Join(", ", (result.FailedTests ?? []).Take(5))}) ({at})",
                        "do not use this product: a trusted builder saw its tests fail; rebuild it and find out why");
                }

                passed.Add(signer);
            }
        }

        var agreeing = passed.Intersect(provenanceBy, StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (agreeing.Count == 0 && passed.Count == 0 && provenanceBy.Count == 0)
        {
            throw new CairnException(ErrorCode.ProvenanceBuilderUntrusted,
                $"{expected.Subject}: no statement in '{where}' is signed by a builder the policy trusts (signed by {string.Join(", ", untrusted.Distinct())})",
                "add the builder's id and public key to the policy if you trust it (cairn attest show prints who signed)");
        }

        if (agreeing.Count < _policy.MinimumBuilders)
        {
            throw new CairnException(ErrorCode.ProvenanceNotPassed,
                $"{expected.Subject}: {agreeing.Count} trusted builder(s) attest a build and a PASSED test result ({string.Join(", ", agreeing)}); the policy needs {_policy.MinimumBuilders}",
                "wait for more sites to confirm the product, or lower minimumBuilders in the policy");
        }

        return new VerifiedProvenance(expected.Subject, expected.Root, agreeing, envelopes.Count);
    }

    /// <summary>The trusted builder whose key signed the envelope; null when no trusted key id is named at all.</summary>
    private string? Signer(DsseEnvelope envelope, string at, string subject)
    {
        foreach (var (id, key, keyId) in _builders)
        {
            if (Dsse.IsSignedBy(envelope, key)) return id == ProvenancePolicy.AnyBuilder ? keyId : id;
            if (envelope.Signatures.Any(s => s.KeyId == keyId))
            {
                throw new CairnException(ErrorCode.ProvenanceSignatureInvalid,
                    $"{subject}: {at} names the key of trusted builder {id} ({keyId}) but its signature does not verify",
                    "the statement was altered after it was signed (or the signature is damaged): do not use this product; rebuild it");
            }
        }

        if (RequireEverySigned)
        {
            throw new CairnException(ErrorCode.ProvenanceBuilderUntrusted,
                $"{subject}: {at} is signed by {string.Join(", ", envelope.Signatures.Select(s => s.KeyId))}, not by {string.Join(", ", _builders.Select(b => $"{b.Id} ({b.KeyId})"))}",
                "sign the statements with the key registered for this site (cairn gateway site add … --key FILE.pub)");
        }

        return null;
    }

    private static void CheckSubject(StatementHeader header, ProvenanceExpectation expected, string at)
    {
        if (header.Type != InToto.StatementType) throw Dsse.Malformed(at, $"statement type '{header.Type}', not {InToto.StatementType}");
        var subject = header.Subject?.FirstOrDefault(s => s.Name == expected.Subject);
        var digest = subject?.Digest?.GetValueOrDefault(InToto.TreeDigest);
        if (header.Subject is not { Count: 1 } || subject is null || digest != expected.Root.ToString())
        {
            var named = string.Join(", ", (header.Subject ?? []).Select(s => $"{s.Name} {s.Digest?.GetValueOrDefault(InToto.TreeDigest) ?? "(no cairnTree digest)"}"));
            throw new CairnException(ErrorCode.ProvenanceSubjectMismatch,
                $"{at} attests {named}, not {expected.Subject} with root {expected.Root}",
                "the product served is not the one that was built and tested (or the statement belongs to another product): do not use it");
        }
    }

    private static void CheckProvenance(SlsaProvenance provenance, string signer, ProvenanceExpectation expected, string at)
    {
        if (provenance.BuildDefinition?.BuildType != InToto.BuildType) throw Dsse.Malformed(at, $"buildType '{provenance.BuildDefinition?.BuildType}', not {InToto.BuildType}");
        if (provenance.RunDetails?.Builder?.Id != signer && !Keys.IsFingerprint(signer))
        {
            throw new CairnException(ErrorCode.ProvenanceBuilderUntrusted,
                $"{expected.Subject}: {at} is signed by {signer}'s key but claims builder '{provenance.RunDetails?.Builder?.Id}'",
                "one builder's key may only speak for that builder: do not use this product");
        }

        var resolved = provenance.BuildDefinition.ResolvedDependencies ?? [];
        var products = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var d in resolved)
        {
            var uri = d.Uri ?? "";
            var path = uri.StartsWith(InToto.ProductUri, StringComparison.Ordinal) ? uri[InToto.ProductUri.Length..]
                : uri.StartsWith(InToto.EnvironmentUri, StringComparison.Ordinal) ? uri[InToto.EnvironmentUri.Length..] : null;
            if (path is not null) products[path] = d.Digest?.GetValueOrDefault(InToto.TreeDigest);
        }

        foreach (var (path, digest) in products)
        {
            if (!expected.PublishedRoots.TryGetValue(path, out var published) || digest != published.ToString())
            {
                throw DependencyMismatch(expected.Subject, at,
                    $"was built with {path} {digest}, but the repository has {(expected.PublishedRoots.ContainsKey(path) ? $"root {published}" : "no such product")}");
            }
        }

        foreach (var dep in expected.Dependencies)
        {
            if (!products.TryGetValue(dep.Path, out var digest) || digest != dep.Root.ToString())
            {
                throw DependencyMismatch(expected.Subject, at, $"does not name the published dependency {dep.Path} {dep.Root}");
            }
        }
    }

    private static CairnException DependencyMismatch(string subject, string at, string what) =>
        new(ErrorCode.ProvenanceDependencyMismatch, $"{subject}: the provenance ({at}) {what}",
            "the product was built against other dependency products than those published beside it: rebuild it (cairn build) so its build and its dependencies match");
}
