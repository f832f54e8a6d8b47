using System.Data;
using System.Data.Common;
using Cairn.Coordination.Sql;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Cairn.Coordination.Sqlite;

/// <summary>
/// The embedded default: one SQLite file in WAL mode (readers never block the writer). Every write runs in
/// BEGIN IMMEDIATE, which takes SQLite's single write lock at the start, so a claim's or lease's
/// read-check-write cannot interleave with another connection's, in this process or any other. Waiting for the
/// lock is SQLite's busy timeout; what still comes back busy is retried.
/// </summary>
public sealed class SqliteCoordinationStore : SqlCoordinationStore
{
    private static readonly IReadOnlyList<Migration> Scripts = Migration.FromResources(typeof(SqliteCoordinationStore).Assembly);

    private readonly string _connectionString;
    private readonly string _path;
    private readonly int _busyTimeoutMs;

    public SqliteCoordinationStore(string path, TimeProvider time, ILogger? logger = null, TimeSpan? busyTimeout = null)
        : base(time, logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _path = Path.GetFullPath(path);
        _busyTimeoutMs = (int)(busyTimeout ?? TimeSpan.FromSeconds(30)).TotalMilliseconds;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = _path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = Math.Max(1, _busyTimeoutMs / 1000),
        }.ToString();
    }

    /// <summary>Opens (creating if needed) and migrates the database at <paramref name="path"/>.</summary>
    public static async Task<SqliteCoordinationStore> OpenAsync(string path, TimeProvider time, ILogger? logger, CancellationToken ct)
    {
        return await MigratedAsync(new SqliteCoordinationStore(path, time, logger), ct);
    }

    protected override string Description => $"SQLite database {_path}";

    protected override IReadOnlyList<Migration> Migrations => Scripts;

    protected override async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(ct);

            // Per connection: pooled connections keep them, new ones need them.
            await using var pragma = connection.CreateCommand();
            pragma.CommandText = $"PRAGMA busy_timeout = {_busyTimeoutMs}; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;";
            await pragma.ExecuteNonQueryAsync(ct);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    protected override ValueTask<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct) =>
        // deferred: false is BEGIN IMMEDIATE: the write lock is taken now, not at the first write, so two
        // transactions never both read "free" and then race to write.
        ValueTask.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(IsolationLevel.Serializable, deferred: false));

    protected override async Task<long> NextFencingTokenAsync(DbConnection connection, DbTransaction transaction, CancellationToken ct)
    {
        await using var command = Command(connection, transaction, "UPDATE counters SET value = value + 1 WHERE name = 'fencing' RETURNING value");
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }

    protected override async Task PrepareDatabaseAsync(DbConnection connection, CancellationToken ct)
    {
        // WAL is a property of the file: set once, it stays. It cannot change inside a transaction.
        await using var command = Command(connection, null, "PRAGMA journal_mode = WAL");
        var mode = (string?)await command.ExecuteScalarAsync(ct);
        if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
        {
            Logger.LogWarning("{Store}: journal mode is {Mode}, not WAL (a file system without shared memory?)", Description, mode);
        }
    }

    protected override bool IsTransient(Exception exception) =>
        exception is SqliteException { SqliteErrorCode: 5 or 6 }; // SQLITE_BUSY, SQLITE_LOCKED

    public override ValueTask DisposeAsync()
    {
        // Pooled connections keep the file open; a disposed store should not.
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
        return ValueTask.CompletedTask;
    }
}
