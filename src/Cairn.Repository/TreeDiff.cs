using System.Text;
using System.Text.Unicode;
using Cairn.Core;
using DiffPlex;
using DiffPlex.Model;

namespace Cairn.Repository;

public sealed record TreeDiffOptions
{
    /// <summary>At most this many differences are reported; the result then says <see cref="TreeDiffResult.Truncated"/>.</summary>
    public int MaxFiles { get; init; } = 200;

    /// <summary>Files larger than this (on either side) get sizes and digests but no text diff.</summary>
    public long MaxTextDiffBytes { get; init; } = 64 * 1024;

    /// <summary>Unchanged lines shown around each change in a text diff.</summary>
    public int ContextLines { get; init; } = 3;
}

/// <param name="Files">Differences in path order (depth first, names in tree order).</param>
/// <param name="Truncated">True when more than <see cref="TreeDiffOptions.MaxFiles"/> paths differ and the rest were left out.</param>
public sealed record TreeDiffResult(IReadOnlyList<FileDifference> Files, bool Truncated);

/// <summary>
/// Compares two stored trees, possibly in different repositories. Subtrees with equal digests are skipped
/// without being read, so two large, mostly equal trees cost only the directories on the paths that differ.
/// Kinds: added / removed (a file, symlink or empty directory present on one side only; a directory present on
/// one side only is reported file by file), content, mode (the executable bit), type (file / directory / symlink)
/// and symlink (target). A file whose content and mode both changed is reported twice. Digests are those of the
/// stored objects (for large chunked files, the chunk list). Text files (valid UTF-8 without NUL bytes, no larger
/// than <see cref="TreeDiffOptions.MaxTextDiffBytes"/>) that were added, removed or changed get a unified diff.
/// </summary>
public static class TreeDiff
{
    public static async Task<TreeDiffResult> CompareAsync(TreeWalker reference, Digest referenceRoot, TreeWalker other, Digest otherRoot,
        TreeDiffOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(other);
        ArgumentNullException.ThrowIfNull(options);
        var state = new State(reference, other, options);
        if (referenceRoot != otherRoot)
        {
            try
            {
                await state.CompareDirectoriesAsync("", referenceRoot, otherRoot, ct).ConfigureAwait(false);
            }
            catch (LimitReachedException)
            {
                // More differences than asked for: what was collected is the answer.
            }
        }

        return new TreeDiffResult(state.Files, state.Truncated);
    }

    private sealed class LimitReachedException : Exception;

    private sealed class State(TreeWalker reference, TreeWalker other, TreeDiffOptions options)
    {
        public List<FileDifference> Files { get; } = [];

        public bool Truncated { get; private set; }

        private void Add(FileDifference difference)
        {
            EnsureRoom();
            Files.Add(difference);
        }

        /// <summary>Stops the walk once the list is full, before any content is read for a difference that would not fit.</summary>
        private void EnsureRoom()
        {
            if (Files.Count < options.MaxFiles) return;
            Truncated = true;
            throw new LimitReachedException();
        }

        public async Task CompareDirectoriesAsync(string prefix, Digest referenceTree, Digest otherTree, CancellationToken ct)
        {
            var a = await reference.ReadTreeAsync(referenceTree, ct).ConfigureAwait(false);
            var b = await other.ReadTreeAsync(otherTree, ct).ConfigureAwait(false);
            int i = 0, j = 0;
            // Both lists are in canonical (byte-ordinal) order: a merge join visits each name once.
            while (i < a.Count || j < b.Count)
            {
                ct.ThrowIfCancellationRequested();
                var order = i >= a.Count ? 1 : j >= b.Count ? -1 : TreeCodec.CompareNames(a[i].Name, b[j].Name);
                if (order < 0)
                {
                    await OneSidedAsync(prefix + a[i].Name, a[i], reference, removed: true, ct).ConfigureAwait(false);
                    i++;
                }
                else if (order > 0)
                {
                    await OneSidedAsync(prefix + b[j].Name, b[j], other, removed: false, ct).ConfigureAwait(false);
                    j++;
                }
                else
                {
                    await CompareEntriesAsync(prefix + a[i].Name, a[i], b[j], ct).ConfigureAwait(false);
                    i++;
                    j++;
                }
            }
        }

