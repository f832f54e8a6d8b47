using System.Text.Json;
using Cairn.Core;

namespace Cairn.Repository.Replication;

/// <summary>
/// The few fields replicate needs from manifests, revisions and cairn.json, read with <see cref="JsonDocument"/>:
/// the reflection-based serializer's first use cost ~0.1 s of start-up, a third of a small replicate. Clients
/// still parse and check every manifest in full; a mirror only needs the number, the packs, and well-formedness.
/// </summary>
internal static class MirrorJson
{
    public sealed record HeadInfo(long Revision, IReadOnlyList<string>? Packs);

    /// <summary>A manifest's revision and packs; throws ManifestMalformed when it is not a manifest.</summary>
    public static HeadInfo Head(byte[] bytes, string what)
    {
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            if (!IsManifest(root)) throw new JsonException("not a manifest object (format, repository, revision, root)");
            List<string>? packs = null;
            if (root.TryGetProperty("packs", out var list) && list.ValueKind != JsonValueKind.Null)
            {
                packs = [];
                foreach (var pack in list.EnumerateArray())
                {
                    // Pack names become file names: only a digest is accepted.
                    packs.Add(Digest.TryParse(pack.GetString(), out _) ? pack.GetString()! : throw new JsonException($"pack name '{pack}' is not a digest"));
                }
            }

            return new HeadInfo(root.GetProperty("revision").GetInt64(), packs);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new CairnException(ErrorCode.ManifestMalformed, $"{what} is not valid: {e.Message}",
                "run 'cairn verify'; restore the file from a mirror or roll back", e);
        }
    }

    /// <summary>Whether the bytes are a manifest of revision <paramref name="revision"/> (a torn or empty copy is not).</summary>
    public static bool IsRevision(byte[] bytes, long revision)
    {
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            return IsManifest(doc.RootElement) && doc.RootElement.GetProperty("revision").GetInt64() == revision;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return false;
        }
    }

    public static bool IsConfig(byte[] bytes)
    {
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            return root.ValueKind == JsonValueKind.Object
                && root.TryGetProperty("format", out var format) && format.ValueKind == JsonValueKind.Number
                && root.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static bool IsManifest(JsonElement root) =>
        root.ValueKind == JsonValueKind.Object
        && root.TryGetProperty("format", out var format) && format.ValueKind == JsonValueKind.Number
        && root.TryGetProperty("repository", out var repository) && repository.ValueKind == JsonValueKind.String
        && root.TryGetProperty("revision", out var revision) && revision.ValueKind == JsonValueKind.Number
        && root.TryGetProperty("root", out var tree) && tree.ValueKind == JsonValueKind.String;
}
