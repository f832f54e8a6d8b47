using Cairn.Core;
using Cairn.Repository.FileSystem;
using Microsoft.Extensions.Time.Testing;

namespace Cairn.Repository.Tests;

public sealed class ProductRepositoryTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => _dir.Dispose();

    private Task<WritableRepository> InitAsync() => DirectoryRepository.InitAsync(_dir.Sub("repo"), "test", "linux-x86_64", _time, null, default);

    private Task<WritableRepository> OpenAsync() => DirectoryRepository.OpenAsync(_dir.Sub("repo"), _time, null, TimeSpan.FromSeconds(30), default);

    /// <summary>A small product tree with every kind of entry, including a large file that gets chunked.</summary>
    private string MakeTree(string name, string flavour = "")
    {
        var root = _dir.Sub(name);
        Directory.CreateDirectory(Path.Combine(root, "bin"));
        Directory.CreateDirectory(Path.Combine(root, "lib", "empty"));
        File.WriteAllText(Path.Combine(root, "bin", "tool"), "#!/bin/sh\necho tool" + flavour + "\n");
        File.SetUnixFileMode(Path.Combine(root, "bin", "tool"), (UnixFileMode)0x1ED);
        File.WriteAllText(Path.Combine(root, "README"), "readme " + flavour);
        File.WriteAllBytes(Path.Combine(root, "lib", "empty.dat"), []);
        var big = new byte[3 << 20];
        new Random(42).NextBytes(big);
        File.WriteAllBytes(Path.Combine(root, "lib", "libbig.so.1.0"), big);
        File.CreateSymbolicLink(Path.Combine(root, "lib", "libbig.so"), "libbig.so.1.0");
        return root;
    }

    [Fact]
    public async Task PublishMaterializeRoundTripKeepsContentModesAndLinks()
    {
        await using var repo = await InitAsync();
        var src = MakeTree("src");
        var result = await repo.PublishDirectoryAsync(new ProductRef("tool", "1.0"), src, new PublishOptions(), null, default);
        Assert.Equal(PublishOutcome.Published, result.Outcome);
        Assert.Equal(4, result.Product.Files);

        var dest = _dir.Sub("dest");
        await new Materializer(repo.Trees).MaterializeAsync(result.Product, dest, new MaterializeOptions { CacheDirectory = _dir.Sub("cache") }, null, default);
        var laid = Path.Combine(dest, "linux-x86_64", "tool", "1.0");
        foreach (var file in new[] { "bin/tool", "README", "lib/empty.dat", "lib/libbig.so.1.0" })
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(src, file)), File.ReadAllBytes(Path.Combine(laid, file)));
        }

        Assert.True((File.GetUnixFileMode(Path.Combine(laid, "bin/tool")) & UnixFileMode.UserExecute) != 0);
        Assert.True((File.GetUnixFileMode(Path.Combine(laid, "README")) & UnixFileMode.UserExecute) == 0);
        Assert.Equal("libbig.so.1.0", new FileInfo(Path.Combine(laid, "lib/libbig.so")).LinkTarget);
        Assert.True(Directory.Exists(Path.Combine(laid, "lib/empty")));
        // Hardlinked from the cache, which is read-only so a build cannot corrupt it.
        Assert.True((File.GetUnixFileMode(Path.Combine(laid, "README")) & UnixFileMode.UserWrite) == 0);
    }

    [Fact]
    public async Task SameContentGivesSameRootWhateverTheHostNoise()
    {
        await using var repo = await InitAsync();
        var a = MakeTree("a");
        var b = MakeTree("b");
        File.SetLastWriteTimeUtc(Path.Combine(b, "README"), new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        File.SetUnixFileMode(Path.Combine(b, "README"), (UnixFileMode)0x180); // 0600: only owner-execute counts
        var ra = await repo.PublishDirectoryAsync(new ProductRef("a", "1"), a, new PublishOptions(), null, default);
        var rb = await repo.PublishDirectoryAsync(new ProductRef("b", "1"), b, new PublishOptions(), null, default);
        Assert.Equal(ra.Product.Root, rb.Product.Root);
    }

    [Fact]
    public async Task RepublishingIdenticalContentIsANoOpAndDifferentContentIsRefused()
    {
        await using var repo = await InitAsync();
        var product = new ProductRef("tool", "1.0");
        var first = await repo.PublishDirectoryAsync(product, MakeTree("v1"), new PublishOptions(), null, default);
        var again = await repo.PublishDirectoryAsync(product, MakeTree("v1b"), new PublishOptions(), null, default);
        Assert.Equal(PublishOutcome.Unchanged, again.Outcome);
        Assert.Equal(first.Revision, again.Revision);

        var e = await Assert.ThrowsAsync<CairnException>(() => repo.PublishDirectoryAsync(product, MakeTree("v2", "changed"), new PublishOptions(), null, default));
        Assert.Equal(ErrorCode.ProductExists, e.Code);
        Assert.Equal(first.Revision, (await repo.HeadAsync(default)).Revision);

        var replaced = await repo.PublishDirectoryAsync(product, _dir.Sub("v2"), new PublishOptions { Replace = true, ReplaceReason = "broken rpath", PublishedBy = "tester" }, null, default);
        Assert.Equal(PublishOutcome.Replaced, replaced.Outcome);
        var record = await repo.FindAsync(product, null, null, default);
        var replacement = Assert.Single(record.Replaced!);
        Assert.Equal(first.Product.Root, replacement.PreviousRoot);
        Assert.Equal("broken rpath", replacement.Reason);
    }

    [Fact]
    public async Task ABulkCommitPublishesEveryProductInOneRevisionOrNoneOfThem()
    {
        await using var repo = await InitAsync();
        var existing = await repo.PublishDirectoryAsync(new ProductRef("zlib", "1.2.13"), MakeTree("z"), new PublishOptions(), null, default);

        async Task<(ProductRef, TreeEntry, PublishOptions)> ProductAsync(PublishSession session, string name, string content)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(content);
            using var stream = new MemoryStream(bytes);
            var file = await session.Ingest.AddFileAsync("README", stream, bytes.Length, false, default);
            return (new ProductRef(name, "1.0"), await session.Ingest.AddDirectoryAsync("", [file], default), new PublishOptions { BuildKey = "k-" + name, Dependencies = ["zlib/1.2.13"] });
        }

        Manifest manifest;
        await using (var session = await repo.BeginPublishAsync(default))
        {
            var batch = new List<(ProductRef, TreeEntry, PublishOptions)>();
            for (var i = 0; i < 30; i++) batch.Add(await ProductAsync(session, $"p{i:D2}", $"product {i}"));
            manifest = await session.CommitProductsAsync(batch, "bulk", default);
        }

        Assert.Equal(existing.Revision + 1, manifest.Revision);
        var catalog = await repo.CatalogAsync(manifest, default);
        Assert.Equal(31, catalog.Products.Count);
        Assert.Equal(catalog.Products.OrderBy(p => p.Name, StringComparer.Ordinal).Select(p => p.Name), catalog.Products.Select(p => p.Name));
        var p07 = catalog.Find("linux-x86_64", new ProductRef("p07", "1.0"))!;
        Assert.Equal(["zlib/1.2.13"], p07.Dependencies);
        Assert.Equal("k-p07", p07.BuildKey);
        Assert.Equal(p07.Root, (await repo.Trees.LookupAsync(manifest.Root, "linux-x86_64/p07/1.0", default))!.Digest);

        // One product already published with other content refuses the whole batch: the head does not move.
        await using (var session = await repo.BeginPublishAsync(default))
        {
            var batch = new List<(ProductRef, TreeEntry, PublishOptions)> { await ProductAsync(session, "q", "new"), await ProductAsync(session, "p03", "changed") };
            var e = await Assert.ThrowsAsync<CairnException>(() => session.CommitProductsAsync(batch, "bulk", default));
            Assert.Equal(ErrorCode.ProductExists, e.Code);
        }

        var head = await repo.HeadAsync(default);
        Assert.Equal(manifest.Revision, head.Revision);
        Assert.Null((await repo.CatalogAsync(head, default)).Find("linux-x86_64", new ProductRef("q", "1.0")));
    }

    [Fact]
    public async Task ProductsAppearAtTheirDeploymentPathInTheRepositoryTree()
    {
        await using var repo = await InitAsync();
        var r = await repo.PublishDirectoryAsync(new ProductRef("zlib", "1.2.13"), MakeTree("z"), new PublishOptions(), null, default);
        var head = await repo.HeadAsync(default);
        var entry = await repo.Trees.LookupAsync(head.Root, "linux-x86_64/zlib/1.2.13", default);
        Assert.NotNull(entry);
        Assert.Equal(r.Product.Root, entry.Digest);
        Assert.NotNull(await repo.Trees.LookupAsync(head.Root, "linux-x86_64/zlib/1.2.13/bin/tool", default));
    }

    [Fact]
    public async Task RollbackAndTagsMakeNewRevisionsAndHistoryKeepsTheOldOnes()
    {
        await using var repo = await InitAsync();
        await repo.PublishDirectoryAsync(new ProductRef("a", "1"), MakeTree("a"), new PublishOptions(), null, default);
        var afterA = (await repo.HeadAsync(default)).Revision;
        await repo.TagAsync("stable", afterA, default);
        await repo.PublishDirectoryAsync(new ProductRef("b", "1"), MakeTree("b", "b"), new PublishOptions(), null, default);
        Assert.Equal(2, (await repo.CatalogAsync(await repo.HeadAsync(default), default)).Products.Count);

        var rolled = await repo.RollbackAsync(afterA, default);
        var catalog = await repo.CatalogAsync(rolled, default);
        Assert.Equal(["a"], catalog.Products.Select(p => p.Name));
        Assert.Equal(afterA, rolled.Tags["stable"]);
        Assert.Equal(rolled.Revision - 1, rolled.Parent);

        var revisions = new List<long>();
        await foreach (var m in repo.Revisions.ListRevisionsAsync(default)) revisions.Add(m.Revision);
        Assert.Equal(Enumerable.Range(1, (int)rolled.Revision).Select(i => (long)i), revisions);

        await Assert.ThrowsAsync<CairnException>(() => repo.RollbackAsync(999, default));
        var untagged = await repo.TagAsync("stable", null, default);
        Assert.Empty(untagged.Tags);
    }

    [Fact]
    public async Task GcKeepsTaggedAndRecentRevisionsAndDropsTheRest()
    {
        await using var repo = await InitAsync();
        var v1 = await repo.PublishDirectoryAsync(new ProductRef("p", "1"), MakeTree("p1", "one"), new PublishOptions(), null, default);
        await repo.TagAsync("stable", v1.Revision, default);
        await repo.PublishDirectoryAsync(new ProductRef("p", "1"), MakeTree("p2", "two"), new PublishOptions { Replace = true, ReplaceReason = "t" }, null, default);
        await repo.PublishDirectoryAsync(new ProductRef("p", "1"), MakeTree("p3", "three"), new PublishOptions { Replace = true, ReplaceReason = "t" }, null, default);

        var result = await new GarbageCollector(repo).CollectAsync(keepRevisions: 1, dryRun: false, default);
        Assert.True(result.Objects.ObjectsDeleted > 0);
        Assert.DoesNotContain(v1.Revision, result.RevisionsRemoved);

        await using var reopened = await OpenAsync();
        var report = await new Verifier(reopened).VerifyAsync(full: true, null, default);
        Assert.True(report.Ok, string.Join("\n", report.Problems.Select(p => p.Message)));
        // The tagged revision still materializes: its objects were kept.
        var tagged = await reopened.RevisionAsync(v1.Revision, default);
        var product = (await reopened.CatalogAsync(tagged, default)).Products.Single();
        await new Materializer(reopened.Trees).MaterializeAsync(product, _dir.Sub("out"), new MaterializeOptions(), null, default);
        Assert.Equal("readme one", File.ReadAllText(Path.Combine(_dir.Sub("out"), "linux-x86_64/p/1/README")));
    }

    [Fact]
    public async Task ConcurrentPublishersFromSeparateHandlesLoseNothing()
    {
        await (await InitAsync()).DisposeAsync();
        var trees = Enumerable.Range(0, 6).Select(i => MakeTree($"t{i}", $"flavour {i}")).ToList();
        await Task.WhenAll(trees.Select(async (tree, i) =>
        {
            // Real time: waiting for the commit lock polls with TimeProvider delays, which a frozen fake clock never ends.
            await using var repo = await DirectoryRepository.OpenAsync(_dir.Sub("repo"), TimeProvider.System, null, TimeSpan.FromSeconds(60), default);
            await repo.PublishDirectoryAsync(new ProductRef($"pkg{i}", "1"), tree, new PublishOptions(), null, default);
        }));
        await using var check = await OpenAsync();
        var catalog = await check.CatalogAsync(await check.HeadAsync(default), default);
        Assert.Equal(6, catalog.Products.Count);
        Assert.Equal(7, (await check.HeadAsync(default)).Revision);
    }

    [Fact]
    public async Task DependencyClosureListsDependenciesFirstAndNamesMissingOnes()
    {
        await using var repo = await InitAsync();
        await repo.PublishDirectoryAsync(new ProductRef("zlib", "1"), MakeTree("z", "z"), new PublishOptions(), null, default);
        await repo.PublishDirectoryAsync(new ProductRef("libpng", "1"), MakeTree("p", "p"), new PublishOptions { Dependencies = ["zlib/1"] }, null, default);
        await repo.PublishDirectoryAsync(new ProductRef("freetype", "1"), MakeTree("f", "f"), new PublishOptions { Dependencies = ["libpng/1", "zlib/1"] }, null, default);
        await repo.PublishDirectoryAsync(new ProductRef("broken", "1"), MakeTree("b", "b"), new PublishOptions { Dependencies = ["gone/9"] }, null, default);
        var catalog = await repo.CatalogAsync(await repo.HeadAsync(default), default);
        var closure = DependencyClosure.Resolve(catalog, "linux-x86_64", [new ProductRef("freetype", "1")]);
        Assert.Equal(["zlib", "libpng", "freetype"], closure.Select(p => p.Name));
        var e = Assert.Throws<CairnException>(() => DependencyClosure.Resolve(catalog, "linux-x86_64", [new ProductRef("broken", "1")]));
        Assert.Equal(ErrorCode.ProductNotFound, e.Code);
        Assert.Contains("broken/1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DevicesAndFifosAreRefusedWithTheirPath()
    {
        await using var repo = await InitAsync();
        var tree = MakeTree("fifo");
        var fifo = Path.Combine(tree, "pipe");
        using (var p = System.Diagnostics.Process.Start("mkfifo", fifo)) p.WaitForExit();
        var e = await Assert.ThrowsAsync<CairnException>(() => repo.PublishDirectoryAsync(new ProductRef("x", "1"), tree, new PublishOptions(), null, default));
        Assert.Equal(ErrorCode.UnsupportedFileType, e.Code);
        Assert.Contains(fifo, e.Message, StringComparison.Ordinal);
        Assert.Equal(1, (await repo.HeadAsync(default)).Revision);
    }

    [Fact]
    public async Task AChangeToOneChunkOfABigFileStoresLittle()
    {
        await using var repo = await InitAsync();
        var tree = MakeTree("big");
        await repo.PublishDirectoryAsync(new ProductRef("big", "1"), tree, new PublishOptions(), null, default);
        var packsBefore = Directory.GetFiles(_dir.Sub("repo/packs"), "*.pack").Sum(f => new FileInfo(f).Length);

        var path = Path.Combine(tree, "lib", "libbig.so.1.0");
        var bytes = File.ReadAllBytes(path);
        bytes[1_500_000] ^= 0x55;
        File.WriteAllBytes(path, bytes);
        await repo.PublishDirectoryAsync(new ProductRef("big", "2"), tree, new PublishOptions(), null, default);
        var added = Directory.GetFiles(_dir.Sub("repo/packs"), "*.pack").Sum(f => new FileInfo(f).Length) - packsBefore;
        Assert.True(added < Chunker.MaxSize + 64 * 1024, $"a one-byte change stored {added} new bytes");
    }

    [Fact]
    public async Task ExportIsByteForByteReproducible()
    {
        await using var repo = await InitAsync();
        var r = await repo.PublishDirectoryAsync(new ProductRef("tool", "1.0"), MakeTree("src"), new PublishOptions(), null, default);
        var first = new MemoryStream();
        var second = new MemoryStream();
        await new Exporter(repo.Trees).ExportAsync([r.Product], first, default);
        _time.Advance(TimeSpan.FromHours(1));
        await new Exporter(repo.Trees).ExportAsync([r.Product], second, default);
        Assert.True(first.Length > 0);
        Assert.Equal(first.ToArray(), second.ToArray());
    }

    [Fact]
    public async Task MaterializingManyDuplicateFilesThroughOneCacheNeverRaces()
    {
        await using var repo = await InitAsync();
        var src = _dir.Sub("dups");
        for (var d = 0; d < 40; d++)
        {
            Directory.CreateDirectory(Path.Combine(src, $"d{d}"));
            for (var f = 0; f < 50; f++)
            {
                // 2000 files, 7 distinct contents: threads keep unpacking and linking the same cache entries.
                File.WriteAllText(Path.Combine(src, $"d{d}", $"f{f}.txt"), $"content {(d * 50 + f) % 7}");
            }
        }

        var product = (await repo.PublishDirectoryAsync(new ProductRef("dups", "1"), src, new PublishOptions(), null, default)).Product;
        for (var round = 0; round < 5; round++)
        {
            var options = new MaterializeOptions { CacheDirectory = _dir.Sub($"cache{round % 2}") };
            var result = await new Materializer(repo.Trees).MaterializeAsync(product, _dir.Sub($"out{round}"), options, null, default);
            Assert.Equal(2000, result.Files);
            Assert.Equal("content 3", File.ReadAllText(Path.Combine(_dir.Sub($"out{round}"), "linux-x86_64/dups/1/d0/f3.txt")));
        }
    }
}
