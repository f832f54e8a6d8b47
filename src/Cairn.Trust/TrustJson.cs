using System.Text.Json.Serialization;

namespace Cairn.Trust;

/// <summary>
/// The documents of signed repositories (keys, signature files, statements, revocations, trust state). Same settings as <see cref="Cairn.Core.CoreJson"/>: signatures cover the serialized statements,
/// so names, order and null handling must never change.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(PrivateKeyFile))]
[JsonSerializable(typeof(PublicKeyFile))]
[JsonSerializable(typeof(Envelope))]
[JsonSerializable(typeof(SignatureFile))]
[JsonSerializable(typeof(PublishingCertificate))]
[JsonSerializable(typeof(ManifestStatement))]
[JsonSerializable(typeof(RevocationList))]
[JsonSerializable(typeof(TrustState))]
public sealed partial class TrustJson : JsonSerializerContext;
