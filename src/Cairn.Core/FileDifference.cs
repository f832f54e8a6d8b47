namespace Cairn.Core;

/// <summary>
/// One path that differs between two trees (a reference and another output): computed by TreeDiff
/// (src/Cairn.Repository), reported by coherence reports and <c>cairn challenge</c>.
/// </summary>
/// <param name="Kind">added, removed, content, mode, type or symlink.</param>
/// <param name="TextDiff">A unified diff for small text files, else null.</param>
public sealed record FileDifference(string Path, string Kind, long? ReferenceSize, long? OtherSize, Digest? ReferenceDigest, Digest? OtherDigest, string? TextDiff);
