using System.Text.Json.Serialization;

namespace Cairn.Core.Transparency;

/// <summary>
/// One leaf of the publication log (docs/format/transparency-log.md §1): a change of the repository's state. Written
/// as compact JSON in this property order; the leaf hash covers these exact bytes, so they are never re-encoded.
/// </summary>
/// <param name="Kind">init, publish, replace, rollback, tag, untag, revoke (a key revocation) or gc (revisions removed).</param>
/// <param name="Revision">The revision this change created; for gc and revoke, the head when it happened.</param>
/// <param name="Root">The revision's root tree digest (absent for gc and revoke).</param>
/// <param name="Catalog">The revision's catalog digest (absent for gc and revoke).</param>
/// <param name="Subject">What changed: PLATFORM/NAME/VERSION, a tag, the revision rolled back to, a key id, the revisions removed.</param>
public sealed record LogRecord(int Format, string Kind, long Revision, Digest? Root, Digest? Catalog, IReadOnlyDictionary<string, long>? Tags,
    string Subject, string By, DateTimeOffset At)
{
    public byte[] Encode() => CairnJson.Serialize(this, TransparencyJson.Default.LogRecord);

    public static LogRecord Decode(ReadOnlySpan<byte> bytes, string what) => CairnJson.Deserialize(bytes, TransparencyJson.Default.LogRecord, what);

    /// <summary>Whether this leaf records <paramref name="manifest"/>: same revision, tree, catalog and tags.</summary>
    public bool Records(Manifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        return Root is not null && Revision == manifest.Revision && Root == manifest.Root && Catalog == manifest.Catalog
            && (Tags ?? new Dictionary<string, long>()).OrderBy(t => t.Key, StringComparer.Ordinal)
                .SequenceEqual(manifest.Tags.OrderBy(t => t.Key, StringComparer.Ordinal));
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(LogRecord))]
internal sealed partial class TransparencyJson : JsonSerializerContext;
