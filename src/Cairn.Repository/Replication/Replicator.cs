using System.Security.Cryptography;
using Cairn.Core;
using Cairn.Core.Transparency;
using Cairn.Repository;
using Microsoft.Extensions.Logging;

namespace Cairn.Repository.Replication;

public sealed record ReplicateResult(long Revision, int PacksCopied, int PacksPresent, int RevisionsCopied, long BytesCopied, bool HeadMoved);

/// <summary>
/// Copies a repository's files to a mirror in the order that keeps the mirror consistent at every instant:
/// packs (each index after its pack), then revisions (each signature before its revision), then manifest.json.
/// Every file is checked before it lands under its name (pack: SHA-256 = name, hashed while it streams in;
/// index: checksum and bounds; revisions: parse and number), and what already exists and verifies is skipped,
/// so an interrupted run is resumed by running it again. A mirror's head never goes backwards.
/// </summary>
/// <remarks>
/// Durability is batched: packs, indexes, revisions and signatures land by rename without an fsync each, and
/// <see cref="IMirrorEndpoint.FlushAsync"/> fsyncs all of them (and their directories) once, before
/// revocations.json, manifest.sig and manifest.json are written durably. Why a crash before that flush is safe:
/// the durable head only names files that were flushed before it moved, so a file landed but not yet durable is
/// one the head does not reach yet; on restart replicate re-hashes every pack and re-checks every index (a torn
/// one is fetched again), and re-fetches every revision and signature above the mirror's head and compares
/// them byte for byte with the source's; and the flush covers every file the new head reaches, including the
/// ones a crashed run left behind and this run found present. Clients verify every object they read in any case.
/// </remarks>
public sealed class Replicator(IMirrorEndpoint source, IMirrorEndpoint destination, ILogger? logger)
{
    private const int Chunk = 1 << 20;
    private const int PacksInFlight = 4;
    private const int SmallFilesInFlight = 8;

    public async Task<ReplicateResult> RunAsync(CancellationToken ct)
    {
        var (config, headBytes, head, packs) = await ReadSourceAsync(ct).ConfigureAwait(false);
        var destHead = await destination.GetAsync(RepositoryFiles.Head, ct).ConfigureAwait(false) is { } d
            ? MirrorJson.Head(d, $"manifest '{destination.Display}{RepositoryFiles.Head}'") : null;
        var durableRevision = destHead?.Revision ?? 0;

        // Small files are fetched while the packs stream in; they land after the packs.
        using var smallGate = new SemaphoreSlim(SmallFilesInFlight);
        var revisionsTask = FetchRevisionsAsync(head.Revision, durableRevision, smallGate, ct);
        var revocationsTask = source.GetAsync(RepositoryFiles.Revocations, ct);
        var headSignatureTask = source.GetAsync(RepositoryFiles.HeadSignature, ct);
        var checkpointTask = source.GetAsync(LogFiles.Checkpoint, ct);

        var written = false;
        if (await destination.GetAsync(RepositoryFiles.Config, ct).ConfigureAwait(false) is not { } destConfig || !MirrorJson.IsConfig(destConfig))
        {
            await destination.PutUnflushedAsync(RepositoryFiles.Config, config, ct).ConfigureAwait(false);
            written = true;
        }

        var (copied, present, bytes) = await CopyPacksAsync(packs, ct).ConfigureAwait(false);
        written |= copied > 0;
        var fetched = await revisionsTask.ConfigureAwait(false);
        var (revisions, revisionBytes) = await LandRevisionsAsync(fetched, ct).ConfigureAwait(false);
        bytes += revisionBytes;
        written |= revisions > 0;

        // The head last, and never backwards: a stale source must not roll a fresher mirror back.
        var moved = destHead is null || destHead.Revision < head.Revision;
        if (written || moved)
        {
            // Everything the new head reaches is durable before the head moves (see remarks).
            await destination.FlushAsync(DurableKeys(packs, durableRevision, head.Revision, fetched), ct).ConfigureAwait(false);
        }

        // The publication log's tiles before the head, its checkpoint after it (format/transparency-log.md §5).
        var checkpoint = await CopyLogAsync(await checkpointTask.ConfigureAwait(false), ct).ConfigureAwait(false);

        if (await revocationsTask.ConfigureAwait(false) is { } revocations)
        {
            await destination.PutAsync(RepositoryFiles.Revocations, revocations, ct).ConfigureAwait(false);
        }

        if (moved)
        {
            if (await headSignatureTask.ConfigureAwait(false) is { } headSignature)
            {
                await destination.PutAsync(RepositoryFiles.HeadSignature, headSignature, ct).ConfigureAwait(false);
            }

            await destination.PutAsync(RepositoryFiles.Head, headBytes, ct).ConfigureAwait(false);
        }

        if (checkpoint is not null) await destination.PutAsync(LogFiles.Checkpoint, checkpoint, ct).ConfigureAwait(false);
        if (!moved && destHead!.Revision > head.Revision)
        {
            logger?.LogWarning("{Dest} is at revision {Dest} and the source at {Src}: head left alone", destination.Display, destHead.Revision, head.Revision);
        }

        return new ReplicateResult(head.Revision, copied, present, revisions, bytes, moved);
    }

