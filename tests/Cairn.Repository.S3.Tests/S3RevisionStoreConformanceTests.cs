using Cairn.Repository.Tests;

namespace Cairn.Repository.S3.Tests;

/// <summary>The shared revision-store conformance suite, unchanged, against the S3 backend on a real s3rver.</summary>
public sealed class S3RevisionStoreConformanceTests(S3Server server) : RevisionStoreConformance, IClassFixture<S3Server>
{
    private readonly string _url = server.NewUrl();

    protected override async Task<WritableRepository> InitAsync(IManifestSigner? signer = null) =>
        await S3Repository.InitAsync(_url, "conformance", "linux-x86_64", TimeProvider.System, null, TimeSpan.FromMinutes(1), default, signer);

    protected override Task<WritableRepository> ReopenAsync(IManifestSigner? signer = null) =>
        S3Repository.OpenAsync(_url, TimeProvider.System, null, TimeSpan.FromMinutes(1), default, signer);

    protected override async Task WriteRawAsync(string path, byte[] bytes)
    {
        using var s3 = S3Calls.Open(_url);
        await s3.PutAsync(path, bytes, default);
    }

    protected override async Task<byte[]?> ReadRawAsync(string path)
    {
        using var s3 = S3Calls.Open(_url);
        return (await s3.GetAsync(path, default))?.Bytes;
    }
}
