using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Cairn.Core;
using Cairn.Core.Transparency;
using Cairn.Repository;
using Cairn.Repository.Transparency;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NSec.Cryptography;

namespace Cairn.Trust.Transparency;

/// <summary>A checkpoint this client verified: the signed note as served, its parsed text, and the tiles it was checked against.</summary>
public sealed record VerifiedCheckpoint(byte[] Bytes, SignedNote Note, Checkpoint Checkpoint, TileReader Tiles);

/// <summary>What catching up with a new checkpoint cost: proof hashes, tile and bundle requests, hashes read from tiles.</summary>
public sealed record CatchUpCost(long FromSize, long ToSize, int ProofHashes, long Requests, long HashesRead);

/// <summary>
/// The client side of the publication log (docs/security.md, "The publication log"). Whenever a head is read: the
/// checkpoint must be signed by the repository's publishing key (and cosigned by the policy's witnesses), its tiles
/// must give its root, it must extend the checkpoint this client verified last for the origin (consistency proof
/// computed from tiles), and the revision used must be in it (inclusion). The last verified checkpoint is kept in
/// $CAIRN_STATE/log/; a refused one that proves a fork is kept beside it as evidence.
/// </summary>
/// <param name="scope">Tells apart logs of one origin under different trust roots (the root's fingerprint), as the remembered head is.</param>
public sealed class LogVerifier(string stateDirectory, Func<IReadOnlyCollection<PublicKey>> logKeys, TimeProvider time, WitnessPolicy? policy = null,
    ILogger? logger = null, string? scope = null) : ILogChecker
{
    private readonly ILogger _log = logger ?? NullLogger.Instance;
    private readonly ConcurrentDictionary<string, VerifiedCheckpoint> _verified = new();
    private readonly Lock _lock = new();

    /// <summary>The cost of the last catch-up from a remembered checkpoint (benchmarks and tests assert it).</summary>
    public CatchUpCost? LastCatchUp { get; private set; }

    public string StateDirectory => stateDirectory;

    public async Task CheckAsync(ILogSource source, string origin, Manifest revision, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(revision);
        var verified = await VerifyCheckpointAsync(source, origin, ct).ConfigureAwait(false);
        if (verified is null) return;
        await CheckIncludedAsync(verified, revision, source, ct).ConfigureAwait(false);
    }

    /// <summary>The checkpoint file this client remembers for <paramref name="origin"/>, null when none.</summary>
    public string RememberedPath(string origin) => Path.Combine(stateDirectory, "log", Safe(origin) + (scope is null ? "" : "@" + Safe(scope)) + ".checkpoint");

    /// <summary>
    /// Reads, verifies and remembers the source's checkpoint; null when the repository has no log and this client
    /// never verified one for the origin (a repository signed before logs existed).
    /// </summary>
    public async Task<VerifiedCheckpoint?> VerifyCheckpointAsync(ILogSource source, string origin, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(source);
        var where = source.Where(LogFiles.Checkpoint);
        var bytes = await source.ReadAsync(LogFiles.Checkpoint, SignedNote.MaxBytes, ct).ConfigureAwait(false);
        var remembered = Remembered(origin);
        if (bytes is null)
        {
            if (remembered is null)
            {
                _log.LogDebug("{Where}: no publication log, and none verified before for {Origin}", where, origin);
                return null;
            }

            throw new CairnException(ErrorCode.LogMissing,
                $"'{where}' is missing, but this client verified the publication log of '{origin}' up to {remembered.Checkpoint.Size} entries before",
                "the server dropped the log: use a server that carries it (cairn replicate copies it)");
        }

        if (_verified.TryGetValue(origin, out var known) && known.Bytes.AsSpan().SequenceEqual(bytes)) return known;

        var note = SignedNote.Parse(bytes);
        var checkpoint = note is null ? null : Checkpoint.Parse(note.Text);
        if (note is null || checkpoint is null)
        {
            throw new CairnException(ErrorCode.LogCheckpointInvalid, $"'{where}' is not a C2SP checkpoint (origin, size and root hash lines, a blank line, signature lines)",
                "the server's copy is forged or damaged: use another server");
        }

        if (checkpoint.Origin != origin)
        {
            throw new CairnException(ErrorCode.LogCheckpointInvalid, $"'{where}' is the checkpoint of log '{checkpoint.Origin}', not of '{origin}'",
                "the server mixes repositories: check --repo");
        }

        var keys = logKeys();
        if (!keys.Any(k => NoteKeys.IsSignedBy(note, origin, k)))
        {
            var signers = string.Join(", ", note.Signatures.Select(s => $"{s.KeyName}+{s.KeyId:x8}"));
            throw new CairnException(ErrorCode.LogCheckpointInvalid,
                $"'{where}' (tree of {checkpoint.Size} entries) is not signed by the repository's publishing key ({string.Join(", ", keys.Select(k => NoteKeys.VerifierKey(origin, k)))}); its signatures: {signers}",
                "the checkpoint is forged or signed by an unknown key: use another server, and tell the publisher");
        }

        CheckWitnesses(note, checkpoint, where);

        if (remembered is not null && checkpoint.Size < remembered.Checkpoint.Size)
        {
            throw new CairnException(ErrorCode.LogRollback,
                $"'{where}' is a checkpoint of {checkpoint.Size} entries, older than the {remembered.Checkpoint.Size} entries this client verified before (an old checkpoint replayed, or a stale mirror)",
                $"use a current server; the checkpoint verified last is {RememberedPath(origin)}");
        }

        var tiles = new TileReader(source, checkpoint.Size);
        var root = await tiles.RootAsync(ct).ConfigureAwait(false);
        if (!root.AsSpan().SequenceEqual(checkpoint.Root))
        {
            throw new CairnException(ErrorCode.LogTileInvalid,
                $"the tiles under '{source.Where(LogFiles.Folder + "/tile/")}' give root {Convert.ToBase64String(root)} for {checkpoint.Size} entries, but '{where}' says {checkpoint.RootBase64}",
                "a tile is damaged (or a proxy holds a damaged copy): retry or use another server");
        }

        if (remembered is not null && remembered.Checkpoint.Size > 0)
        {
            var old = remembered.Checkpoint;
            var proof = await tiles.ConsistencyProofAsync(old.Size, ct).ConfigureAwait(false);
            if (!Merkle.VerifyConsistency(old.Size, checkpoint.Size, old.Root, checkpoint.Root, proof))
            {
                var evidence = KeepEvidence(origin, remembered.Bytes, bytes, where);
                throw new CairnException(ErrorCode.LogInconsistent,
                    $"'{where}' (tree of {checkpoint.Size} entries, root {checkpoint.RootBase64}) does not extend the tree of {old.Size} entries (root {old.RootBase64}) this client verified before: the log's history was rewritten or forked; evidence kept in {evidence}",
                    $"do not use this server; send {evidence} (both signed checkpoints) to the publisher and other users");
            }

            LastCatchUp = new CatchUpCost(old.Size, checkpoint.Size, proof.Count, tiles.Requests, tiles.HashesRead);
        }

        var verified = new VerifiedCheckpoint(bytes, note, checkpoint, tiles);
        Remember(origin, remembered, verified);
        _verified[origin] = verified;
        return verified;
    }

    private void CheckWitnesses(SignedNote note, Checkpoint checkpoint, string where)
    {
        if (policy is null || policy.Quorum == 0) return;
        var latest = time.GetUtcNow().AddMinutes(10);
        var cosigned = policy.Witnesses.Where(w => NoteKeys.CosignedAt(note, w.Name, w.Key) is { } at && at <= latest).Select(w => w.Name).ToList();
        if (cosigned.Count < policy.Quorum)
        {
            throw new CairnException(ErrorCode.LogWitnessPolicy,
                $"'{where}' (tree of {checkpoint.Size} entries) is cosigned by {cosigned.Count} of the policy's witnesses ({(cosigned.Count == 0 ? "none" : string.Join(", ", cosigned))}), {policy.Quorum} required",
                "wait for the witnesses to cosign (cairn log witness), or check the witness keys in the log policy");
        }
    }

    /// <summary>Checks that <paramref name="revision"/> is recorded in the verified tree; its leaf is found by revision number.</summary>
    public async Task<long> CheckIncludedAsync(VerifiedCheckpoint verified, Manifest revision, ILogSource source, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(verified);
        ArgumentNullException.ThrowIfNull(revision);
        ArgumentNullException.ThrowIfNull(source);
        var size = verified.Checkpoint.Size;
        var found = await FindAsync(verified.Tiles, revision.Revision, ct).ConfigureAwait(false);
        if (found is not { } leaf)
        {
            throw new CairnException(ErrorCode.LogRevisionNotIncluded,
                $"revision {revision.Revision} of '{revision.Repository}' is not in the publication log at '{source.Where(LogFiles.Checkpoint)}' ({size} entries)",
                "the server offers a revision outside the log (or a head newer than its checkpoint): use another server");
        }

        if (!leaf.Record.Records(revision))
        {
            throw new CairnException(ErrorCode.LogRevisionNotIncluded,
                $"the publication log records revision {revision.Revision} with root {leaf.Record.Root} and catalog {leaf.Record.Catalog}, but the server offers root {revision.Root} and catalog {revision.Catalog}",
                "the server offers a revision the log does not contain: use another server, and tell the publisher");
        }

        var proof = await verified.Tiles.InclusionProofAsync(leaf.Index, ct).ConfigureAwait(false);
        if (!Merkle.VerifyInclusion(leaf.Index, size, Merkle.LeafHash(leaf.Bytes), proof, verified.Checkpoint.Root))
        {
            throw new CairnException(ErrorCode.LogTileInvalid, $"the inclusion proof of entry {leaf.Index} read from '{source.Where(LogFiles.Folder + "/tile/")}' does not verify",
                "a tile is damaged: retry or use another server");
        }

        return leaf.Index;
    }

    private sealed record Leaf(long Index, byte[] Bytes, LogRecord Record);

    /// <summary>The leaf recording revision <paramref name="revision"/>: a binary search over entry bundles by revision (leaves are in revision order), the last bundle first.</summary>
    public static async Task<(long Index, byte[] Bytes, LogRecord Record)?> FindRevisionAsync(TileReader tiles, long revision, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        return await FindAsync(tiles, revision, ct).ConfigureAwait(false) is { } l ? (l.Index, l.Bytes, l.Record) : null;
    }

    private static async Task<Leaf?> FindAsync(TileReader tiles, long revision, CancellationToken ct)
    {
        if (tiles.Size == 0) return null;
        var bundles = (tiles.Size + Tiles.Width - 1) / Tiles.Width;
        var cache = new Dictionary<long, List<LogRecord>>();
        var raw = new Dictionary<long, List<byte[]>>();
        async Task<List<LogRecord>> Bundle(long b)
        {
            if (cache.TryGetValue(b, out var records)) return records;
            var entries = await tiles.EntriesAsync(b, ct).ConfigureAwait(false);
            raw[b] = entries;
            records = [.. entries.Select((e, i) => LogRecord.Decode(e, $"log entry {b * Tiles.Width + i}"))];
            cache[b] = records;
            return records;
        }

        // The largest bundle whose first record is at or below the revision.
        long lo = 0, hi = bundles - 1;
        if ((await Bundle(hi).ConfigureAwait(false))[0].Revision <= revision)
        {
            lo = hi;
        }
        else
        {
            while (lo < hi)
            {
                var mid = lo + (hi - lo + 1) / 2;
                if ((await Bundle(mid).ConfigureAwait(false))[0].Revision <= revision) lo = mid;
                else hi = mid - 1;
            }
        }

        for (var b = lo; b >= Math.Max(0, lo - 1); b--)
        {
            var records = await Bundle(b).ConfigureAwait(false);
            for (var i = records.Count - 1; i >= 0; i--)
            {
                if (records[i].Revision == revision && records[i].Root is not null) return new Leaf(b * Tiles.Width + i, raw[b][i], records[i]);
            }
        }

        return null;
    }

    private VerifiedCheckpoint? Remembered(string origin)
    {
        var path = RememberedPath(origin);
        if (!File.Exists(path)) return null;
        var bytes = File.ReadAllBytes(path);
        var note = SignedNote.Parse(bytes);
        var checkpoint = note is null ? null : Checkpoint.Parse(note.Text);
        if (note is null || checkpoint is null)
        {
            throw new CairnException(ErrorCode.LogCheckpointInvalid, $"the remembered checkpoint '{path}' is damaged", "delete it only if you trust the next checkpoint you will be served");
        }

        return new VerifiedCheckpoint(bytes, note, checkpoint, new TileReader(new NoFiles(), checkpoint.Size));
    }

    private void Remember(string origin, VerifiedCheckpoint? remembered, VerifiedCheckpoint verified)
    {
        if (remembered is not null && remembered.Bytes.AsSpan().SequenceEqual(verified.Bytes)) return;
        lock (_lock)
        {
            var path = RememberedPath(origin);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var tmp = $"{path}.{Environment.ProcessId}.tmp";
            File.WriteAllBytes(tmp, verified.Bytes);
            File.Move(tmp, path, overwrite: true);
        }
    }

    private string KeepEvidence(string origin, byte[] remembered, byte[] offered, string where)
    {
        var now = time.GetUtcNow();
        var dir = Path.Combine(stateDirectory, "log", "evidence");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, $"{Safe(origin)}-{now.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture)}-{Guid.NewGuid().ToString("N")[..8]}.txt");
        var text = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"# cairn publication log: two signed checkpoints of '{origin}' that are not consistent (found {now:O})\n")
            .Append("# verified earlier by this client:\n").Append(Encoding.UTF8.GetString(remembered))
            .Append(CultureInfo.InvariantCulture, $"# then offered by {where}:\n").Append(Encoding.UTF8.GetString(offered));
        File.WriteAllText(path, text.ToString());
        _log.LogError("publication log of {Origin} forked: evidence in {Path}", origin, path);
        return path;
    }

    private static string Safe(string origin) => string.Concat(origin.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));

    private sealed class NoFiles : ILogSource
    {
        public string Where(string path) => path;

        public Task<byte[]?> ReadAsync(string path, long maxBytes, CancellationToken ct) => Task.FromResult<byte[]?>(null);
    }
}

