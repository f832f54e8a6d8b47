using System.CommandLine;
using System.Text.Json.Serialization;
using Cairn.Core;
using Cairn.Core.Transparency;
using Cairn.Repository;
using Cairn.Repository.Backends;
using Cairn.Repository.Http;
using Cairn.Repository.Transparency;
using Cairn.Trust;
using Cairn.Trust.Transparency;
using NSec.Cryptography;

namespace Cairn.Cli.Commands.Log;

/// <summary>cairn log: the repository's publication log (docs/security.md, "The publication log"; docs/format/transparency-log.md).</summary>
public static class LogCommand
{
    public static Command Create() =>
        new("log", "The publication log: every change of the repository, in a Merkle tree with a signed checkpoint")
        {
            Show(), Verify(), Prove(), Witness(),
        };

    private static Command Show()
    {
        var from = new Option<long>("--from") { Description = "First entry to list (0-based)", DefaultValueFactory = _ => 0 };
        var command = new Command("show", "List the log's entries and its checkpoint") { from };
        command.SetHandler(async (ctx, ct) =>
        {
            await using var repo = await ctx.OpenRepositoryAsync(ct);
            var (source, note, checkpoint) = await CheckpointAsync(repo, ct);
            var tiles = new TileReader(source, checkpoint.Size);
            var start = Math.Max(0, ctx.Parse.GetValue(from));
            var entries = new List<LogEntryOutput>();
            for (var b = start / Tiles.Width; b * Tiles.Width < checkpoint.Size; b++)
            {
                var bundle = await tiles.EntriesAsync(b, ct);
                for (var i = 0; i < bundle.Count; i++)
                {
                    var index = b * Tiles.Width + i;
                    if (index >= start) entries.Add(new LogEntryOutput(index, LogRecord.Decode(bundle[i], $"log entry {index}")));
                }
            }

            var output = new LogShowOutput(checkpoint.Origin, checkpoint.Size, checkpoint.RootBase64, note.Signatures.Select(s => $"{s.KeyName}+{s.KeyId:x8}").ToList(), entries);
            ctx.Write(output, LogJson.Default.LogShowOutput, o =>
            {
                o.WriteLine($"log {checkpoint.Origin}: {checkpoint.Size} entries, root {checkpoint.RootBase64}");
                o.WriteLine($"  signed by {string.Join(", ", output.Signers)}");
                foreach (var e in entries)
                {
                    var r = e.Record;
                    o.WriteLine($"{e.Index,7}  {r.At:yyyy-MM-dd HH:mm:ss}Z  {r.Kind,-8} r{r.Revision,-6} {r.Subject}  ({r.By}){(r.Root is { } root ? $"  {root.Abbreviated}" : "")}");
                }
            });
            return 0;
        });
        return command;
    }

    private static Command Verify()
    {
        var logKey = new Option<string?>("--log-key") { Description = "Check the checkpoint's signature with this key: a C2SP verifier key, or a publishing key's .pub file" };
        var command = new Command("verify", "Check the whole tree against the checkpoint, and that every kept revision is in it") { logKey };
        command.SetHandler(async (ctx, ct) =>
        {
            await using var repo = await ctx.OpenRepositoryAsync(ct);
            var (source, note, checkpoint) = await CheckpointAsync(repo, ct);
            if (ctx.Parse.GetValue(logKey) is { } key && !NoteKeys.IsSignedBy(note, checkpoint.Origin, LogKey(key, checkpoint.Origin)))
            {
                throw new CairnException(ErrorCode.LogCheckpointInvalid, $"'{source.Where(LogFiles.Checkpoint)}' is not signed by {key}", "check --log-key, or the checkpoint is forged");
            }

            var tiles = new TileReader(source, checkpoint.Size);
            var entries = await tiles.VerifyAllAsync(checkpoint.Root, ct);
            var records = entries.Select((e, i) => LogRecord.Decode(e, $"log entry {i}")).ToList();
            var missing = new List<long>();
            await foreach (var m in repo.Revisions.ListRevisionsAsync(ct))
            {
                if (!records.Any(r => r.Records(m))) missing.Add(m.Revision);
            }

            if (missing.Count > 0)
            {
                throw new CairnException(ErrorCode.LogRevisionNotIncluded, $"revisions {string.Join(", ", missing)} are kept but not recorded in the log of {checkpoint.Size} entries",
                    "a commit died between its head and its checkpoint (the next commit catches up), or revisions were written outside cairn");
            }

            var output = new LogVerifyOutput(checkpoint.Origin, checkpoint.Size, checkpoint.RootBase64, tiles.Requests);
            ctx.Write(output, LogJson.Default.LogVerifyOutput,
                o => o.WriteLine($"log {checkpoint.Origin}: {checkpoint.Size} entries verified against root {checkpoint.RootBase64} ({tiles.Requests} tiles and bundles read); every kept revision is in it"));
            return 0;
        });
        return command;
    }