        private async Task CompareEntriesAsync(string path, TreeEntry a, TreeEntry b, CancellationToken ct)
        {
            var typeA = TypeOf(a);
            var typeB = TypeOf(b);
            if (typeA != typeB)
            {
                Add(new FileDifference(path, "type", a.Size, b.Size, DigestOf(a), DigestOf(b), null));
                return;
            }

            switch (typeA)
            {
                case "directory":
                    if (a.Digest != b.Digest) await CompareDirectoriesAsync(path + "/", a.Digest, b.Digest, ct).ConfigureAwait(false);
                    return;
                case "symlink":
                    if (!string.Equals(a.Target, b.Target, StringComparison.Ordinal))
                    {
                        Add(new FileDifference(path, "symlink", a.Size, b.Size, null, null, $"-> {a.Target}\n+> {b.Target}\n"));
                    }

                    return;
                default:
                    if (a.Digest != b.Digest || a.Size != b.Size)
                    {
                        var diff = await TextDiffAsync(path, a, b, ct).ConfigureAwait(false);
                        Add(new FileDifference(path, "content", a.Size, b.Size, a.Digest, b.Digest, diff));
                    }

                    if (a.Executable != b.Executable)
                    {
                        Add(new FileDifference(path, "mode", a.Size, b.Size, a.Digest, b.Digest,
                            $"executable: {(a.Executable ? "yes" : "no")} -> {(b.Executable ? "yes" : "no")}\n"));
                    }

                    return;
            }
        }

        /// <summary>An entry on one side only: files and symlinks are reported, directories file by file.</summary>
        private async Task OneSidedAsync(string path, TreeEntry entry, TreeWalker side, bool removed, CancellationToken ct)
        {
            var kind = removed ? "removed" : "added";
            if (entry.Kind != EntryKind.Directory)
            {
                await AddOneSidedAsync(path, entry, side, removed, ct).ConfigureAwait(false);
                return;
            }

            var any = false;
            await foreach (var (sub, e) in side.WalkAsync(entry.Digest, ct).ConfigureAwait(false))
            {
                any = true;
                if (e.Kind == EntryKind.Directory)
                {
                    // Only empty directories (an 8-byte tree object: magic and a zero count) are worth a line of
                    // their own; the others show through their files.
                    if (e.Size <= 8) Add(removed ? new(path + "/" + sub, kind, e.Size, null, e.Digest, null, null) : new(path + "/" + sub, kind, null, e.Size, null, e.Digest, null));
                    continue;
                }

                await AddOneSidedAsync(path + "/" + sub, e, side, removed, ct).ConfigureAwait(false);
            }

            if (!any) Add(removed ? new(path, kind, entry.Size, null, entry.Digest, null, null) : new(path, kind, null, entry.Size, null, entry.Digest, null));
        }

        private async Task AddOneSidedAsync(string path, TreeEntry e, TreeWalker side, bool removed, CancellationToken ct)
        {
            var kind = removed ? "removed" : "added";
            string? diff = null;
            if (e.Kind == EntryKind.Symlink)
            {
                diff = removed ? $"-> {e.Target}\n" : $"+> {e.Target}\n";
            }
            else if (e.IsFile && e.Size <= options.MaxTextDiffBytes)
            {
                EnsureRoom();
                var text = DecodeText(await ReadAsync(side, e, ct).ConfigureAwait(false));
                if (text is not null) diff = removed ? Unified(path, text, "", options.ContextLines) : Unified(path, "", text, options.ContextLines);
            }

            Add(removed
                ? new FileDifference(path, kind, e.Size, null, DigestOf(e), null, diff)
                : new FileDifference(path, kind, null, e.Size, null, DigestOf(e), diff));
        }

        private async Task<string?> TextDiffAsync(string path, TreeEntry a, TreeEntry b, CancellationToken ct)
        {
            if (a.Size > options.MaxTextDiffBytes || b.Size > options.MaxTextDiffBytes) return null;
            EnsureRoom();
            var textA = DecodeText(await ReadAsync(reference, a, ct).ConfigureAwait(false));
            if (textA is null) return null;
            var textB = DecodeText(await ReadAsync(other, b, ct).ConfigureAwait(false));
            return textB is null ? null : Unified(path, textA, textB, options.ContextLines);
        }
    }