/// <summary>
/// Which witnesses a client requires (docs/security.md): lines "witness VKEY" (a C2SP verifier key of type 0x04,
/// as <c>cairn log witness --show-key</c> prints it) and "quorum N"; '#' starts a comment.
/// </summary>
public sealed record WitnessPolicy(IReadOnlyList<(string Name, PublicKey Key)> Witnesses, int Quorum)
{
    public static WitnessPolicy Load(string path)
    {
        var witnesses = new List<(string, PublicKey)>();
        var quorum = -1;
        var n = 0;
        foreach (var line in File.ReadAllLines(path))
        {
            n++;
            var text = line.Split('#')[0].Trim();
            if (text.Length == 0) continue;
            var parts = text.Split(' ', 2, StringSplitOptions.TrimEntries);
            if (parts is ["witness", var vkey] && NoteKeys.ParseVerifierKey(vkey) is { Type: NoteKeys.CosignatureType } w) witnesses.Add((w.Name, w.Key));
            else if (parts is ["quorum", var q] && int.TryParse(q, NumberStyles.None, CultureInfo.InvariantCulture, out var count)) quorum = count;
            else throw Invalid(path, $"line {n} is neither 'witness VKEY' (a cosignature key, type 0x04) nor 'quorum N'");
        }

        if (quorum < 0) quorum = witnesses.Count;
        if (quorum > witnesses.Count) throw Invalid(path, $"quorum {quorum} is more than the {witnesses.Count} witnesses listed");
        return new WitnessPolicy(witnesses, quorum);
    }

    private static CairnException Invalid(string path, string why) =>
        new(ErrorCode.Usage, $"log policy '{path}': {why}", "write one 'witness NAME+KEYID+KEY' line per witness and 'quorum N' (docs/security.md)");
}
