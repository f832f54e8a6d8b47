using Cairn.Core;

namespace Cairn.Repository.Tests;

/// <summary>
/// The revision-store conformance suite: commit, conflict, head, history, signatures, torn revisions above the head
/// and the two locks, run unchanged against every writable backend (directory here, S3 on s3rver in
/// Cairn.Repository.S3.Tests). The read part runs against HTTP too (RevisionReaderConformance).
/// </summary>
public abstract class RevisionStoreConformance : RevisionReaderConformance
{
    /// <summary>The same repository opened again, as another process would.</summary>
    protected abstract Task<WritableRepository> ReopenAsync(IManifestSigner? signer = null);

    protected override async Task<(IRevisionReader Reader, IAsyncDisposable Owner)> OpenReaderAsync()
    {
        var repo = await ReopenAsync();
        return (repo.Revisions, repo);
    }

    /// <summary>Reads a file of the repository as it is, or null.</summary>
    protected abstract Task<byte[]?> ReadRawAsync(string path);

    private sealed class FixedSigner : IManifestSigner
    {
        public byte[] Sign(byte[] manifestBytes, Manifest manifest) => [.. "signed "u8, .. System.Text.Encoding.ASCII.GetBytes(manifest.Revision.ToString(System.Globalization.CultureInfo.InvariantCulture))];
    }

    private static async Task<Manifest> CommitNextAsync(WritableRepository repo, string message)
    {
        var store = repo.Store;
        await using var commitLock = await store.LockCommitAsync(default);
        var head = (await store.ReadHeadAsync(default))!;
        var next = head with { Revision = head.Revision + 1, Parent = head.Revision, Message = message };
        await store.CommitAsync(next, default);
        return next;
    }

    [Fact]
    public async Task ACommitBecomesTheHeadAndJoinsTheHistory()
    {
        await using var repo = await InitAsync();
        Assert.Equal(1, (await repo.Store.ReadHeadAsync(default))!.Revision);
        await CommitNextAsync(repo, "second");
        await CommitNextAsync(repo, "third");

        await using var other = await ReopenAsync();
        var head = (await other.Store.ReadHeadAsync(default))!;
        Assert.Equal((3L, 2L, "third"), (head.Revision, head.Parent!.Value, head.Message));
        Assert.Equal("second", (await other.Store.ReadRevisionAsync(2, default))!.Message);
        Assert.Null(await other.Store.ReadRevisionAsync(4, default));
        Assert.Equal([1L, 2L, 3L], await other.Store.ListRevisionsAsync(default).Select(m => m.Revision).ToListAsync());
    }

    [Fact]
    public async Task CommittingARevisionThatExistsIsAConflictAndChangesNothing()
    {
        await using var repo = await InitAsync();
        var second = await CommitNextAsync(repo, "second");
        await using (await repo.Store.LockCommitAsync(default))
        {
            var e = await Assert.ThrowsAsync<CairnException>(async () => await repo.Store.CommitAsync(second with { Message = "again" }, default));
            Assert.Equal(ErrorCode.ConcurrentUpdate, e.Code);
        }

        Assert.Equal("second", (await repo.Store.ReadHeadAsync(default))!.Message);
    }

    [Fact]
    public async Task ARevisionAboveTheHeadIsNotHistoryAndIsOverwrittenByTheNextCommit()
    {
        await using var repo = await InitAsync();
        var head = (await repo.Store.ReadHeadAsync(default))!;
        await WriteRawAsync(RepositoryFiles.Revision(2), CairnJson.Serialize(head with { Revision = 2, Parent = 1, Message = "torn" }, CoreJson.Default.Manifest));

        await using var other = await ReopenAsync();
        Assert.Equal([1L], await other.Store.ListRevisionsAsync(default).Select(m => m.Revision).ToListAsync());
        Assert.Equal(1, (await other.Store.ReadHeadAsync(default))!.Revision);
        await CommitNextAsync(other, "after the crash");
        Assert.Equal("after the crash", (await other.Store.ReadRevisionAsync(2, default))!.Message);
    }

