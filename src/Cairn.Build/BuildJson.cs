using System.Text.Json.Serialization;

namespace Cairn.Build;

/// <summary>What the builder writes: a failed build's record (REPO/builds/…/build.json), and its plans and results as <c>cairn build --json</c> prints them.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(StackBuilder.FailureRecord))]
[JsonSerializable(typeof(BuildPlan))]
[JsonSerializable(typeof(StackBuildResult))]
public sealed partial class BuildJson : JsonSerializerContext;
