using System.Data;
using System.Data.Common;
using Cairn.Coordination.Sql;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Cairn.Coordination.PostgreSql;

/// <summary>
/// Coordination state in PostgreSQL, for many sites and gateways. Writes run at READ COMMITTED: a claim is one
/// INSERT … ON CONFLICT DO UPDATE … WHERE (the old claim is dead), which PostgreSQL evaluates on the latest row
/// version under a row lock, so exactly one of any number of concurrent claimers wins; fencing tokens come from a
/// sequence. Check-then-insert over several rows (lease overlap, promotion, migrations) takes a transaction-scoped
/// advisory lock. Serialisation failures and deadlocks are retried.
/// </summary>
public sealed class PostgreSqlCoordinationStore : SqlCoordinationStore
{
    private static readonly IReadOnlyList<Migration> Scripts = Migration.FromResources(typeof(PostgreSqlCoordinationStore).Assembly);

    // Advisory lock keys: "CAIR" in the high half, the resource in the low half, so they do not collide with
    // other applications' locks on a shared server.
    private const long AdvisoryLockBase = 0x43414952L << 32;

    private readonly NpgsqlDataSource _dataSource;
    private readonly string _description;

    public PostgreSqlCoordinationStore(string connectionString, TimeProvider time, ILogger? logger = null)
        : base(time, logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        _description = $"PostgreSQL database {builder.Database} at {builder.Host}:{builder.Port}" +
            (string.IsNullOrEmpty(builder.SearchPath) ? "" : $" (schema {builder.SearchPath})");
        _dataSource = NpgsqlDataSource.Create(builder);
    }

    /// <summary>Connects and migrates.</summary>
    public static async Task<PostgreSqlCoordinationStore> OpenAsync(string connectionString, TimeProvider time, ILogger? logger, CancellationToken ct)
    {
        return await MigratedAsync(new PostgreSqlCoordinationStore(connectionString, time, logger), ct);
    }

    protected override string Description => _description;

    protected override IReadOnlyList<Migration> Migrations => Scripts;

    protected override string ForUpdate => " FOR UPDATE";

    protected override async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken ct) =>
        await _dataSource.OpenConnectionAsync(ct);

    protected override async ValueTask<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct) =>
        await ((NpgsqlConnection)connection).BeginTransactionAsync(IsolationLevel.ReadCommitted, ct);

    protected override async Task<long> NextFencingTokenAsync(DbConnection connection, DbTransaction transaction, CancellationToken ct)
    {
        await using var command = Command(connection, transaction, "SELECT nextval('cairn_fencing')");
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }

    protected override async Task LockAsync(DbConnection connection, DbTransaction transaction, StoreLock resource, CancellationToken ct)
    {
        await using var command = Command(connection, transaction, "SELECT pg_advisory_xact_lock(@key)", ("@key", AdvisoryLockBase + (long)resource));
        await command.ExecuteNonQueryAsync(ct);
    }

    protected override bool IsTransient(Exception exception) => exception switch
    {
        PostgresException { SqlState: PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected } => true,

        // Two first-time migrations racing on CREATE … IF NOT EXISTS before either holds the advisory lock.
        PostgresException { SqlState: PostgresErrorCodes.UniqueViolation, TableName: "pg_type" or "pg_class" or "pg_namespace" } => true,
        _ => false,
    };

    public override ValueTask DisposeAsync() => _dataSource.DisposeAsync();
}
