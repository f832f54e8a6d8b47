using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Repository;
using Cairn.Repository.FileSystem;

namespace Cairn.Gateway.Tests.Infrastructure;

/// <summary>
/// A gateway service in-process over a real coordination database and a real repository directory (one platform),
/// for the tests of its commit logic; disposed in the reverse order of opening.
/// </summary>
public sealed class InProcessGateway : IAsyncDisposable
{
    public const string Platform = "linux-x86_64";

    private InProcessGateway(TempDir dir, TestDatabase database, ICoordinationStore store, WritableRepository repository, GatewayService service)
    {
        Dir = dir;
        Database = database;
        Store = store;
        Repository = repository;
        Service = service;
    }

    public TempDir Dir { get; }
    public TestDatabase Database { get; }
    public ICoordinationStore Store { get; }
    public WritableRepository Repository { get; }
    public GatewayService Service { get; }
    public string RepoPath => Dir.Sub("repo");

    /// <summary>Claims expire on <paramref name="time"/>; the repository's file locks use the system clock.</summary>
    public static async Task<InProcessGateway> StartAsync(string prefix, DatabaseKind kind, TimeProvider time)
    {
        var dir = new TempDir(prefix);
        var database = TestDatabase.Create(kind);
        var store = await CoordinationDatabase.OpenAsync(database.Url, time, null, CancellationToken.None);
        var repository = await DirectoryRepository.InitAsync(dir.Sub("repo"), "test", Platform, TimeProvider.System, null, CancellationToken.None);
        var service = new GatewayService(store, repository, new GatewayOptions { LeaseWait = TimeSpan.FromSeconds(60) });
        return new InProcessGateway(dir, database, store, repository, service);
    }

    /// <summary>Registers <paramref name="site"/> for the platform and issues it a token of <paramref name="scope"/>.</summary>
    public async Task<IssuedToken> RegisterSiteAsync(string site, TokenScope scope)
    {
        await Store.RegisterSiteAsync(site, new SiteCapabilities(Platform, null, []), CancellationToken.None);
        return await Store.IssueTokenAsync(site, scope, CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        await Service.DisposeAsync();
        await Repository.DisposeAsync();
        await Store.DisposeAsync();
        await Database.DisposeAsync();
        Dir.Dispose();
    }
}
