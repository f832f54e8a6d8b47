using System.Text.Json.Serialization;

namespace Cairn.Trust;

/// <summary>
/// The documents of signed repositories (keys, signature files, statements, revocations, trust state) and what
/// cairn key prints. Same settings as <see cref="Cairn.Core.CoreJson"/>: signatures cover the serialized statements,
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
[JsonSerializable(typeof(KeyGenerated))]
[JsonSerializable(typeof(KeyCertified))]
[JsonSerializable(typeof(KeysRevoked))]
[JsonSerializable(typeof(KeyResigned))]
[JsonSerializable(typeof(KeyShown))]
public sealed partial class TrustJson : JsonSerializerContext;

// What cairn key prints with --json: user-visible, keep names and order.

public sealed record KeyGenerated(KeyKind Kind, string KeyId, string PrivateKey, string PublicKey);

public sealed record KeyCertified(string KeyId, string Root, DateTimeOffset Expires);

public sealed record KeysRevoked(string Path, long Serial, IReadOnlyList<string> Revoked);

public sealed record KeyResigned(long Revision, string KeyId);

public sealed record KeyShown(KeyKind? Kind, string KeyId, PublishingCertificate? Certificate);
