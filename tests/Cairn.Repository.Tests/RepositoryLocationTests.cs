using Cairn.Core;

namespace Cairn.Repository.Tests;

public class RepositoryLocationTests
{
    [Fact]
    public void EachKindOfLocationParsesToItsType()
    {
        Assert.Equal(new DirectoryLocation("some/repo"), RepositoryLocation.Parse("some/repo"));
        var s3 = Assert.IsType<S3Location>(RepositoryLocation.Parse("s3://bucket/a/b?endpoint=http://127.0.0.1:9000"));
        Assert.Equal(("bucket", "a/b/"), (s3.Bucket, s3.Prefix));
        var http = Assert.IsType<HttpLocation>(RepositoryLocation.Parse("http://a.example/r,https://b.example/r/"));
        Assert.Equal(["http://a.example/r/", "https://b.example/r/"], http.Servers.Select(u => u.AbsoluteUri));
    }

    [Fact]
    public void AWritingCommandRefusesHttpServersWithTheReadOnlyCode()
    {
        var e = Assert.Throws<CairnException>(() => RepositoryLocation.ParseWritable("https://mirror.example/cairn", "publish"));
        Assert.Equal(ErrorCode.RemoteReadOnly, e.Code);
        Assert.Contains("cairn publish", e.Message, StringComparison.Ordinal);
        Assert.NotNull(e.Hint);
        Assert.IsType<S3Location>(RepositoryLocation.ParseWritable("s3://bucket/x", "publish"));
        Assert.IsType<DirectoryLocation>(RepositoryLocation.ParseWritable("/srv/cairn", "publish"));
    }

    [Theory]
    [InlineData("http://", ErrorCode.RemoteInvalidUrl)]
    [InlineData("s3://bucket/x?colour=blue", ErrorCode.StorageInvalidUrl)]
    public void AMalformedUrlIsACodedError(string text, ErrorCode code) =>
        Assert.Equal(code, Assert.Throws<CairnException>(() => RepositoryLocation.Parse(text)).Code);

    [Fact]
    public void BuildsAndCacheOfABucketLiveInTheUserCacheNotUnderAPathNamedAfterTheUrl()
    {
        var s3 = RepositoryLocation.ParseWritable("s3://bucket/x", "build");
        Assert.StartsWith(RepositoryLocation.UserCacheDirectory, s3.BuildsDirectory, StringComparison.Ordinal);
        Assert.DoesNotContain("s3:", s3.CacheDirectory, StringComparison.Ordinal);
        Assert.Equal(Path.Combine(Path.GetFullPath("r"), "builds"), RepositoryLocation.ParseWritable("r", "build").BuildsDirectory);
    }
}
