using System.Globalization;

namespace Cairn.Repository;

/// <summary>
/// The names of a repository's files, relative to its root (docs/format/repository.md §4, §6, §9): the same in a
/// directory, a bucket and on an HTTP server. Every backend, the server and replication name files through here.
/// </summary>
public static class RepositoryFiles
{
    public const string Config = "cairn.json";
    public const string Head = "manifest.json";
    public const string HeadSignature = "manifest.sig";
    public const string Revocations = "revocations.json";
    public const string RevisionsFolder = "revisions";
    public const string PacksFolder = "packs";
    public const string PackExtension = ".pack";
    public const string IndexExtension = ".idx";

    public static string Revision(long revision) => $"{RevisionsFolder}/{RevisionName(revision)}.json";

    /// <summary>The detached signature of a revision (format §6.1).</summary>
    public static string RevisionSignature(long revision) => $"{RevisionsFolder}/{RevisionName(revision)}.sig";

    /// <summary>A revision's file name without extension: its number, zero-padded to 16 digits so names sort as numbers.</summary>
    public static string RevisionName(long revision) => revision.ToString("D16", CultureInfo.InvariantCulture);

    public static string Pack(string name) => $"{PacksFolder}/{name}{PackExtension}";

    public static string PackIndex(string name) => $"{PacksFolder}/{name}{IndexExtension}";
}
