using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Cairn.Core.Transparency;
using NSec.Cryptography;

namespace Cairn.Trust.Transparency;

/// <summary>
/// Ed25519 signatures of C2SP signed notes (type 0x01, the log's checkpoint signature) and tlog-cosignature/v1
/// (type 0x04, a witness's timestamped cosignature); docs/format/transparency-log.md §4 and §6.
/// </summary>
public static class NoteKeys
{
    public const byte Ed25519Type = 0x01;
    public const byte CosignatureType = 0x04;

    /// <summary>SHA-256(name || 0x0A || type || public key)[:4], big-endian.</summary>
    public static uint KeyId(string name, byte type, PublicKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        byte[] data = [.. Encoding.UTF8.GetBytes(name), 0x0A, type, .. key.Export(KeyBlobFormat.RawPublicKey)];
        return BinaryPrimitives.ReadUInt32BigEndian(SHA256.HashData(data));
    }

    public static NoteSignature Sign(Key key, string name, string text)
    {
        ArgumentNullException.ThrowIfNull(key);
        return new NoteSignature(name, KeyId(name, Ed25519Type, key.PublicKey), SignatureAlgorithm.Ed25519.Sign(key, Encoding.UTF8.GetBytes(text)));
    }

    /// <summary>Whether one of <paramref name="note"/>'s signatures is <paramref name="name"/>'s, by <paramref name="key"/>, and verifies.</summary>
    public static bool IsSignedBy(SignedNote note, string name, PublicKey key)
    {
        ArgumentNullException.ThrowIfNull(note);
        var id = KeyId(name, Ed25519Type, key);
        var text = Encoding.UTF8.GetBytes(note.Text);
        return note.Signatures.Any(s => s.KeyName == name && s.KeyId == id && s.Signature.Length == 64 && SignatureAlgorithm.Ed25519.Verify(key, text, s.Signature));
    }

    /// <summary>The C2SP verifier key: name+hex(key id)+base64(0x01 || public key).</summary>
    public static string VerifierKey(string name, PublicKey key) =>
        $"{name}+{KeyId(name, Ed25519Type, key):x8}+{Convert.ToBase64String([Ed25519Type, .. key.Export(KeyBlobFormat.RawPublicKey)])}";

    /// <summary>Parses a verifier key (type 0x01 or 0x04); null when malformed or its key id does not match.</summary>
    public static (string Name, byte Type, PublicKey Key)? ParseVerifierKey(string vkey)
    {
        ArgumentNullException.ThrowIfNull(vkey);
        var parts = vkey.Split('+', 3);
        if (parts.Length != 3 || parts[0].Length == 0 || parts[1].Length != 8) return null;
        if (!uint.TryParse(parts[1], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var id)) return null;
        var raw = Envelope.TryBase64(parts[2]);
        if (raw is not { Length: 33 } || raw[0] is not (Ed25519Type or CosignatureType)) return null;
        if (!PublicKey.TryImport(SignatureAlgorithm.Ed25519, raw.AsSpan(1), KeyBlobFormat.RawPublicKey, out var key) || key is null) return null;
        return KeyId(parts[0], raw[0], key) == id ? (parts[0], raw[0], key) : null;
    }

    /// <summary>The message a cosignature/v1 signs: a header line, the timestamp line, and the checkpoint's note text.</summary>
    public static byte[] CosignedMessage(string checkpointText, long timestamp) =>
        Encoding.UTF8.GetBytes($"cosignature/v1\ntime {timestamp.ToString(CultureInfo.InvariantCulture)}\n{checkpointText}");

    public static NoteSignature Cosign(Key key, string name, string checkpointText, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(key);
        var timestamp = at.ToUnixTimeSeconds();
        var signature = SignatureAlgorithm.Ed25519.Sign(key, CosignedMessage(checkpointText, timestamp));
        var body = new byte[8 + signature.Length];
        BinaryPrimitives.WriteUInt64BigEndian(body, (ulong)timestamp);
        signature.CopyTo(body, 8);
        return new NoteSignature(name, KeyId(name, CosignatureType, key.PublicKey), body);
    }

    /// <summary>The time of <paramref name="name"/>'s valid cosignature of <paramref name="note"/>, null when it has none.</summary>
    public static DateTimeOffset? CosignedAt(SignedNote note, string name, PublicKey key)
    {
        ArgumentNullException.ThrowIfNull(note);
        var id = KeyId(name, CosignatureType, key);
        foreach (var s in note.Signatures.Where(s => s.KeyName == name && s.KeyId == id && s.Signature.Length == 8 + 64))
        {
            var timestamp = BinaryPrimitives.ReadUInt64BigEndian(s.Signature);
            if (timestamp > long.MaxValue) continue;
            if (SignatureAlgorithm.Ed25519.Verify(key, CosignedMessage(note.Text, (long)timestamp), s.Signature.AsSpan(8))) return DateTimeOffset.FromUnixTimeSeconds((long)timestamp);
        }

        return null;
    }
}