    [Fact]
    public async Task DeletedRevisionsLeaveTheHistory()
    {
        await using var repo = await InitAsync();
        await CommitNextAsync(repo, "second");
        await CommitNextAsync(repo, "third");
        await repo.Store.DeleteRevisionAsync(1, default);
        Assert.Null(await repo.Store.ReadRevisionAsync(1, default));
        Assert.Equal([2L, 3L], await repo.Store.ListRevisionsAsync(default).Select(m => m.Revision).ToListAsync());
    }

    [Fact]
    public async Task ASignedRepositoryKeepsEachSignatureAndRefusesAnUnsignedCommit()
    {
        var signer = new FixedSigner();
        await using var repo = await InitAsync(signer);
        await CommitNextAsync(repo, "signed");
        Assert.Equal("signed 2"u8.ToArray(), await ReadRawAsync(RepositoryFiles.RevisionSignature(2)));
        Assert.Equal("signed 2"u8.ToArray(), await ReadRawAsync(RepositoryFiles.HeadSignature));

        await using var unsigned = await ReopenAsync();
        var e = await Assert.ThrowsAsync<CairnException>(() => CommitNextAsync(unsigned, "unsigned"));
        Assert.Equal(ErrorCode.Usage, e.Code);
        Assert.Equal(2, (await unsigned.Store.ReadHeadAsync(default))!.Revision);
    }

    [Fact]
    public async Task TheCommitLockIsHeldByOneAtATime()
    {
        await using var a = await InitAsync();
        await using var b = await ReopenAsync();
        var first = await a.Store.LockCommitAsync(default);
        var second = b.Store.LockCommitAsync(default);
        // Not a timing claim: the second holder must still be waiting while the first holds the lock.
        Assert.NotSame(second, await Task.WhenAny(second, Task.Delay(TimeSpan.FromSeconds(2))));
        await first.DisposeAsync();
        await (await second).DisposeAsync();
    }

    [Fact]
    public async Task TheObjectsLockIsSharedByPublishersAndExclusiveForGc()
    {
        await using var a = await InitAsync();
        await using var b = await ReopenAsync();
        var shared1 = await a.Store.LockObjectsAsync(exclusive: false, default);
        var shared2 = await b.Store.LockObjectsAsync(exclusive: false, default);
        var exclusive = b.Store.LockObjectsAsync(exclusive: true, default);
        Assert.NotSame(exclusive, await Task.WhenAny(exclusive, Task.Delay(TimeSpan.FromSeconds(2))));
        await shared1.DisposeAsync();
        await shared2.DisposeAsync();
        await (await exclusive).DisposeAsync();
    }

    /// <summary>A signer for the log's checkpoint whose signature is fixed bytes: the layout, not the cryptography, is under test here.</summary>
    private sealed class FixedLogSigner : IManifestSigner, Transparency.ICheckpointSigner
    {
        public byte[] Sign(byte[] manifestBytes, Manifest manifest) => "signed"u8.ToArray();

        public Core.Transparency.NoteSignature SignNote(string keyName, string text) => new(keyName, 0x01020304, new byte[64]);
    }

    [Fact]
    public async Task SignedCommitsAreAppendedToThePublicationLogInCommitOrder()
    {
        await using var repo = await InitAsync(new FixedLogSigner());
        await repo.TagAsync("first", 1, default);
        await repo.TagAsync("second", 2, default);
        var note = Core.Transparency.SignedNote.Parse((await ReadRawAsync(LogFiles.Checkpoint))!)!;
        var checkpoint = Core.Transparency.Checkpoint.Parse(note.Text)!;
        Assert.Equal(3, checkpoint.Size);
        Assert.Equal(LogFiles.Origin(repo.Revisions.Config.Name), checkpoint.Origin);
        var bundle = Core.Transparency.Tiles.DecodeBundle((await ReadRawAsync("log/tile/entries/000.p/3"))!, 3)!;
        var records = bundle.Select(b => Core.Transparency.LogRecord.Decode(b, "entry")).ToList();
        Assert.Equal(["init", "tag", "tag"], records.Select(r => r.Kind));
        Assert.Equal([1L, 2, 3], records.Select(r => r.Revision));
        Assert.True(records[2].Records((await repo.HeadAsync(default))));
        // The tiles give the checkpoint's root.
        var tiles = new Transparency.TileReader(repo.Store.LogSource, 3);
        Assert.Equal(checkpoint.RootBase64, Convert.ToBase64String(await tiles.RootAsync(default)));
    }
}
