using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Repository.Tests;

namespace Cairn.Repository.S3.Tests;

public sealed class S3RepositoryTests(S3Server server) : IClassFixture<S3Server>
{
    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task PublishThenReadThroughANewClient()
    {
        var url = server.NewUrl();
        using var src = new TempDirectory();
        File.WriteAllText(src.Sub("hello.txt"), "hello from s3");
        var big = new byte[3 << 20];
        new Random(1).NextBytes(big);
        File.WriteAllBytes(src.Sub("big.bin"), big);
        await using (var repo = await S3Repository.InitAsync(url, "s3test", null, TimeProvider.System, null, LockTimeout, default))
        {
            var result = await repo.PublishDirectoryAsync(ProductRef.Parse("hello/1.0"), src.Path, new PublishOptions(), null, default);
            Assert.Equal(2, result.Revision);
        }

        await using var reader = await S3Repository.OpenAsync(url, TimeProvider.System, null, LockTimeout, default);
        var head = await reader.HeadAsync(default);
        Assert.Equal(2, head.Revision);
        Assert.NotEmpty(head.Packs!);
        var record = await reader.FindAsync(ProductRef.Parse("hello/1.0"), null, null, default);
        Assert.NotNull(record);

        // The new client reads the very bytes back: the small file and the chunked 3 MiB one.
        Assert.Equal("hello from s3"u8.ToArray(), await ReadBackAsync(reader, record.Root, "hello.txt"));
        Assert.Equal(big, await ReadBackAsync(reader, record.Root, "big.bin"));
    }

    private static async Task<byte[]> ReadBackAsync(ProductRepository repo, Digest root, string path)
    {
        var entry = await repo.Trees.LookupAsync(root, path, default);
        Assert.True(entry is { IsFile: true }, $"{path} is not a file in the published tree");
        using var buffer = new MemoryStream();
        await repo.Trees.CopyContentAsync(entry!, buffer, default);
        return buffer.ToArray();
    }

    [Fact]
    public async Task InitTwiceIsRefused()
    {
        var url = server.NewUrl();
        await (await S3Repository.InitAsync(url, null, null, TimeProvider.System, null, LockTimeout, default)).DisposeAsync();
        var e = await Assert.ThrowsAsync<CairnException>(() => S3Repository.InitAsync(url, null, null, TimeProvider.System, null, LockTimeout, default));
        Assert.Equal(ErrorCode.RepositoryExists, e.Code);
    }

    [Fact]
    public async Task OpeningAnEmptyPrefixIsRepositoryNotFound()
    {
        var e = await Assert.ThrowsAsync<CairnException>(() => S3Repository.OpenAsync(server.NewUrl(), TimeProvider.System, null, LockTimeout, default));
        Assert.Equal(ErrorCode.RepositoryNotFound, e.Code);
    }

    [Fact]
    public async Task ConcurrentPublishersAreSerialised()
    {
        var url = server.NewUrl();
        await (await S3Repository.InitAsync(url, "race", null, TimeProvider.System, null, LockTimeout, default)).DisposeAsync();
        using var dirs = new TempDirectory();
        var tasks = Enumerable.Range(0, 4).Select(async i =>
        {
            var dir = dirs.Sub($"p{i}");
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "f.txt"), $"product {i}");
            await using var repo = await S3Repository.OpenAsync(url, TimeProvider.System, null, LockTimeout, default);
            return await repo.PublishDirectoryAsync(ProductRef.Parse($"p{i}/1.0"), dir, new PublishOptions(), null, default);
        }).ToList();
        var revisions = (await Task.WhenAll(tasks)).Select(r => r.Revision).Order().ToList();
        Assert.Equal([2L, 3L, 4L, 5L], revisions);
        await using var reader = await S3Repository.OpenAsync(url, TimeProvider.System, null, LockTimeout, default);
        var catalog = await reader.CatalogAsync(await reader.HeadAsync(default), default);
        for (var i = 0; i < 4; i++) await reader.FindAsync(ProductRef.Parse($"p{i}/1.0"), null, null, default);
        _ = catalog;
        var listed = new List<long>();
        await foreach (var m in new S3RevisionStoreProbe(url).ListAsync()) listed.Add(m);
        Assert.Equal([1L, 2L, 3L, 4L, 5L], listed);
    }

    [Fact]
    public async Task TheBucketHasTheDirectoryLayout()
    {
        var url = server.NewUrl();
        using var src = new TempDirectory();
        File.WriteAllText(src.Sub("a.txt"), "layout");
        await using (var repo = await S3Repository.InitAsync(url, "layout", null, TimeProvider.System, null, LockTimeout, default))
        {
            await repo.PublishDirectoryAsync(ProductRef.Parse("a/1"), src.Path, new PublishOptions(), null, default);
        }

        var keys = await new S3RevisionStoreProbe(url).KeysAsync();
        Assert.Contains("cairn.json", keys);
        Assert.Contains("manifest.json", keys);
        Assert.Contains("revisions/0000000000000002.json", keys);
        Assert.Contains(keys, k => k.StartsWith("packs/", StringComparison.Ordinal) && k.EndsWith(".idx", StringComparison.Ordinal));
        Assert.DoesNotContain(keys, k => k.StartsWith("locks/", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("s3://")]
    [InlineData("s3://bucket?endpoint=ftp://x")]
    [InlineData("s3://bucket?color=blue")]
    public void MalformedUrlsAreCoded(string url) =>
        Assert.Equal(ErrorCode.StorageInvalidUrl, Assert.Throws<CairnException>(() => S3Location.Parse(url)).Code);

    [Fact]
    public void UrlPartsAreParsed()
    {
        var l = S3Location.Parse("s3://k:s%2Fx@bkt/a/b?endpoint=http://127.0.0.1:9000&region=eu-west-1");
        Assert.Equal(("bkt", "a/b/", "eu-west-1", "k", "s/x"), (l.Bucket, l.Prefix, l.Region, l.AccessKey, l.SecretKey));
        Assert.Equal("s3://bkt/a/b/", l.Display);
    }

    [Fact]
    public async Task UnreachableEndpointIsStorageUnavailable()
    {
        var e = await Assert.ThrowsAsync<CairnException>(() =>
            S3Repository.OpenAsync("s3://k:s@b/p?endpoint=http://127.0.0.1:1", TimeProvider.System, null, LockTimeout, default));
        Assert.Equal(ErrorCode.StorageUnavailable, e.Code);
    }

    /// <summary>Lists keys and revisions straight from the bucket.</summary>
    private sealed class S3RevisionStoreProbe(string url)
    {
        public async Task<List<string>> KeysAsync()
        {
            var l = S3Location.Parse(url);
            using var client = l.CreateClient();
            var response = await client.ListObjectsV2Async(new Amazon.S3.Model.ListObjectsV2Request { BucketName = l.Bucket, Prefix = l.Prefix });
            return (response.S3Objects ?? []).Select(o => o.Key[l.Prefix.Length..]).ToList();
        }

        public async IAsyncEnumerable<long> ListAsync()
        {
            await using var repo = await S3Repository.OpenAsync(url, TimeProvider.System, null, LockTimeout, default);
            await foreach (var m in repo.Revisions.ListRevisionsAsync(default)) yield return m.Revision;
        }
    }
}
