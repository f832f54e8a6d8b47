using System.Globalization;
using System.Text;
using Cairn.Core.Transparency;

namespace Cairn.Repository;

/// <summary>
/// The names of the publication log's files (docs/format/transparency-log.md §3): the C2SP tlog-tiles layout under
/// <c>log/</c>. Tiles and entry bundles are immutable (cacheable for ever); <c>log/checkpoint</c> changes with
/// every commit. Every backend, the server and replication name them through here.
/// </summary>
public static class LogFiles
{
    public const string Folder = "log";
    public const string Checkpoint = "log/checkpoint";

    /// <summary>Largest tile (256 hashes) or entry bundle (256 records, each at most 64 KiB) a reader accepts.</summary>
    public const long MaxTileBytes = Tiles.Width * Merkle.HashSize;

    public const long MaxBundleBytes = Tiles.Width * (2L + ushort.MaxValue);

    public static string Tile(TileId tile) => $"{Folder}/tile/{tile.Level.ToString(CultureInfo.InvariantCulture)}/{EncodeIndex(tile.Index)}{Partial(tile.Width)}";

    /// <summary>The entry bundle of the leaves a level-0 tile hashes.</summary>
    public static string Entries(long index, int width) => $"{Folder}/tile/entries/{EncodeIndex(index)}{Partial(width)}";

    /// <summary>Whether <paramref name="path"/> is a log file that never changes once written (a full tile or bundle: cache it for ever).</summary>
    public static bool IsImmutable(string path) => path.StartsWith(Folder + "/tile/", StringComparison.Ordinal);

    private static string Partial(int width) => width == Tiles.Width ? "" : $".p/{width.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>A tile index as zero-padded 3-digit path elements, all but the last prefixed with x: 1234067 is x001/x234/067.</summary>
    public static string EncodeIndex(long index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        var groups = new List<string>();
        do
        {
            groups.Add((index % 1000).ToString("D3", CultureInfo.InvariantCulture));
            index /= 1000;
        }
        while (index > 0);

        groups.Reverse();
        var text = new StringBuilder();
        for (var i = 0; i < groups.Count; i++)
        {
            if (i > 0) text.Append('/');
            if (i < groups.Count - 1) text.Append('x');
            text.Append(groups[i]);
        }

        return text.ToString();
    }

    /// <summary>The checkpoint's origin line and note key name: the repository's name, with spaces and '+' (not allowed there) replaced.</summary>
    public static string Origin(string repository) =>
        string.Concat(repository.Select(c => char.IsWhiteSpace(c) || c == '+' || char.IsControl(c) ? '_' : c));
}