    private static Command Prove()
    {
        var revision = new Argument<long>("revision") { Description = "The revision whose inclusion to prove" };
        var command = new Command("prove", "Print an inclusion proof of a revision that anyone can check against the signed checkpoint (docs/format/transparency-log.md §7)") { revision };
        command.SetHandler(async (ctx, ct) =>
        {
            await using var repo = await ctx.OpenRepositoryAsync(ct);
            var (source, note, checkpoint) = await CheckpointAsync(repo, ct);
            var tiles = new TileReader(source, checkpoint.Size);
            var wanted = ctx.Parse.GetValue(revision);
            var found = await LogVerifier.FindRevisionAsync(tiles, wanted, ct)
                ?? throw new CairnException(ErrorCode.LogRevisionNotIncluded, $"revision {wanted} is not in the log of {checkpoint.Size} entries", "run 'cairn log show' to list the logged revisions");
            var proof = await tiles.InclusionProofAsync(found.Index, ct);
            var leafHash = Merkle.LeafHash(found.Bytes);
            if (!Merkle.VerifyInclusion(found.Index, checkpoint.Size, leafHash, proof, checkpoint.Root))
            {
                throw new CairnException(ErrorCode.LogTileInvalid, "the inclusion proof read from the tiles does not verify", "run 'cairn log verify'");
            }

            var output = new LogProofOutput(note.Encode(), found.Index, checkpoint.Size, Convert.ToBase64String(found.Bytes), Convert.ToBase64String(leafHash),
                proof.Select(Convert.ToBase64String).ToList());
            ctx.Write(output, LogJson.Default.LogProofOutput, o =>
            {
                o.WriteLine($"revision {wanted} is entry {found.Index} of {checkpoint.Size}");
                o.WriteLine($"entry: {System.Text.Encoding.UTF8.GetString(found.Bytes)}");
                o.WriteLine($"leaf hash: {output.LeafHash}");
                o.WriteLine("proof (bottom first):");
                foreach (var p in output.Proof) o.WriteLine($"  {p}");
                o.WriteLine("checkpoint:");
                o.Write(output.Checkpoint);
            });
            return 0;
        });
        return command;
    }

