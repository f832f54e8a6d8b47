using Cairn.Repository.Tests;

namespace Cairn.Repository.S3.Tests;

/// <summary>The shared object-store conformance suite, unchanged, against the S3 backend on a real s3rver.</summary>
public sealed class S3ObjectStoreConformanceTests(S3Server server) : ObjectStoreConformance, IClassFixture<S3Server>
{
    private readonly string _url = server.NewUrl();

    protected override async Task<IObjectStore> CreateAsync() => await S3Repository.OpenObjectStoreAsync(_url, default);

    protected override async Task<IObjectStore> ReopenAsync() => await S3Repository.OpenObjectStoreAsync(_url, default);
}
