using System.Globalization;
using System.Text;

namespace Cairn.Core.Transparency;

/// <summary>
/// A C2SP tlog-checkpoint's note text: the origin, the tree size and the base64 root hash, each on its own line
/// (docs/format/transparency-log.md §4). Cairn writes no extension lines and accepts none.
/// </summary>
public sealed record Checkpoint(string Origin, long Size, byte[] Root)
{
    public string ToNoteText() => $"{Origin}\n{Size.ToString(CultureInfo.InvariantCulture)}\n{Convert.ToBase64String(Root)}\n";

    public string RootBase64 => Convert.ToBase64String(Root);

    /// <summary>Parses note text; null when it is not exactly three well-formed lines.</summary>
    public static Checkpoint? Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!text.EndsWith('\n')) return null;
        var lines = text[..^1].Split('\n');
        if (lines.Length != 3 || lines[0].Length == 0 || lines[0].Any(c => char.IsWhiteSpace(c) || c == '+')) return null;
        if (lines[1].Length == 0 || lines[1].Length > 19 || (lines[1].Length > 1 && lines[1][0] == '0') || !lines[1].All(char.IsAsciiDigit)) return null;
        if (!long.TryParse(lines[1], NumberStyles.None, CultureInfo.InvariantCulture, out var size)) return null;
        byte[] root;
        try
        {
            root = Convert.FromBase64String(lines[2]);
        }
        catch (FormatException)
        {
            return null;
        }

        return root.Length == Merkle.HashSize && Convert.ToBase64String(root) == lines[2] ? new Checkpoint(lines[0], size, root) : null;
    }
}

/// <summary>One signature line of a C2SP signed note: the key name and the decoded 4-byte key id and signature.</summary>
public sealed record NoteSignature(string KeyName, uint KeyId, byte[] Signature)
{
    public string ToLine() =>
        $"— {KeyName} {Convert.ToBase64String([(byte)(KeyId >> 24), (byte)(KeyId >> 16), (byte)(KeyId >> 8), (byte)KeyId, .. Signature])}\n";
}

/// <summary>
/// The C2SP signed-note envelope (docs/format/transparency-log.md §4): text ending in a newline, a blank line, and
/// signature lines "— NAME BASE64(keyid || signature)". Only the layout: signatures are checked in Cairn.Trust.
/// </summary>
public sealed record SignedNote(string Text, IReadOnlyList<NoteSignature> Signatures)
{
    public const int MaxBytes = 1 << 20;

    public string Encode() => Text + "\n" + string.Concat(Signatures.Select(s => s.ToLine()));

    public byte[] EncodeBytes() => Encoding.UTF8.GetBytes(Encode());

    /// <summary>Parses a signed note; null when it is malformed (no blank line, a bad signature line, control characters).</summary>
    public static SignedNote? Parse(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > MaxBytes) return null;
        string note;
        try
        {
            note = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }

        if (note.Any(c => c < 0x20 && c != '\n')) return null;
        var split = note.LastIndexOf("\n\n", StringComparison.Ordinal);
        if (split < 0 || !note.EndsWith('\n')) return null;
        var text = note[..(split + 1)];
        var signatures = new List<NoteSignature>();
        foreach (var line in note[(split + 2)..^1].Split('\n'))
        {
            var parts = line.Split(' ');
            if (parts.Length != 3 || parts[0] != "—" || parts[1].Length == 0) return null;
            byte[] raw;
            try
            {
                raw = Convert.FromBase64String(parts[2]);
            }
            catch (FormatException)
            {
                return null;
            }

            if (raw.Length < 5) return null;
            signatures.Add(new NoteSignature(parts[1], (uint)(raw[0] << 24 | raw[1] << 16 | raw[2] << 8 | raw[3]), raw[4..]));
        }

        return signatures.Count == 0 ? null : new SignedNote(text, signatures);
    }
}
