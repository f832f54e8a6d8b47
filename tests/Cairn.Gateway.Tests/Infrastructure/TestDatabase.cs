using Npgsql;

namespace Cairn.Gateway.Tests.Infrastructure;

public enum DatabaseKind
{
    Sqlite,
    PostgreSql,
}

/// <summary>
/// A coordination database of its own for one test, as a <c>--db</c> URL: a SQLite file in a temporary directory,
/// or a fresh schema in the PostgreSQL server at CAIRN_TEST_POSTGRES (scripts/start-postgres.sh), dropped at the end.
/// </summary>
public sealed class TestDatabase : IAsyncDisposable
{
    public const string DefaultPostgres = "Host=127.0.0.1;Port=5432;Username=cairn;Password=cairn;Database=cairn_test";

    private readonly TempDir? _dir;
    private readonly string? _schema;

    private TestDatabase(DatabaseKind kind, string url, TempDir? dir, string? schema)
    {
        Kind = kind;
        Url = url;
        _dir = dir;
        _schema = schema;
    }

    public DatabaseKind Kind { get; }

    /// <summary>The <c>--db</c> argument of cairn gateway.</summary>
    public string Url { get; }

    public static string PostgresConnectionString =>
        Environment.GetEnvironmentVariable("CAIRN_TEST_POSTGRES") is { Length: > 0 } s ? s : DefaultPostgres;

    public static TestDatabase Create(DatabaseKind kind)
    {
        if (kind == DatabaseKind.Sqlite)
        {
            var dir = new TempDir("cairn-gw-db");
            return new TestDatabase(kind, "sqlite:" + dir.Sub("gateway.db"), dir, null);
        }

        var b = new NpgsqlConnectionStringBuilder(PostgresConnectionString);
        var schema = "cairn_gw_" + Guid.NewGuid().ToString("n")[..12];
        var url = $"postgres://{Uri.EscapeDataString(b.Username ?? "")}:{Uri.EscapeDataString(b.Password ?? "")}@{b.Host}:{b.Port}/{Uri.EscapeDataString(b.Database ?? "")}?schema={schema}";
        return new TestDatabase(kind, url, null, schema);
    }

    public async ValueTask DisposeAsync()
    {
        _dir?.Dispose();
        if (_schema is not null)
        {
            try
            {
                await using var connection = new NpgsqlConnection(PostgresConnectionString);
                await connection.OpenAsync();
                await using var command = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {_schema} CASCADE", connection);
                await command.ExecuteNonQueryAsync();
            }
            catch (NpgsqlException)
            {
                // The test has already failed saying the server is unreachable.
            }
        }
    }
}
