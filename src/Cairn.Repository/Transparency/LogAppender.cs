using System.Text;
using Cairn.Core;
using Cairn.Core.Transparency;

namespace Cairn.Repository.Transparency;

/// <summary>
/// Appends records to a repository's publication log (docs/format/transparency-log.md §5). Only
/// <see cref="PublishSession"/> calls it, under the commit lock: entry bundles and tiles first, then (after the
/// revision is committed) the signed checkpoint, so a checkpoint never names a tile that is not written.
/// </summary>
internal sealed class LogAppender(WritableRevisionStore store, ICheckpointSigner signer)
{
    private readonly ILogSource _files = store.LogSource;

    public string Origin { get; } = LogFiles.Origin(store.Config.Name);

    /// <summary>The size of the last published checkpoint and the last record in it (null for an empty or absent log).</summary>
    public async Task<(long Size, LogRecord? Last)> ReadStateAsync(CancellationToken ct)
    {
        var bytes = await _files.ReadAsync(LogFiles.Checkpoint, SignedNote.MaxBytes, ct).ConfigureAwait(false);
        if (bytes is null) return (0, null);
        var checkpoint = (SignedNote.Parse(bytes) is { } note ? Checkpoint.Parse(note.Text) : null)
            ?? throw Damaged($"'{_files.Where(LogFiles.Checkpoint)}' is not a signed checkpoint");
        if (checkpoint.Size == 0) return (0, null);
        try
        {
            var reader = new TileReader(_files, checkpoint.Size);
            var last = checkpoint.Size - 1;
            var entries = await reader.EntriesAsync(last / Tiles.Width, ct).ConfigureAwait(false);
            return (checkpoint.Size, LogRecord.Decode(entries[(int)(last % Tiles.Width)], $"log entry {last}"));
        }
        catch (CairnException e) when (e.Code is ErrorCode.LogTileInvalid or ErrorCode.ManifestMalformed)
        {
            throw Damaged(e.Message);
        }
    }

    /// <summary>Writes the entry bundles and tiles of the tree grown by <paramref name="records"/>; returns its (unsigned) checkpoint.</summary>
    public async Task<Checkpoint> AppendAsync(long oldSize, IReadOnlyList<byte[]> records, CancellationToken ct)
    {
        var newSize = oldSize + records.Count;
        var reader = new TileReader(_files, newSize);
        var writes = await BundlesAsync(oldSize, records, ct).ConfigureAwait(false);
        List<byte[]> added = [.. records.Select(r => Merkle.LeafHash(r))];
        for (var level = 0; added.Count > 0; level++)
        {
            var oldCount = Tiles.HashCount(level, oldSize);
            var firstTile = oldCount / Tiles.Width;
            var kept = (int)(oldCount % Tiles.Width);
            List<byte[]> hashes = kept == 0 ? [] : [.. await ReadTileAsync(new TileId(level, firstTile, kept), oldSize, ct).ConfigureAwait(false)];
            hashes.AddRange(added);
            added = [];
            for (var i = 0; i < hashes.Count; i += Tiles.Width)
            {
                var chunk = hashes.GetRange(i, Math.Min(Tiles.Width, hashes.Count - i)).ToArray();
                var tile = new TileId(level, firstTile + i / Tiles.Width, chunk.Length);
                writes.Add((LogFiles.Tile(tile), [.. chunk.SelectMany(h => h)]));
                reader.Seed(tile, chunk);

                // A tile that became full is one hash of the level above.
                if (tile.IsFull) added.Add(Merkle.PerfectRoot(chunk, 0, chunk.Length));
            }
        }

        // Each file is written durably; side by side, so their syncs share the file system's journal commits.
        await Parallel.ForEachAsync(writes, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct },
            async (w, c) => await store.WriteLogFileAsync(w.Path, w.Bytes, c).ConfigureAwait(false)).ConfigureAwait(false);
        return new Checkpoint(Origin, newSize, await reader.RootAsync(ct).ConfigureAwait(false));
    }

    /// <summary>Signs and writes log/checkpoint: the commit point of the log.</summary>
    public async Task PublishAsync(Checkpoint checkpoint, CancellationToken ct)
    {
        var text = checkpoint.ToNoteText();
        var note = new SignedNote(text, [signer.SignNote(Origin, text)]);
        await store.WriteLogFileAsync(LogFiles.Checkpoint, note.EncodeBytes(), ct).ConfigureAwait(false);
    }

    /// <summary>The entry bundles of the grown tree that change, as (path, bytes) to write.</summary>
    private async Task<List<(string Path, byte[] Bytes)>> BundlesAsync(long oldSize, IReadOnlyList<byte[]> records, CancellationToken ct)
    {
        var first = oldSize / Tiles.Width;
        var kept = (int)(oldSize % Tiles.Width);
        var entries = new List<byte[]>();
        if (kept > 0)
        {
            var path = LogFiles.Entries(first, kept);
            var bytes = await _files.ReadAsync(path, LogFiles.MaxBundleBytes, ct).ConfigureAwait(false);
            entries.AddRange((bytes is null ? null : Tiles.DecodeBundle(bytes, kept)) ?? throw Damaged($"entry bundle '{_files.Where(path)}' is missing or damaged"));
        }

        entries.AddRange(records);
        var writes = new List<(string, byte[])>();
        for (var i = 0; i < entries.Count; i += Tiles.Width)
        {
            var chunk = entries.GetRange(i, Math.Min(Tiles.Width, entries.Count - i));
            writes.Add((LogFiles.Entries(first + i / Tiles.Width, chunk.Count), Tiles.EncodeBundle(chunk)));
        }

        return writes;
    }

    private async Task<byte[][]> ReadTileAsync(TileId tile, long size, CancellationToken ct)
    {
        var path = LogFiles.Tile(tile);
        var bytes = await _files.ReadAsync(path, LogFiles.MaxTileBytes, ct).ConfigureAwait(false);
        return (bytes is null ? null : Tiles.Split(tile, bytes)) ?? throw Damaged($"tile '{_files.Where(path)}' of the tree of {size} entries is missing or damaged");
    }

    private static CairnException Damaged(string why) =>
        new(ErrorCode.LogDamaged, $"the repository's publication log is damaged: {why}; nothing was committed",
            "run 'cairn log verify' on the repository and restore log/ from a mirror (cairn replicate)");

    /// <summary>The record of a revision: its kind and subject are the first word and the rest of the manifest's message.</summary>
    public static LogRecord RecordOf(Manifest manifest, string by)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var space = manifest.Message.IndexOf(' ', StringComparison.Ordinal);
        var (kind, subject) = space < 0 ? (manifest.Message, "") : (manifest.Message[..space].TrimEnd(':'), manifest.Message[(space + 1)..]);
        if (Encoding.UTF8.GetByteCount(subject) > 4096) subject = subject[..1024] + "…";
        return new LogRecord(1, kind, manifest.Revision, manifest.Root, manifest.Catalog,
            new SortedDictionary<string, long>(manifest.Tags.ToDictionary(), StringComparer.Ordinal), subject, by, manifest.Timestamp);
    }
}