    private static string TypeOf(TreeEntry e) => e.Kind switch
    {
        EntryKind.Directory => "directory",
        EntryKind.Symlink => "symlink",
        _ => "file",
    };

    private static Digest? DigestOf(TreeEntry e) => e.Kind == EntryKind.Symlink ? null : e.Digest;

    private static async Task<byte[]> ReadAsync(TreeWalker walker, TreeEntry file, CancellationToken ct)
    {
        using var buffer = new MemoryStream((int)file.Size);
        await walker.CopyContentAsync(file, buffer, ct).ConfigureAwait(false);
        return buffer.ToArray();
    }

    /// <summary>The content as a string when it is text (valid UTF-8, no NUL byte), else null.</summary>
    public static string? DecodeText(ReadOnlySpan<byte> content) =>
        content.IndexOf((byte)0) < 0 && Utf8.IsValid(content) ? Encoding.UTF8.GetString(content) : null;

    /// <summary>
    /// A unified diff (as <c>diff -u</c> prints it) of two texts, or null when they are equal. Lines are compared
    /// with their line ends, and a last line without one is marked as such.
    /// </summary>
    public static string? Unified(string path, string referenceText, string otherText, int contextLines)
    {
        var result = Differ.Instance.CreateDiffs(referenceText, otherText, ignoreWhiteSpace: false, ignoreCase: false, LineKeepingEnds.Instance);
        var blocks = result.DiffBlocks;
        if (blocks.Count == 0) return null;
        var oldLines = result.PiecesOld;
        var newLines = result.PiecesNew;
        var context = Math.Max(0, contextLines);
        var text = new StringBuilder();
        text.Append("--- a/").Append(path).Append('\n');
        text.Append("+++ b/").Append(path).Append('\n');
        var first = 0;
        while (first < blocks.Count)
        {
            // Blocks whose context would touch or overlap share one hunk.
            var last = first;
            while (last + 1 < blocks.Count && blocks[last + 1].DeleteStartA - (blocks[last].DeleteStartA + blocks[last].DeleteCountA) <= 2 * context)
            {
                last++;
            }

            var start = blocks[first];
            var end = blocks[last];
            var oldStart = Math.Max(0, start.DeleteStartA - context);
            var oldEnd = Math.Min(oldLines.Count, end.DeleteStartA + end.DeleteCountA + context);
            // Outside the blocks the two sides are equal line for line, so offsets carry over.
            var newStart = start.InsertStartB - (start.DeleteStartA - oldStart);
            var newEnd = end.InsertStartB + end.InsertCountB + (oldEnd - (end.DeleteStartA + end.DeleteCountA));
            text.Append("@@ -").Append(Range(oldStart, oldEnd - oldStart)).Append(" +").Append(Range(newStart, newEnd - newStart)).Append(" @@\n");
            var at = oldStart;
            for (var k = first; k <= last; k++)
            {
                var block = blocks[k];
                for (; at < block.DeleteStartA; at++) Line(text, ' ', oldLines[at]);
                for (var d = 0; d < block.DeleteCountA; d++) Line(text, '-', oldLines[block.DeleteStartA + d]);
                for (var n = 0; n < block.InsertCountB; n++) Line(text, '+', newLines[block.InsertStartB + n]);
                at = block.DeleteStartA + block.DeleteCountA;
            }

            for (; at < oldEnd; at++) Line(text, ' ', oldLines[at]);
            first = last + 1;
        }

        return text.ToString();
    }

    private static string Range(int start, int count) => count switch
    {
        0 => $"{start},0",
        1 => $"{start + 1}",
        _ => $"{start + 1},{count}",
    };

    private static void Line(StringBuilder text, char mark, string line)
    {
        text.Append(mark).Append(line);
        if (!line.EndsWith('\n')) text.Append("\n\\ No newline at end of file\n");
    }

    /// <summary>Splits after each '\n', keeping it, so a missing newline at the end is a difference too.</summary>
    private sealed class LineKeepingEnds : IChunker
    {
        public static readonly LineKeepingEnds Instance = new();

        public IReadOnlyList<string> Chunk(string str)
        {
            var lines = new List<string>();
            var start = 0;
            while (start < str.Length)
            {
                var end = str.IndexOf('\n', start);
                end = end < 0 ? str.Length : end + 1;
                lines.Add(str[start..end]);
                start = end;
            }

            return lines;
        }
    }
}
