using System.Text.Json.Serialization;
using Cairn.Build;
using Cairn.Cli.Commands;
using Cairn.Cli.Commands.Attest;
using Cairn.Cli.Commands.Export;
using Cairn.Cli.Commands.Gateway;
using Cairn.Cli.Commands.History;
using Cairn.Cli.Commands.Init;
using Cairn.Cli.Commands.Key;
using Cairn.Cli.Commands.List;
using Cairn.Cli.Commands.Materialize;
using Cairn.Cli.Commands.Mount;
using Cairn.Repository.Replication;
using Cairn.Cli.Commands.Show;
using Cairn.Cli.Commands.Unmount;
using Cairn.Cli.Commands.Verify;
using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Cli;

/// <summary>Every type a command prints with --json (<see cref="CliContext.Write{T}"/>), so the output needs no reflection.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ErrorOutput))]
[JsonSerializable(typeof(AttestOutput))]
[JsonSerializable(typeof(ProvenanceOutput))]
[JsonSerializable(typeof(InitOutput))]
[JsonSerializable(typeof(PublishResult))]
[JsonSerializable(typeof(IReadOnlyList<PublishResult>))]
[JsonSerializable(typeof(ListOutput))]
[JsonSerializable(typeof(ShowOutput))]
[JsonSerializable(typeof(MaterializeOutput))]
[JsonSerializable(typeof(ExportOutput))]
[JsonSerializable(typeof(VerifyOutput))]
[JsonSerializable(typeof(GcResult))]
[JsonSerializable(typeof(HistoryOutput))]
[JsonSerializable(typeof(Manifest))]
[JsonSerializable(typeof(IReadOnlyDictionary<string, long>))]
[JsonSerializable(typeof(ReplicateResult))]
[JsonSerializable(typeof(BuildPlan))]
[JsonSerializable(typeof(IReadOnlyList<Cairn.Build.CodeRade.CodeRadeImportResult>))]
[JsonSerializable(typeof(StackBuildResult))]
[JsonSerializable(typeof(ChallengeResult))]
[JsonSerializable(typeof(MountOutput))]
[JsonSerializable(typeof(DetachedMountOutput))]
[JsonSerializable(typeof(UnmountOutput))]
[JsonSerializable(typeof(Site))]
[JsonSerializable(typeof(IReadOnlyList<Site>))]
[JsonSerializable(typeof(TokenFileOutput))]
[JsonSerializable(typeof(TokenSecretOutput))]
[JsonSerializable(typeof(TokenRevokedOutput))]
[JsonSerializable(typeof(IReadOnlyList<TokenInfo>))]
[JsonSerializable(typeof(ChannelPolicy))]
[JsonSerializable(typeof(IReadOnlyList<GatewayCoherence>))]
[JsonSerializable(typeof(KeyGenerated))]
[JsonSerializable(typeof(KeyCertified))]
[JsonSerializable(typeof(KeysRevoked))]
[JsonSerializable(typeof(KeyResigned))]
[JsonSerializable(typeof(KeyShown))]
public sealed partial class CliJson : JsonSerializerContext;
