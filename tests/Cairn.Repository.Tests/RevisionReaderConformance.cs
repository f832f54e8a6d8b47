using Cairn.Core;

namespace Cairn.Repository.Tests;

/// <summary>
/// The read part of the revision-store suite — head, revisions, history, a torn revision above the head — for every
/// backend a repository can be read from, HTTP included. The repository is written through its public API.
/// </summary>
public abstract class RevisionReaderConformance
{
    /// <summary>A fresh repository (revision 1, empty) whose revisions are signed by <paramref name="signer"/>, if any.</summary>
    protected abstract Task<WritableRepository> InitAsync(IManifestSigner? signer = null);

    /// <summary>Writes a file of the repository as it is, relative to its root (a revision a crashed commit left).</summary>
    protected abstract Task WriteRawAsync(string path, byte[] bytes);

    /// <summary>A reader of the repository <see cref="InitAsync"/> made, through the backend under test, and what owns it.</summary>
    protected abstract Task<(IRevisionReader Reader, IAsyncDisposable Owner)> OpenReaderAsync();

    [Fact]
    public async Task AReaderSeesTheHeadEveryKeptRevisionAndNoTornOne()
    {
        await using (var repo = await InitAsync())
        {
            await repo.TagAsync("one", 1, default);
            var third = await repo.TagAsync("two", 2, default);
            await WriteRawAsync(RepositoryFiles.Revision(4), CairnJson.Serialize(third with { Revision = 4, Parent = 3, Message = "torn" }, CoreJson.Default.Manifest));
        }

        var (reader, owner) = await OpenReaderAsync();
        await using (owner)
        {
            var head = (await reader.ReadHeadAsync(default))!;
            Assert.Equal((3L, "tag two = 2"), (head.Revision, head.Message));
            Assert.Equal(1, head.Tags["one"]);
            Assert.Equal("tag one = 1", (await reader.ReadRevisionAsync(2, default))!.Message);
            Assert.Null(await reader.ReadRevisionAsync(5, default));
            Assert.Equal([1L, 2L, 3L], await reader.ListRevisionsAsync(default).Select(m => m.Revision).ToListAsync());
            Assert.Equal("conformance", reader.Config.Name);
        }
    }
}
