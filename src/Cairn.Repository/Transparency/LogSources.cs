using Cairn.Core;
using Cairn.Core.Transparency;

namespace Cairn.Repository.Transparency;

/// <summary>Where the log's files are read: a repository directory, a bucket, or one HTTP server.</summary>
public interface ILogSource
{
    /// <summary>A human name for messages (a URL or a path).</summary>
    string Where(string path);

    /// <summary>The file's bytes, null when it does not exist; more than <paramref name="maxBytes"/> is an error.</summary>
    Task<byte[]?> ReadAsync(string path, long maxBytes, CancellationToken ct);
}

/// <summary>Signs checkpoints with the repository's publishing key (a C2SP Ed25519 note signature); implemented by Cairn.Trust.</summary>
public interface ICheckpointSigner
{
    NoteSignature SignNote(string keyName, string text);
}

/// <summary>Checks the log for a remote client (docs/security.md): signature, consistency with the last checkpoint, inclusion; implemented by Cairn.Trust.</summary>
public interface ILogChecker
{
    /// <summary>
    /// Checks that <paramref name="revision"/> is in the log the source's checkpoint commits to, and that this
    /// checkpoint extends the last one verified for the origin; then remembers it. Throws CAIRN-E13xx.
    /// </summary>
    Task CheckAsync(ILogSource source, string origin, Manifest revision, CancellationToken ct);
}
