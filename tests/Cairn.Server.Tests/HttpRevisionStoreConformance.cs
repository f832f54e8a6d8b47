using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Repository.Http;
using Cairn.Repository.Tests;
using Microsoft.AspNetCore.Builder;

namespace Cairn.Server.Tests;

/// <summary>The read part of the revision-store suite against HttpRevisionStore, reading an in-process cairn serve.</summary>
public sealed class HttpRevisionStoreConformance : RevisionReaderConformance, IAsyncLifetime
{
    private readonly TempDir _work = new("cairn-http-rev");
    private WebApplication? _server;

    private string Root => Path.Combine(_work.Path, "repo");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        _work.Dispose();
    }

    protected override async Task<WritableRepository> InitAsync(IManifestSigner? signer = null) =>
        await DirectoryRepository.InitAsync(Root, "conformance", "linux-x86_64", TimeProvider.System, null, default, signer);

    protected override Task WriteRawAsync(string path, byte[] bytes) => File.WriteAllBytesAsync(Path.Combine(Root, path), bytes);

    protected override async Task<(IRevisionReader Reader, IAsyncDisposable Owner)> OpenReaderAsync()
    {
        _server = CairnServer.Build(new ServeOptions { RepositoryPath = Root, Listen = "http://127.0.0.1:0" });
        await _server.StartAsync();
        var client = await HttpRepository.OpenAsync(new RemoteOptions
        {
            Servers = RemoteOptions.ParseServers([CairnServer.Addresses(_server).Single()]),
            CacheDirectory = Path.Combine(_work.Path, "cache"),
        }, TimeProvider.System, null, default);
        return (client.Revisions, client);
    }
}
