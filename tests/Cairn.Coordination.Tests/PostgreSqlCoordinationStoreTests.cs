using Cairn.Coordination.PostgreSql;
using Npgsql;

namespace Cairn.Coordination.Tests;

/// <summary>
/// The conformance suite against a real PostgreSQL server: CAIRN_TEST_POSTGRES, or the role and database that
/// scripts/start-postgres.sh sets up on loopback (CI runs it). Each test gets a schema of its own. An unreachable
/// server fails these tests; it never skips them.
/// </summary>
public sealed class PostgreSqlCoordinationStoreTests : CoordinationStoreConformance
{
    public const string DefaultConnectionString = "Host=127.0.0.1;Port=5432;Username=cairn;Password=cairn;Database=cairn_test";

    private readonly string _schema = "cairn_test_" + Guid.NewGuid().ToString("n")[..12];

    private static string ServerConnectionString =>
        Environment.GetEnvironmentVariable("CAIRN_TEST_POSTGRES") is { Length: > 0 } s ? s : DefaultConnectionString;

    private string ConnectionString => new NpgsqlConnectionStringBuilder(ServerConnectionString) { SearchPath = _schema }.ToString();

    protected override async Task CreateDatabaseAsync()
    {
        try
        {
            await using var connection = new NpgsqlConnection(ServerConnectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE SCHEMA {_schema}", connection);
            await command.ExecuteNonQueryAsync();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            var shown = new NpgsqlConnectionStringBuilder(ServerConnectionString) { Password = null }.ToString();
            throw new InvalidOperationException(
                $"PostgreSQL is not reachable at '{shown}' ({e.Message}). The PostgreSQL conformance tests need a real server: " +
                "run `bash scripts/start-postgres.sh` (as root; .ci/run does), or set CAIRN_TEST_POSTGRES to a connection string.", e);
        }
    }

    protected override async Task DropDatabaseAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(ServerConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {_schema} CASCADE", connection);
        await command.ExecuteNonQueryAsync();
    }

    protected override async Task ExecuteSqlAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    protected override ICoordinationStore NewStore(TimeProvider time) => new PostgreSqlCoordinationStore(ConnectionString, time);
}