    /// <summary>The source's configuration and head, checked; the head must list its packs.</summary>
    private async Task<(byte[] Config, byte[] HeadBytes, MirrorJson.HeadInfo Head, IReadOnlyList<string> Packs)> ReadSourceAsync(CancellationToken ct)
    {
        // Both first requests at once: one round trip, not two.
        var configTask = source.GetAsync(RepositoryFiles.Config, ct);
        var headTask = source.GetAsync(RepositoryFiles.Head, ct);
        var config = await configTask.ConfigureAwait(false)
            ?? throw new CairnException(ErrorCode.RepositoryNotFound, $"no Cairn repository at {source.Display}", "check the source URL or path");
        var headBytes = await headTask.ConfigureAwait(false)
            ?? throw new CairnException(ErrorCode.RepositoryNotFound, $"{source.Display} has no manifest.json", "initialise or publish to the source first");
        var head = MirrorJson.Head(headBytes, $"manifest '{source.Display}{RepositoryFiles.Head}'");
        var packs = head.Packs ?? throw new CairnException(ErrorCode.RemoteContentRejected,
            $"the head of {source.Display} lists no packs (written before format §6)", "publish once with a current cairn, then replicate");
        if (!MirrorJson.IsConfig(config))
        {
            throw new CairnException(ErrorCode.ManifestMalformed, $"'{source.Display}cairn.json' is not a repository configuration", "run 'cairn verify' on the source");
        }

        return (config, headBytes, head, packs);
    }

    /// <summary>Copies the packs the mirror lacks (or holds torn), a few at a time.</summary>
    private async Task<(int Copied, int Present, long Bytes)> CopyPacksAsync(IReadOnlyList<string> packs, CancellationToken ct)
    {
        int copied = 0, present = 0;
        long bytes = 0;
        await Parallel.ForEachAsync(packs, new ParallelOptions { MaxDegreeOfParallelism = PacksInFlight, CancellationToken = ct }, async (pack, c) =>
        {
            if (await PresentAsync(destination, pack, c).ConfigureAwait(false))
            {
                Interlocked.Increment(ref present);
                return;
            }

            var length = await CopyPackAsync(pack, c).ConfigureAwait(false);
            Interlocked.Increment(ref copied);
            Interlocked.Add(ref bytes, length);
            logger?.LogInformation("copied pack {Pack} ({Bytes} bytes)", pack, length);
        }).ConfigureAwait(false);
        return (copied, present, bytes);
    }

    private async Task<(int Count, long Bytes)> LandRevisionsAsync(IReadOnlyList<FetchedRevision> fetched, CancellationToken ct)
    {
        var (count, bytes) = (0, 0L);
        foreach (var revision in fetched)
        {
            // A signed source's detached signature lands before its revision, so a mirror never serves a signed
            // revision without its signature (format §6.1). Clients check it; it need not be parsed here.
            var key = RevisionKey(revision.Revision);
            if (revision.Signature is { } signature)
            {
                await destination.PutUnflushedAsync(Path.ChangeExtension(key, ".sig"), signature, ct).ConfigureAwait(false);
            }

            await destination.PutUnflushedAsync(key, revision.Bytes, ct).ConfigureAwait(false);
            count++;
            bytes += revision.Bytes.Length + (revision.Signature?.Length ?? 0);
        }

        return (count, bytes);
    }

