using System.Text.Json.Serialization;

namespace Cairn.Trust.Provenance;

/// <summary>
/// The provenance documents (docs/format/provenance.md). Same settings as every Cairn context; the DSSE and in-toto
/// field names that are not camelCase (<c>keyid</c>, <c>_type</c>) are spelled on the properties.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(DsseEnvelope))]
[JsonSerializable(typeof(StatementHeader))]
[JsonSerializable(typeof(ProvenanceStatement))]
[JsonSerializable(typeof(TestResultStatement))]
[JsonSerializable(typeof(ProvenancePolicy))]
[JsonSerializable(typeof(AttestationView))]
[JsonSerializable(typeof(IReadOnlyList<AttestationView>))]
public sealed partial class ProvenanceJson : JsonSerializerContext;
