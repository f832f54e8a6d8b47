using Cairn.Core;
using Cairn.Core.Transparency;
using Cairn.Repository;
using Cairn.Repository.Transparency;

namespace Cairn.Trust;

/// <summary>A signer that reads its key file at the first signature, so commands that never commit need no access to it.</summary>
public sealed class LazySigner(string keyPath, TimeProvider time, TimeSpan? lifetime = null) : IManifestSigner, ICheckpointSigner
{
    private ManifestSigner? _signer;

    public byte[] Sign(byte[] manifestBytes, Manifest manifest) =>
        (_signer ??= ManifestSigner.Load(keyPath, time, lifetime)).Sign(manifestBytes, manifest);

    public NoteSignature SignNote(string keyName, string text) => (_signer ??= ManifestSigner.Load(keyPath, time, lifetime)).SignNote(keyName, text);
}
