using Cairn.Core;
using Cairn.Core.Transparency;
using Cairn.Repository;
using Cairn.Repository.Transparency;
using NSec.Cryptography;

namespace Cairn.Trust.Transparency;

/// <summary>
/// A witness (docs/security.md, "Witnesses"): a client with its own state and key that cosigns (C2SP tlog-cosignature/v1)
/// a checkpoint only after verifying it as every client does: signed by the log's key, not smaller than the last one
/// it cosigned, consistent with it. A split view then needs the witnesses to lie too.
/// </summary>
public sealed class Witness(Key key, string name, LogVerifier verifier, TimeProvider time)
{
    public string Name => name;

    /// <summary>The witness's C2SP verifier key (type 0x04), for clients' log policies.</summary>
    public string VerifierKey =>
        $"{name}+{NoteKeys.KeyId(name, NoteKeys.CosignatureType, key.PublicKey):x8}+{Convert.ToBase64String([NoteKeys.CosignatureType, .. key.PublicKey.Export(KeyBlobFormat.RawPublicKey)])}";

    /// <summary>Verifies the source's checkpoint and returns it with this witness's cosignature; refuses (CAIRN-E1308) otherwise.</summary>
    public async Task<(SignedNote Checkpoint, NoteSignature Cosignature)> CosignAsync(ILogSource source, string origin, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(source);
        VerifiedCheckpoint? verified;
        try
        {
            verified = await verifier.VerifyCheckpointAsync(source, origin, ct).ConfigureAwait(false);
        }
        catch (CairnException e) when (e.Code is ErrorCode.LogInconsistent or ErrorCode.LogRollback or ErrorCode.LogCheckpointInvalid or ErrorCode.LogTileInvalid or ErrorCode.LogMissing)
        {
            throw new CairnException(ErrorCode.LogWitnessRefused, $"witness '{name}' does not cosign: {ErrorCodes.Name(e.Code)} {e.Message}", e.Hint, e);
        }

        if (verified is null)
        {
            throw new CairnException(ErrorCode.LogWitnessRefused, $"witness '{name}' does not cosign: '{source.Where(LogFiles.Checkpoint)}' does not exist",
                "the repository keeps no publication log (it is unsigned, or nothing was committed since signing began)");
        }

        return (verified.Note, NoteKeys.Cosign(key, name, verified.Note.Text, time.GetUtcNow()));
    }
}
