using Cairn.Core;
using Cairn.Repository.FileSystem;
using Microsoft.Extensions.Time.Testing;

namespace Cairn.Repository.Tests;

public sealed class ProductCopierTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task CopiesEveryObjectAndTheRecordWithTheSameRootAndBuildKey()
    {
        await using var source = await DirectoryRepository.InitAsync(_dir.Sub("source"), "source", "linux-x86_64", _time, null, default);
        await using var target = await DirectoryRepository.InitAsync(_dir.Sub("target"), "target", "linux-x86_64", _time, null, default);
        var tree = _dir.Sub("tree");
        Directory.CreateDirectory(Path.Combine(tree, "a", "same"));
        Directory.CreateDirectory(Path.Combine(tree, "b", "same"));
        File.WriteAllText(Path.Combine(tree, "a", "same", "f"), "equal subtrees are stored once\n");
        File.WriteAllText(Path.Combine(tree, "b", "same", "f"), "equal subtrees are stored once\n");
        var big = new byte[3 << 20];
        new Random(7).NextBytes(big);
        File.WriteAllBytes(Path.Combine(tree, "big.bin"), big);
        File.CreateSymbolicLink(Path.Combine(tree, "link"), "big.bin");
        var published = (await source.PublishDirectoryAsync(new ProductRef("tool", "1.0"), tree, new PublishOptions
        {
            BuildKey = new string('a', 64),
            Dependencies = ["base/1.0"],
            Tests = new TestSummary(3, 0, 1),
        }, null, default)).Product;

        var copy = await ProductCopier.CopyAsync(source, published, target, default);
        Assert.Equal(PublishOutcome.Published, copy.Outcome);
        var record = await target.FindAsync(new ProductRef("tool", "1.0"), null, null, default);
        Assert.Equal(published.Root, record.Root);
        Assert.Equal(published.BuildKey, record.BuildKey);
        Assert.Equal(["base/1.0"], record.Dependencies);
        Assert.Equal(published.Tests, record.Tests);
        Assert.Equal(published.Files, record.Files);

        // The copy is complete: its content reads back from the target alone, chunks included.
        var diff = await TreeDiff.CompareAsync(source.Trees, published.Root, target.Trees, record.Root, new TreeDiffOptions(), default);
        Assert.Empty(diff.Files);
        using var content = new MemoryStream();
        await target.Trees.CopyContentAsync((await target.Trees.LookupAsync(record.Root, "big.bin", default))!, content, default);
        Assert.Equal(big, content.ToArray());
        await using (var reopened = await DirectoryRepository.OpenAsync(_dir.Sub("target"), _time, null, TimeSpan.FromSeconds(30), default))
        {
            var verify = await new Verifier(reopened).VerifyAsync(full: true, null, default);
            Assert.True(verify.Ok, string.Join("\n", verify.Problems.Select(p => p.ToString())));
        }

        // Copying again finds everything there and leaves the product unchanged.
        Assert.Equal(PublishOutcome.Unchanged, (await ProductCopier.CopyAsync(source, published, target, default)).Outcome);
    }
}
