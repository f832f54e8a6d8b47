using System.Diagnostics;
using Cairn.Coordination.Sqlite;

namespace Cairn.Coordination.Tests;

/// <summary>The conformance suite on SQLite in a temporary file, plus claims from several processes at once.</summary>
public sealed class SqliteCoordinationStoreTests : CoordinationStoreConformance
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-coord-" + Guid.NewGuid().ToString("n"));

    private string DatabasePath => Path.Combine(_dir, "coordination.db");

    protected override Task CreateDatabaseAsync()
    {
        Directory.CreateDirectory(_dir);
        return Task.CompletedTask;
    }

    protected override Task DropDatabaseAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    protected override ICoordinationStore NewStore(TimeProvider time) => new SqliteCoordinationStore(DatabasePath, time);

    protected override async Task ExecuteSqlAsync(string sql)
    {
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={DatabasePath}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task TheDatabaseIsInWalMode()
    {
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={DatabasePath}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", (string?)await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task ClaimsFromSeveralProcessesAtOnceGrantEachKeyOnce()
    {
        const int processes = 4, keys = 60;
        for (var i = 0; i < processes; i++)
        {
            await Store.RegisterSiteAsync($"proc-{i}", new SiteCapabilities("linux-x86_64", null, []), CancellationToken.None);
        }

        var startFile = Path.Combine(_dir, "start");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var workers = Enumerable.Range(0, processes).Select(i =>
        {
            var psi = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in new[] { typeof(Program).Assembly.Location, "claim-worker", DatabasePath, $"proc-{i}", keys.ToString(System.Globalization.CultureInfo.InvariantCulture), startFile })
            {
                psi.ArgumentList.Add(arg);
            }

            return Process.Start(psi)!;
        }).ToList();

        // Let every worker start up and wait, then release them together.
        await Task.Delay(TimeSpan.FromSeconds(1));
        await File.WriteAllTextAsync(startFile, "go");

        var granted = new List<(string Key, long Token)>();
        foreach (var worker in workers)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            var stdout = worker.StandardOutput.ReadToEndAsync(cts.Token);
            var stderr = worker.StandardError.ReadToEndAsync(cts.Token);
            await worker.WaitForExitAsync(cts.Token);
            Assert.True(worker.ExitCode == 0, $"worker exited {worker.ExitCode}: {await stderr}");
            granted.AddRange((await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(line => line.Split(' '))
                .Select(p => (p[1], long.Parse(p[2], System.Globalization.CultureInfo.InvariantCulture))));
            worker.Dispose();
        }

        Assert.Equal(keys, granted.Count);
        Assert.Equal(keys, granted.Select(g => g.Key).Distinct().Count());
        Assert.Equal(keys, granted.Select(g => g.Token).Distinct().Count());
    }
}
