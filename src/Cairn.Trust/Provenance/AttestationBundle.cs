using System.Text.Json;
using Cairn.Core;

namespace Cairn.Trust.Provenance;

/// <summary>
/// A product's attestations: DSSE envelopes, one per line (JSON Lines, the in-toto bundle convention, file suffix
/// <c>.intoto.jsonl</c>). The builder's provenance and test-result statements come first; each confirming site
/// appends its own pair (docs/format/provenance.md §5).
/// </summary>
public static class AttestationBundle
{
    public const string FileSuffix = ".intoto.jsonl";

    /// <summary>A bundle is small (a few KiB per site); anything far larger is refused before it is parsed.</summary>
    public const int MaxBytes = 4 << 20;

    public static byte[] Write(IEnumerable<DsseEnvelope> envelopes)
    {
        ArgumentNullException.ThrowIfNull(envelopes);
        var output = new MemoryStream();
        foreach (var e in envelopes)
        {
            output.Write(Dsse.Serialize(e));
            output.WriteByte((byte)'\n');
        }

        return output.ToArray();
    }

    public static IReadOnlyList<DsseEnvelope> Read(ReadOnlySpan<byte> bytes, string where)
    {
        if (bytes.Length > MaxBytes) throw Dsse.Malformed(where, $"{bytes.Length} bytes, above the limit of {MaxBytes}");
        var result = new List<DsseEnvelope>();
        var line = 0;
        while (bytes.Length > 0)
        {
            line++;
            var end = bytes.IndexOf((byte)'\n');
            var current = end < 0 ? bytes : bytes[..end];
            bytes = end < 0 ? [] : bytes[(end + 1)..];
            if (current.Trim((byte)'\r').IsEmpty) continue;
            result.Add(Dsse.Parse(current, $"{where}, line {line}"));
        }

        return result;
    }

    /// <summary>The statement inside a verified envelope, by its predicate type.</summary>
    internal static T ReadStatement<T>(DsseEnvelope envelope, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, string where)
    {
        try
        {
            return JsonSerializer.Deserialize(Convert.FromBase64String(envelope.Payload), type) ?? throw Dsse.Malformed(where, "empty statement");
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            throw Dsse.Malformed(where, $"the payload is not an in-toto statement ({e.Message})");
        }
    }

    /// <summary>Every statement of a bundle as people read it, without checking signatures (cairn attest show, the dashboard).</summary>
    public static IReadOnlyList<AttestationView> Describe(ReadOnlySpan<byte> bytes, string where)
    {
        var views = new List<AttestationView>();
        var envelopes = Read(bytes, where);
        for (var i = 0; i < envelopes.Count; i++)
        {
            var e = envelopes[i];
            var at = $"{where}, statement {i + 1}";
            var header = ReadStatement(e, ProvenanceJson.Default.StatementHeader, at);
            var keyIds = (e.Signatures ?? []).Select(s => s.KeyId).ToList();
            var subject = header.Subject is { Count: > 0 } subjects ? subjects[0] : null;
            var view = new AttestationView(header.PredicateType, subject?.Name, subject?.Digest?.GetValueOrDefault(InToto.TreeDigest), keyIds);
            if (header.PredicateType == InToto.SlsaProvenanceType)
            {
                var p = ReadStatement(e, ProvenanceJson.Default.ProvenanceStatement, at).Predicate;
                view = view with
                {
                    Builder = p?.RunDetails?.Builder?.Id, InvocationId = p?.RunDetails?.Metadata?.InvocationId,
                    StartedOn = p?.RunDetails?.Metadata?.StartedOn, FinishedOn = p?.RunDetails?.Metadata?.FinishedOn,
                    BuildKey = p?.BuildDefinition?.InternalParameters?.BuildKey,
                    Dependencies = p?.BuildDefinition?.ResolvedDependencies?.Select(d => d.Uri ?? d.Name ?? "?").ToList(),
                };
            }
            else if (header.PredicateType == InToto.TestResultType)
            {
                var t = ReadStatement(e, ProvenanceJson.Default.TestResultStatement, at).Predicate;
                view = view with { Result = t?.Result, PassedTests = t?.PassedTests?.Count, FailedTests = t?.FailedTests };
            }

            views.Add(view);
        }

        return views;
    }
}

/// <summary>One statement of a product's bundle, flattened for display (unverified: run the verifier for trust).</summary>
public sealed record AttestationView(string PredicateType, string? Subject, string? SubjectDigest, IReadOnlyList<string> KeyIds)
{
    public string? Builder { get; init; }
    public string? InvocationId { get; init; }
    public string? StartedOn { get; init; }
    public string? FinishedOn { get; init; }
    public string? BuildKey { get; init; }
    public IReadOnlyList<string>? Dependencies { get; init; }
    public string? Result { get; init; }
    public int? PassedTests { get; init; }
    public IReadOnlyList<string>? FailedTests { get; init; }
}
