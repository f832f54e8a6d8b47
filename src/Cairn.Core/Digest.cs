using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Cairn.Core;

/// <summary>A SHA-256 content address. Value type so that indexes of millions of digests stay compact.</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(DigestJsonConverter))]
public readonly struct Digest : IEquatable<Digest>, IComparable<Digest>
{
    public const int Length = 32;

    private readonly ulong _a, _b, _c, _d;

    private Digest(ulong a, ulong b, ulong c, ulong d) => (_a, _b, _c, _d) = (a, b, c, d);

    public static Digest FromBytes(ReadOnlySpan<byte> hash)
    {
        if (hash.Length != Length)
        {
            throw new ArgumentException($"a digest is {Length} bytes, got {hash.Length}", nameof(hash));
        }

        return new Digest(
            BinaryPrimitives.ReadUInt64BigEndian(hash),
            BinaryPrimitives.ReadUInt64BigEndian(hash[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(hash[16..]),
            BinaryPrimitives.ReadUInt64BigEndian(hash[24..]));
    }

    public static Digest Of(ReadOnlySpan<byte> content)
    {
        Span<byte> hash = stackalloc byte[Length];
        SHA256.HashData(content, hash);
        return FromBytes(hash);
    }

    public static bool TryParse(string? text, out Digest digest)
    {
        digest = default;
        if (text is null || text.Length != Length * 2)
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[Length];
        if (Convert.FromHexString(text, bytes, out _, out var written) != System.Buffers.OperationStatus.Done || written != Length)
        {
            return false;
        }

        // Only the canonical lowercase spelling is a valid address.
        if (!text.Equals(Convert.ToHexStringLower(bytes), StringComparison.Ordinal))
        {
            return false;
        }

        digest = FromBytes(bytes);
        return true;
    }

    public static Digest Parse(string text) =>
        TryParse(text, out var d) ? d : throw new FormatException($"'{text}' is not a lowercase hex SHA-256 digest");

    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _a);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _b);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], _c);
        BinaryPrimitives.WriteUInt64BigEndian(destination[24..], _d);
    }

    public byte[] ToBytes()
    {
        var bytes = new byte[Length];
        WriteTo(bytes);
        return bytes;
    }

    public override string ToString()
    {
        Span<byte> bytes = stackalloc byte[Length];
        WriteTo(bytes);
        return Convert.ToHexStringLower(bytes);
    }

    /// <summary>First 12 hex characters, for human-facing output only.</summary>
    public string Abbreviated => ToString()[..12];

    public bool Equals(Digest other) => _a == other._a && _b == other._b && _c == other._c && _d == other._d;

    public override bool Equals(object? obj) => obj is Digest d && Equals(d);

    public override int GetHashCode() => (int)_a ^ (int)(_a >> 32);

    public int CompareTo(Digest other)
    {
        var c = _a.CompareTo(other._a);
        if (c != 0) return c;
        c = _b.CompareTo(other._b);
        if (c != 0) return c;
        c = _c.CompareTo(other._c);
        return c != 0 ? c : _d.CompareTo(other._d);
    }

    public static bool operator ==(Digest left, Digest right) => left.Equals(right);
    public static bool operator !=(Digest left, Digest right) => !left.Equals(right);
    public static bool operator <(Digest left, Digest right) => left.CompareTo(right) < 0;
    public static bool operator >(Digest left, Digest right) => left.CompareTo(right) > 0;
    public static bool operator <=(Digest left, Digest right) => left.CompareTo(right) <= 0;
    public static bool operator >=(Digest left, Digest right) => left.CompareTo(right) >= 0;
}
