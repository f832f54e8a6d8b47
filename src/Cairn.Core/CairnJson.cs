using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Cairn.Core;

/// <summary>
/// How Cairn reads and writes its JSON documents (manifests, catalogs, keys, CLI output, gateway messages).
/// Every type is described by a source-generated <see cref="JsonSerializerContext"/> of the assembly that owns it
/// (<see cref="CoreJson"/> here), so serialization needs no reflection and the shipped cairn can be compiled ahead
/// of time. Every context is generated with the same settings — camelCase names, nulls left out:
/// <c>[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]</c>;
/// enums carry <see cref="CamelCaseEnumConverter{TEnum}"/> and digests <see cref="DigestJsonConverter"/>, so a type
/// is written the same way whichever context writes it.
/// </summary>
public static class CairnJson
{
    private static readonly JsonWriterOptions IndentedWriter = new() { Indented = true };

    public static byte[] Serialize<T>(T value, JsonTypeInfo<T> type) => JsonSerializer.SerializeToUtf8Bytes(value, type);

    /// <summary>Indented, for files people read (keys, trust state, build records) and <c>--json</c> output.</summary>
    public static byte[] SerializeIndented<T>(T value, JsonTypeInfo<T> type)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, IndentedWriter))
        {
            JsonSerializer.Serialize(writer, value, type);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Parses a stored document; a malformed or empty one is <see cref="ErrorCode.ManifestMalformed"/>, naming <paramref name="what"/>.</summary>
    public static T Deserialize<T>(ReadOnlySpan<byte> json, JsonTypeInfo<T> type, string what)
    {
        try
        {
            return JsonSerializer.Deserialize(json, type)
                ?? throw new CairnException(ErrorCode.ManifestMalformed, $"{what} is empty");
        }
        catch (JsonException e)
        {
            throw new CairnException(ErrorCode.ManifestMalformed, $"{what} is not valid: {e.Message}",
                "run 'cairn verify'; restore the file from a mirror or roll back", e);
        }
    }
}

/// <summary>The documents of the repository format (docs/format/repository.md).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(Manifest))]
[JsonSerializable(typeof(RepositoryConfig))]
[JsonSerializable(typeof(Catalog))]
[JsonSerializable(typeof(ProductRecord))]
[JsonSerializable(typeof(List<ProductRecord>))]
[JsonSerializable(typeof(Dictionary<string, long>))]
public sealed partial class CoreJson : JsonSerializerContext;

/// <summary>Enums are written by name in camelCase (<c>"published"</c>), and read by name or number.</summary>
public sealed class CamelCaseEnumConverter<TEnum>() : JsonStringEnumConverter<TEnum>(JsonNamingPolicy.CamelCase)
    where TEnum : struct, Enum;

/// <summary>A digest is written as its lowercase hex string.</summary>
public sealed class DigestJsonConverter : JsonConverter<Digest>
{
    public override Digest Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        Digest.TryParse(reader.GetString(), out var d) ? d : throw new JsonException("expected a lowercase hex SHA-256 digest");

    public override void Write(Utf8JsonWriter writer, Digest value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString());
}
