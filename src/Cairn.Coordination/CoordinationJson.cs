using System.Text.Json.Serialization;
using Cairn.Coordination.Gateway;

namespace Cairn.Coordination;

/// <summary>
/// The gateway's HTTP messages (docs/format/gateway-api.md), shared by the server (src/Cairn.Gateway) and the
/// client (src/Cairn.Gateway.Client) so both write them the same way.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(SiteIdentity))]
[JsonSerializable(typeof(SiteCapabilities))]
[JsonSerializable(typeof(Site))]
[JsonSerializable(typeof(JobRequest))]
[JsonSerializable(typeof(JobOffer))]
[JsonSerializable(typeof(ClaimTokenRequest))]
[JsonSerializable(typeof(Claim))]
[JsonSerializable(typeof(ReleaseResponse))]
[JsonSerializable(typeof(MissingObjectsRequest))]
[JsonSerializable(typeof(MissingObjectsResponse))]
[JsonSerializable(typeof(ProductCommit))]
[JsonSerializable(typeof(CommitOutcome))]
[JsonSerializable(typeof(FailureReport))]
[JsonSerializable(typeof(BuildResult))]
[JsonSerializable(typeof(GatewayCoherence))]
[JsonSerializable(typeof(IReadOnlyList<GatewayCoherence>))]
[JsonSerializable(typeof(GatewayError))]
public sealed partial class CoordinationJson : JsonSerializerContext;