    /// <summary>Every file the new head reaches that a run may have landed without a flush (see remarks).</summary>
    private static List<string> DurableKeys(IReadOnlyList<string> packs, long durableRevision, long headRevision, IReadOnlyList<FetchedRevision> fetched)
    {
        var keys = new List<string> { RepositoryFiles.Config };
        foreach (var pack in packs)
        {
            keys.Add(RepositoryFiles.Pack(pack));
            keys.Add(RepositoryFiles.PackIndex(pack));
        }

        for (var r = durableRevision + 1; r <= headRevision; r++)
        {
            keys.Add(RevisionKey(r));
            keys.Add(RepositoryFiles.RevisionSignature(r));
        }

        keys.AddRange(fetched.Where(f => f.Revision <= durableRevision).Select(f => RevisionKey(f.Revision)));
        return keys;
    }

    /// <summary>
    /// Copies the source log's entry bundles and tiles the destination lacks; returns the checkpoint to write after the
    /// head, or null when the source has no log or the destination's is not smaller (a mirror's log never shrinks).
    /// </summary>
    private async Task<byte[]?> CopyLogAsync(byte[]? checkpoint, CancellationToken ct)
    {
        if (checkpoint is null || LogSize(checkpoint) is not { } size) return null;
        var destSize = await destination.GetAsync(LogFiles.Checkpoint, ct).ConfigureAwait(false) is { } d ? LogSize(d) ?? 0 : 0;
        if (destSize >= size) return null;
        var files = new List<string>();
        foreach (var tile in Tiles.All(size))
        {
            // A full tile the destination's tree already had is there and never changes.
            if (tile.IsFull && (tile.Index + 1) * Tiles.Width <= Tiles.HashCount(tile.Level, destSize)) continue;
            files.Add(LogFiles.Tile(tile));
            if (tile.Level == 0) files.Add(LogFiles.Entries(tile.Index, tile.Width));
        }

        await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = SmallFilesInFlight, CancellationToken = ct }, async (file, c) =>
        {
            var bytes = await source.GetAsync(file, c).ConfigureAwait(false)
                ?? throw new CairnException(ErrorCode.LogDamaged, $"'{source.Display}{file}' is missing: the source's publication log is incomplete",
                    "run 'cairn log verify' on the source");
            await destination.PutAsync(file, bytes, c).ConfigureAwait(false);
        }).ConfigureAwait(false);
        logger?.LogInformation("copied {Files} log files (tree of {Size} entries)", files.Count, size);
        return checkpoint;
    }

    private static long? LogSize(byte[] checkpoint) =>
        SignedNote.Parse(checkpoint) is { } note && Checkpoint.Parse(note.Text) is { } c ? c.Size : null;

    private sealed record FetchedRevision(long Revision, byte[] Bytes, byte[]? Signature);

    /// <summary>
    /// The revisions (with signatures) the mirror must write, fetched concurrently, in ascending order. At or below
    /// the mirror's durable head a revision that exists and parses is trusted (it was flushed before that head
    /// moved); above it every revision is fetched and compared, since a crashed run may have left it torn.
    /// </summary>
    private async Task<List<FetchedRevision>> FetchRevisionsAsync(long headRevision, long durableRevision, SemaphoreSlim gate, CancellationToken ct)
    {
        var tasks = new List<Task<FetchedRevision?>>();
        for (var r = 1L; r <= headRevision; r++)
        {
            var revision = r;
            tasks.Add(Task.Run(async () =>
            {
                await gate.WaitAsync(ct).ConfigureAwait(false);
                try
                {
                    return await FetchRevisionAsync(revision, durableRevision, ct).ConfigureAwait(false);
                }
                finally
                {
                    gate.Release();
                }
            }, ct));
        }

        var fetched = await Task.WhenAll(tasks).ConfigureAwait(false);
        return fetched.OfType<FetchedRevision>().ToList();
    }

    private async Task<FetchedRevision?> FetchRevisionAsync(long r, long durableRevision, CancellationToken ct)
    {
        var key = RevisionKey(r);
        var signatureKey = Path.ChangeExtension(key, ".sig");
        var existing = await destination.GetAsync(key, ct).ConfigureAwait(false);
        if (r <= durableRevision && existing is not null && Parses(existing, r)) return null;

        var revTask = source.GetAsync(key, ct);
        var sigTask = source.GetAsync(signatureKey, ct);
        var rev = await revTask.ConfigureAwait(false);
        var signature = await sigTask.ConfigureAwait(false);
        // gc deletes old revisions: a gap in the source is not an error.
        if (rev is null) return null;
        if (!Parses(rev, r))
        {
            throw new CairnException(ErrorCode.RemoteContentRejected, $"revision {r} of {source.Display} is malformed", "run 'cairn verify' on the source");
        }

        if (existing is not null && existing.AsSpan().SequenceEqual(rev)
            && (signature is null || (await destination.GetAsync(signatureKey, ct).ConfigureAwait(false)) is { } sig && sig.AsSpan().SequenceEqual(signature)))
        {
            return null;
        }

        return new FetchedRevision(r, rev, signature);
    }

    /// <summary>
    /// Streams one pack from the source into a staged file, hashing each chunk on another thread while the next
    /// one is received; the pack lands under its name only once its SHA-256 equals the name and its index checks
    /// out against its length; the index lands after it.
    /// </summary>
    private async Task<long> CopyPackAsync(string pack, CancellationToken ct)
    {
        var idxTask = source.GetAsync(RepositoryFiles.PackIndex(pack), ct);
        long length = 0;
        using (var staged = destination.Stage(RepositoryFiles.Pack(pack)))
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var stream = await source.OpenReadAsync(RepositoryFiles.Pack(pack), ct).ConfigureAwait(false);
            if (stream is null)
            {
                await idxTask.ConfigureAwait(false);
                throw Missing(pack);
            }

            await using (stream.ConfigureAwait(false))
            {
                byte[][] buffers = [new byte[Chunk], new byte[Chunk]];
                var pending = Task.CompletedTask;
                try
                {
                    for (var i = 0; ; i++)
                    {
                        var buffer = buffers[i & 1];
                        var n = await source.ReadAsync(stream, buffer, ct).ConfigureAwait(false);
                        await pending.ConfigureAwait(false);
                        if (n == 0) break;
                        var offset = length;
                        pending = Task.Run(() =>
                        {
                            hash.AppendData(buffer, 0, n);
                            staged.Write(buffer.AsSpan(0, n), offset);
                        }, ct);
                        length += n;
                        if (i == 0) FaultPoints.Hit("replicate-pack-partial");
                    }
                }
                finally
                {
                    // Never leave the hashing task touching a buffer or the staged file after this block.
                    await pending.ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
                }
            }

            var idx = await idxTask.ConfigureAwait(false);
            if (idx is null || !string.Equals(Convert.ToHexStringLower(hash.GetHashAndReset()), pack, StringComparison.Ordinal)
                || !IndexFits(idx, pack, length, source.Display))
            {
                throw Missing(pack);
            }

            await staged.LandAsync(ct).ConfigureAwait(false);
            FaultPoints.Hit("replicate-pack");
            await destination.PutUnflushedAsync(RepositoryFiles.PackIndex(pack), idx, ct).ConfigureAwait(false);
            return length + idx.Length;
        }
    }

    private CairnException Missing(string pack) => new(ErrorCode.ObjectMissing, $"pack {pack} named by the head of {source.Display} is missing or damaged there",
        "run 'cairn verify --full' on the source; replicate from another server");

    private static string RevisionKey(long r) => RepositoryFiles.Revision(r);

    private static bool Parses(byte[] bytes, long revision) => MirrorJson.IsRevision(bytes, revision);

    private static bool IndexFits(byte[] idx, string pack, long packLength, string display)
    {
        try
        {
            foreach (var (_, loc) in PackIndexCodec.Parse(idx, pack, $"{display}{RepositoryFiles.PackIndex(pack)}", "the copy is damaged; replicate from another server"))
            {
                if (loc.Offset < 4 || loc.Offset + loc.StoredSize > packLength) return false;
            }

            return true;
        }
        catch (CairnException)
        {
            return false;
        }
    }

    /// <summary>Whether the pack and its index exist on the endpoint and check out: pack hash = name, index checksum, entries inside the pack.</summary>
    private static async Task<bool> PresentAsync(IMirrorEndpoint endpoint, string pack, CancellationToken ct)
    {
        if (await endpoint.GetAsync(RepositoryFiles.PackIndex(pack), ct).ConfigureAwait(false) is not { } idx) return false;
        var stream = await endpoint.OpenReadAsync(RepositoryFiles.Pack(pack), ct).ConfigureAwait(false);
        if (stream is null) return false;
        long length = 0;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await using (stream.ConfigureAwait(false))
        {
            var buffer = new byte[Chunk];
            int n;
            while ((n = await endpoint.ReadAsync(stream, buffer, ct).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                length += n;
            }
        }

        return string.Equals(Convert.ToHexStringLower(hash.GetHashAndReset()), pack, StringComparison.Ordinal) && IndexFits(idx, pack, length, endpoint.Display);
    }
}
