using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Cairn.Core;
using NSec.Cryptography;

namespace Cairn.Trust.Provenance;

/// <summary>One DSSE signature: the signer's key id (Cairn writes the key's fingerprint) and the base64 Ed25519 signature.</summary>
public sealed record DsseSignature(
    [property: JsonPropertyName("keyid")] string KeyId,
    [property: JsonPropertyName("sig")] string Sig);

/// <summary>
/// A DSSE envelope (github.com/secure-systems-lab/dsse, envelope.md): field names and meaning are the spec's, so
/// any DSSE implementation reads it. The payload stays the exact bytes that were signed (base64).
/// </summary>
public sealed record DsseEnvelope(
    [property: JsonPropertyName("payloadType")] string PayloadType,
    [property: JsonPropertyName("payload")] string Payload,
    [property: JsonPropertyName("signatures")] IReadOnlyList<DsseSignature> Signatures);

/// <summary>Signing and checking DSSE envelopes with Ed25519 (docs/format/provenance.md §2).</summary>
public static class Dsse
{
    public const string InTotoPayloadType = "application/vnd.in-toto+json";

    /// <summary>
    /// The pre-authentication encoding DSSE v1 signs: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths
    /// as ASCII decimal byte counts (of the UTF-8 type and the raw body), no leading zeros.
    /// </summary>
    public static byte[] PreAuthEncoding(string payloadType, ReadOnlySpan<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(payloadType);
        var type = Encoding.UTF8.GetBytes(payloadType);
        var header = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"DSSEv1 {type.Length} "));
        var middle = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $" {payload.Length} "));
        var result = new byte[header.Length + type.Length + middle.Length + payload.Length];
        header.CopyTo(result, 0);
        type.CopyTo(result, header.Length);
        middle.CopyTo(result, header.Length + type.Length);
        payload.CopyTo(result.AsSpan(header.Length + type.Length + middle.Length));
        return result;
    }

    public static DsseEnvelope Sign(string payloadType, byte[] payload, KeyPair signer)
    {
        ArgumentNullException.ThrowIfNull(payload);
        ArgumentNullException.ThrowIfNull(signer);
        var sig = SignatureAlgorithm.Ed25519.Sign(signer.Private, PreAuthEncoding(payloadType, payload));
        return new DsseEnvelope(payloadType, Convert.ToBase64String(payload), [new DsseSignature(signer.KeyId, Convert.ToBase64String(sig))]);
    }

    /// <summary>True when one signature of the envelope verifies with <paramref name="key"/> (whatever key id it names).</summary>
    public static bool IsSignedBy(DsseEnvelope envelope, PublicKey key)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        var payload = Envelope.TryBase64(envelope.Payload);
        if (payload is null) return false;
        var signed = PreAuthEncoding(envelope.PayloadType, payload);
        foreach (var s in envelope.Signatures ?? [])
        {
            // Key ids are hints (the spec says so): every signature is tried, so another tool's key id format is fine.
            var sig = Envelope.TryBase64(s.Sig);
            if (sig is { Length: 64 } && SignatureAlgorithm.Ed25519.Verify(key, signed, sig)) return true;
        }

        return false;
    }

    public static byte[] Serialize(DsseEnvelope envelope) => JsonSerializer.SerializeToUtf8Bytes(envelope, ProvenanceJson.Default.DsseEnvelope);

    /// <summary>Reads one envelope; a malformed one is CAIRN-E1201 naming <paramref name="where"/>.</summary>
    public static DsseEnvelope Parse(ReadOnlySpan<byte> json, string where)
    {
        DsseEnvelope? envelope;
        try
        {
            envelope = JsonSerializer.Deserialize(json, ProvenanceJson.Default.DsseEnvelope);
        }
        catch (JsonException e)
        {
            throw Malformed(where, $"not a DSSE envelope ({e.Message})");
        }

        if (envelope?.PayloadType is null || envelope.Payload is null || envelope.Signatures is null) throw Malformed(where, "not a DSSE envelope (payloadType, payload and signatures are required)");
        return envelope;
    }

    internal static CairnException Malformed(string where, string why) =>
        new(ErrorCode.ProvenanceMalformed, $"provenance '{where}': {why}", "the attestation file is damaged or not written by an in-toto/DSSE tool; rebuild the product to attest it again");
}