    private static Command Witness()
    {
        var key = new Option<string>("--key") { Description = "The witness's own private key (cairn key generate --root -o witness.key)", Required = true };
        var name = new Option<string>("--name") { Description = "The witness's name in its cosignatures, e.g. witness.example.org/w1", Required = true };
        var logKey = new Option<string?>("--log-key") { Description = "The log's key: a C2SP verifier key, or the publishing key's .pub file" };
        var state = new Option<string?>("--state") { Description = "Where the witness remembers the last checkpoint it cosigned (default $CAIRN_STATE/witness/NAME)" };
        var attach = new Option<string?>("--attach") { Description = "Add the cosignature to the checkpoint of this writable repository (a directory or s3:// URL)" };
        var showKey = new Option<bool>("--show-key") { Description = "Print the witness's verifier key (for clients' log policies) and exit" };
        var command = new Command("witness", "Verify the log's new checkpoint against the last one this witness cosigned, and cosign it (C2SP tlog-cosignature)")
        {
            key, name, logKey, state, attach, showKey,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            using var pair = Keys.ReadPrivate(ctx.Parse.GetValue(key)!);
            var witnessName = ctx.Parse.GetValue(name)!;
            var stateDir = ctx.Parse.GetValue(state) ?? Path.Combine(ManifestVerifier.DefaultStateDirectory, "witness", string.Concat(witnessName.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_')));
            if (ctx.Parse.GetValue(showKey))
            {
                var shown = new Trust.Transparency.Witness(pair.Private, witnessName, new LogVerifier(stateDir, () => [], ctx.Time), ctx.Time);
                ctx.Out.WriteLine(shown.VerifierKey);
                return 0;
            }

            var logKeyText = ctx.Parse.GetValue(logKey)
                ?? throw new CairnException(ErrorCode.Usage, "--log-key is required to cosign", "give the log's verifier key or the publishing key's .pub file");
            await using var repo = await ctx.OpenRepositoryAsync(ct);
            var source = Source(repo);
            var origin = LogFiles.Origin(repo.Revisions.Config.Name);
            var publicKey = LogKey(logKeyText, origin);
            var witness = new Trust.Transparency.Witness(pair.Private, witnessName, new LogVerifier(stateDir, () => [publicKey], ctx.Time, null, ctx.Logger), ctx.Time);
            var (checkpoint, cosignature) = await witness.CosignAsync(source, origin, ct);
            var attached = false;
            if (ctx.Parse.GetValue(attach) is { } target)
            {
                await using var writable = await RepositoryOpener.OpenWritableAsync(RepositoryLocation.ParseWritable(target, "log witness"), ctx.OpenSettings(), ct);
                attached = await writable.AttachCosignatureAsync(checkpoint.Text, cosignature, ct);
            }

            var parsed = Checkpoint.Parse(checkpoint.Text)!;
            var output = new LogWitnessOutput(origin, parsed.Size, parsed.RootBase64, cosignature.ToLine().TrimEnd('\n'), attached);
            ctx.Write(output, LogJson.Default.LogWitnessOutput, o =>
            {
                o.WriteLine($"cosigned {origin} at {parsed.Size} entries (root {parsed.RootBase64}){(attached ? ", attached to the checkpoint" : "")}");
                o.WriteLine(output.Cosignature);
            });
            return 0;
        });
        return command;
    }

    /// <summary>The log's files of the opened repository, whatever its backend.</summary>
    private static ILogSource Source(ProductRepository repo) => repo.Revisions switch
    {
        WritableRevisionStore store => store.LogSource,
        HttpRevisionStore http => http.LogSource,
        _ => throw new CairnException(ErrorCode.Usage, "this repository cannot be read for its log", "give a directory, s3:// or http(s):// repository"),
    };

    private static async Task<(ILogSource Source, SignedNote Note, Checkpoint Checkpoint)> CheckpointAsync(ProductRepository repo, CancellationToken ct)
    {
        var source = Source(repo);
        var bytes = await source.ReadAsync(LogFiles.Checkpoint, SignedNote.MaxBytes, ct)
            ?? throw new CairnException(ErrorCode.LogMissing, $"'{source.Where(LogFiles.Checkpoint)}' does not exist: the repository keeps no publication log",
                "a repository keeps a log once it is signed: publish with --signing-key (docs/security.md)");
        var note = SignedNote.Parse(bytes);
        var checkpoint = note is null ? null : Checkpoint.Parse(note.Text);
        if (note is null || checkpoint is null)
        {
            throw new CairnException(ErrorCode.LogCheckpointInvalid, $"'{source.Where(LogFiles.Checkpoint)}' is not a C2SP checkpoint", "restore log/ from a mirror");
        }

        return (source, note, checkpoint);
    }

    /// <summary>A C2SP verifier key (type 0x01, named as the origin), or a cairn public key file.</summary>
    private static PublicKey LogKey(string text, string origin)
    {
        if (NoteKeys.ParseVerifierKey(text) is { } vkey)
        {
            if (vkey.Type != NoteKeys.Ed25519Type || vkey.Name != origin)
            {
                throw new CairnException(ErrorCode.Usage, $"'{text}' is not a note key named '{origin}'", "give the log's verifier key (name = the repository's name) or the publishing key's .pub file");
            }

            return vkey.Key;
        }

        return Keys.ReadPublic(text);
    }
}

public sealed record LogEntryOutput(long Index, LogRecord Record);

public sealed record LogShowOutput(string Origin, long Size, string Root, IReadOnlyList<string> Signers, IReadOnlyList<LogEntryOutput> Entries);

public sealed record LogVerifyOutput(string Origin, long Size, string Root, long TilesRead);

/// <summary>cairn log prove: everything a third party needs (docs/format/transparency-log.md §7).</summary>
public sealed record LogProofOutput(string Checkpoint, long Index, long Size, string Entry, string LeafHash, IReadOnlyList<string> Proof);

public sealed record LogWitnessOutput(string Origin, long Size, string Root, string Cosignature, bool Attached);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true)]
[JsonSerializable(typeof(LogShowOutput))]
[JsonSerializable(typeof(LogVerifyOutput))]
[JsonSerializable(typeof(LogProofOutput))]
[JsonSerializable(typeof(LogWitnessOutput))]
internal sealed partial class LogJson : JsonSerializerContext;
