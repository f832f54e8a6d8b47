using Cairn.Core;

namespace Cairn.Coordination.Gateway;

// Request and response bodies of the gateway's HTTP API (docs/format/gateway-api.md) that are not already records
// of IGateway. Shared by the server and the client so the two cannot drift apart.

/// <summary>Body of POST /v1/claims/heartbeat and /v1/claims/release.</summary>
public sealed record ClaimTokenRequest(string BuildKey, long FencingToken);

/// <summary>Answer of POST /v1/claims/release.</summary>
public sealed record ReleaseResponse(bool Released);

/// <summary>Body of POST /v1/objects/missing (at most <see cref="GatewayProtocol.MaxMissingBatch"/> digests).</summary>
public sealed record MissingObjectsRequest(IReadOnlyList<Digest> Digests);

/// <summary>Answer of POST /v1/objects/missing.</summary>
public sealed record MissingObjectsResponse(IReadOnlyList<Digest> Missing);

/// <summary>Body of POST /v1/failures.</summary>
public sealed record FailureReport(BuildResult Result, long FencingToken);

/// <summary>Every error the gateway answers with: the stable code (CAIRN-ENNNN), its name, what went wrong and what to do.</summary>
public sealed record GatewayError(string Code, string Name, string Message, string? Hint);

public static class GatewayProtocol
{
    public const string TokenPrefix = "Bearer ";

    /// <summary>Most digests one MissingObjects call may ask about.</summary>
    public const int MaxMissingBatch = 4096;

    /// <summary>Parses "CAIRN-E0903" back to its code; null if it is not one this build knows.</summary>
    public static ErrorCode? ParseCode(string? code)
    {
        if (code is null || !code.StartsWith("CAIRN-E", StringComparison.Ordinal)) return null;
        return int.TryParse(code.AsSpan(7), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)
            && Enum.IsDefined((ErrorCode)n) ? (ErrorCode)n : null;
    }
}
