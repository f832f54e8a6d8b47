using Cairn.Core;
using Cairn.Gateway.Tests.Infrastructure;
using Cairn.Repository;
using Cairn.Repository.FileSystem;

namespace Cairn.Gateway.Tests;

/// <summary>ProductRepository.CommitProductAsync with already-stored extras, and SkipIfBuildKeyPublished, as the gateway uses them.</summary>
public sealed class StoredCommitTests
{
    [Fact]
    public async Task StoredExtrasLandInTheSameRevisionAndASecondCommitOfTheSameBuildKeyIsLeftAlone()
    {
        using var dir = new TempDir();
        await using var repo = await DirectoryRepository.InitAsync(dir.Sub("repo"), "t", "linux-x86_64", TimeProvider.System, null, CancellationToken.None);
        await using var site = new SiteWorkspace("s");
        await using var session = await repo.BeginPublishAsync(CancellationToken.None);
        var first = await site.TreeAsync(new Dictionary<string, string> { ["a.txt"] = "first" });
        var log = await site.FileAsync("whatever-name", "the log\n");
        foreach (var d in await Cairn.Gateway.Client.ObjectUploader.ReachableAsync(site.Objects, [first, log], CancellationToken.None))
        {
            await session.PutAsync(d, await site.Objects.GetAsync(d, CancellationToken.None), CancellationToken.None);
        }

        var options = new PublishOptions { BuildKey = "k1", SkipIfBuildKeyPublished = true, Log = "logs/linux-x86_64/p/1/build.log" };
        var published = await session.CommitProductAsync(new ProductRef("p", "1"), first, [("logs/linux-x86_64/p/1/build.log", log)], options, CancellationToken.None);
        Assert.Equal(PublishOutcome.Published, published.Outcome);
        var head = await repo.HeadAsync(CancellationToken.None);
        var logEntry = await repo.Trees.LookupAsync(head.Root, "logs/linux-x86_64/p/1/build.log", CancellationToken.None);
        Assert.NotNull(logEntry);
        Assert.Equal("build.log", logEntry.Name);
        Assert.Equal(log.Digest, logEntry.Digest);

        // Another tree under the same build key (a second builder whose lease expired mid-commit) changes nothing.
        var second = await site.TreeAsync(new Dictionary<string, string> { ["a.txt"] = "second" });
        foreach (var d in await Cairn.Gateway.Client.ObjectUploader.ReachableAsync(site.Objects, [second], CancellationToken.None))
        {
            await session.PutAsync(d, await site.Objects.GetAsync(d, CancellationToken.None), CancellationToken.None);
        }

        var again = await session.CommitProductAsync(new ProductRef("p", "1"), second, [], options with { Log = null }, CancellationToken.None);
        Assert.Equal(PublishOutcome.Unchanged, again.Outcome);
        Assert.Equal(first.Digest, again.Product.Root);
        Assert.Equal(head.Revision, (await repo.HeadAsync(CancellationToken.None)).Revision);

        // Without the option the repository's rule stands: different content is refused, not replaced.
        var e = await Assert.ThrowsAsync<CairnException>(() => session.CommitProductAsync(new ProductRef("p", "1"), second, [], new PublishOptions { BuildKey = "k1" }, CancellationToken.None));
        Assert.Equal(ErrorCode.ProductExists, e.Code);
    }
}
