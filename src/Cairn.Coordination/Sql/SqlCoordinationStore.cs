using System.Data.Common;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Cairn.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Coordination.Sql;

/// <summary>Resources a backend serialises explicitly, beyond what single statements make atomic.</summary>
public enum StoreLock
{
    Migrations = 1,
    Leases = 2,
    Promotions = 3,
}

/// <summary>
/// <see cref="ICoordinationStore"/> written once over ADO.NET; a backend supplies connections, the write
/// transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: row and advisory locks), the fencing sequence, its schema
/// scripts and which errors are worth a retry. All SQL here is parameterised and runs unchanged on both.
/// Times are stored as Unix milliseconds from the injected <see cref="TimeProvider"/>.
/// </summary>
public abstract class SqlCoordinationStore : ICoordinationStore
{
    private const int MaxAttempts = 8;

    protected SqlCoordinationStore(TimeProvider time, ILogger? logger)
    {
        ArgumentNullException.ThrowIfNull(time);
        Time = time;
        Logger = logger ?? NullLogger.Instance;
    }

    protected TimeProvider Time { get; }

    protected ILogger Logger { get; }

    /// <summary>For messages: "SQLite database /var/lib/cairn/coord.db", "PostgreSQL database cairn at db:5432".</summary>
    protected abstract string Description { get; }

    protected abstract IReadOnlyList<Migration> Migrations { get; }

    protected abstract ValueTask<DbConnection> OpenConnectionAsync(CancellationToken ct);

    /// <summary>A transaction that serialises with every other writer where it has to (see the backends).</summary>
    protected abstract ValueTask<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct);

    /// <summary>The next value of the one fencing sequence shared by claims and leases.</summary>
    protected abstract Task<long> NextFencingTokenAsync(DbConnection connection, DbTransaction transaction, CancellationToken ct);

    /// <summary>Serialises a check-then-insert on <paramref name="resource"/> until the transaction ends (PostgreSQL; SQLite's write lock already does).</summary>
    protected virtual Task LockAsync(DbConnection connection, DbTransaction transaction, StoreLock resource, CancellationToken ct) => Task.CompletedTask;

    /// <summary>Row-lock suffix for SELECTs of rows about to be updated (" FOR UPDATE" on PostgreSQL).</summary>
    protected virtual string ForUpdate => "";

    /// <summary>Work outside any transaction before migrations (SQLite: WAL mode).</summary>
    protected virtual Task PrepareDatabaseAsync(DbConnection connection, CancellationToken ct) => Task.CompletedTask;

    /// <summary>Busy, serialisation failure, deadlock: the write transaction is retried from the start.</summary>
    protected abstract bool IsTransient(Exception exception);

    public abstract ValueTask DisposeAsync();

    // ---- plumbing

    protected long Now() => Time.GetUtcNow().ToUnixTimeMilliseconds();

    protected static DateTimeOffset At(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    protected async Task<DbConnection> ConnectAsync(CancellationToken ct)
    {
        try
        {
            return await OpenConnectionAsync(ct);
        }
        catch (Exception e) when (e is DbException or IOException or TimeoutException or System.Net.Sockets.SocketException)
        {
            throw new CairnException(ErrorCode.CoordinationUnavailable,
                $"cannot open the coordination {Description}: {e.Message}",
                "check that the database is running and reachable and that the connection settings are right", e);
        }
    }

    protected async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> body, CancellationToken ct)
    {
        await using var connection = await ConnectAsync(ct);
        return await body(connection);
    }

    protected async Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> body, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            await using var connection = await ConnectAsync(ct);
            try
            {
                await using var transaction = await BeginWriteAsync(connection, ct);
                var result = await body(connection, transaction);
                await transaction.CommitAsync(ct);
                return result;
            }
            catch (Exception e) when (IsTransient(e) && attempt < MaxAttempts)
            {
                Logger.LogDebug(e, "coordination write retried (attempt {Attempt}): {Message}", attempt, e.Message);

                // Real time, not the injected clock: this only spaces out retries against another writer.
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 20) * attempt), ct);
            }
            catch (Exception e) when (IsTransient(e))
            {
                throw new CairnException(ErrorCode.CoordinationUnavailable,
                    $"the coordination {Description} stayed busy after {MaxAttempts} attempts: {e.Message}",
                    "the database is overloaded or a transaction is stuck; retry later", e);
            }
        }
    }

    protected static DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
#pragma warning disable CA2100 // the SQL is a constant of this class; values go in parameters only
        command.CommandText = sql;
#pragma warning restore CA2100
        foreach (var (name, value) in parameters)
        {
            var p = command.CreateParameter();
            p.ParameterName = name;
            p.Value = value ?? DBNull.Value;
            command.Parameters.Add(p);
        }

        return command;
    }

    protected static async Task<int> ExecuteAsync(DbConnection c, DbTransaction? tx, string sql, CancellationToken ct, params (string, object?)[] parameters)
    {
        await using var command = Command(c, tx, sql, parameters);
        return await command.ExecuteNonQueryAsync(ct);
    }

    private static async Task<List<T>> QueryAsync<T>(DbConnection c, DbTransaction? tx, string sql, Func<DbDataReader, T> map, CancellationToken ct, params (string, object?)[] parameters)
    {
        await using var command = Command(c, tx, sql, parameters);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var list = new List<T>();
        while (await reader.ReadAsync(ct))
        {
            list.Add(map(reader));
        }

        return list;
    }

    private static string? NullableString(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static long? NullableLong(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetInt64(i);

    private static Digest? NullableDigest(DbDataReader r, int i) => r.IsDBNull(i) ? null : Digest.Parse(r.GetString(i));

    private static string ToJson<T>(T value, JsonTypeInfo<T> type) => JsonSerializer.Serialize(value, type);

    private static T FromJson<T>(string json, JsonTypeInfo<T> type) => JsonSerializer.Deserialize(json, type)!;

    // ---- migrations

    /// <summary>Migrates a freshly constructed store, disposing it if that fails; how every backend's OpenAsync ends.</summary>
    protected static async Task<TStore> MigratedAsync<TStore>(TStore store, CancellationToken ct)
        where TStore : SqlCoordinationStore
    {
        try
        {
            await store.MigrateAsync(ct).ConfigureAwait(false);
            return store;
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async Task MigrateAsync(CancellationToken ct)
    {
        await using (var connection = await ConnectAsync(ct))
        {
            await PrepareDatabaseAsync(connection, ct);
        }

        var applied = await WriteAsync(async (c, tx) =>
        {
            await LockAsync(c, tx, StoreLock.Migrations, ct);
            await ExecuteAsync(c, tx, "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)", ct);
            var done = (await QueryAsync(c, tx, "SELECT version FROM schema_migrations", r => r.GetInt64(0), ct)).ToHashSet();
            var known = Migrations.Count == 0 ? 0 : Migrations[^1].Version;
            var newer = done.Where(v => v > known).Order().ToList();
            if (newer.Count > 0)
            {
                throw new CairnException(ErrorCode.CoordinationSchemaTooNew,
                    $"the coordination {Description} has schema version {newer[^1]}, newer than the {known} this cairn knows",
                    "upgrade cairn on this machine to the version the gateway runs");
            }

            var count = 0;
            foreach (var m in Migrations.Where(m => !done.Contains(m.Version)))
            {
                await ExecuteAsync(c, tx, m.Sql, ct);
                await ExecuteAsync(c, tx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (@v, @n, @at)", ct,
                    ("@v", (long)m.Version), ("@n", m.Name), ("@at", Now()));
                Logger.LogInformation("coordination schema: applied migration {Version} {Name} to {Store}", m.Version, m.Name, Description);
                count++;
            }

            return count;
        }, ct);
        Logger.LogDebug("coordination schema up to date ({Applied} migration(s) applied now)", applied);
    }

    public Task<IReadOnlyList<AppliedMigration>> GetAppliedMigrationsAsync(CancellationToken ct) =>
        ReadAsync<IReadOnlyList<AppliedMigration>>(async c => await QueryAsync(c, null,
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version",
            r => new AppliedMigration((int)r.GetInt64(0), r.GetString(1), At(r.GetInt64(2))), ct), ct);

    // ---- sites and tokens

    private const string SiteColumns = "name, platform, environment, labels, registered_at, updated_at";

    private const string SiteSelect = SiteColumns + ", public_key";

    private static Site MapSite(DbDataReader r) => new(
        r.GetString(0),
        new SiteCapabilities(r.GetString(1), NullableString(r, 2), FromJson(r.GetString(3), StoredJson.Default.IReadOnlyListString)),
        At(r.GetInt64(4)),
        At(r.GetInt64(5)))
    {
        PublicKey = NullableString(r, 6),
    };

    private static async Task<Site?> FindSiteAsync(DbConnection c, DbTransaction? tx, string name, CancellationToken ct) =>
        (await QueryAsync(c, tx, $"SELECT {SiteSelect} FROM sites WHERE name = @name", MapSite, ct, ("@name", name))).FirstOrDefault();

    private static async Task<Site> RequireSiteAsync(DbConnection c, DbTransaction? tx, string name, CancellationToken ct) =>
        await FindSiteAsync(c, tx, name, ct) ?? throw new CairnException(ErrorCode.SiteUnknown,
            $"site {name} is not registered with the gateway",
            "register it first (its platform, environment and labels), or fix --site");

    public Task<Site> RegisterSiteAsync(string name, SiteCapabilities capabilities, CancellationToken ct)
    {
        Names.ValidateSite(name);
        ArgumentNullException.ThrowIfNull(capabilities);
        Platforms.Validate(capabilities.Platform);
        var labels = capabilities.Labels.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        return WriteAsync(async (c, tx) =>
        {
            await ExecuteAsync(c, tx,
                $"INSERT INTO sites ({SiteColumns}) VALUES (@name, @platform, @environment, @labels, @now, @now) " +
                "ON CONFLICT (name) DO UPDATE SET platform = excluded.platform, environment = excluded.environment, labels = excluded.labels, updated_at = excluded.updated_at",
                ct, ("@name", name), ("@platform", capabilities.Platform), ("@environment", capabilities.Environment), ("@labels", ToJson(labels, StoredJson.Default.IReadOnlyListString)), ("@now", Now()));
            return (await FindSiteAsync(c, tx, name, ct))!;
        }, ct);
    }

    public Task<Site?> GetSiteAsync(string name, CancellationToken ct) => ReadAsync(c => FindSiteAsync(c, null, name, ct), ct);

    public Task<Site> SetSiteKeyAsync(string name, string publicKey, CancellationToken ct) => WriteAsync(async (c, tx) =>
    {
        await RequireSiteAsync(c, tx, name, ct);
        await ExecuteAsync(c, tx, "UPDATE sites SET public_key = @key, updated_at = @now WHERE name = @name", ct, ("@name", name), ("@key", publicKey), ("@now", Now()));
        return (await FindSiteAsync(c, tx, name, ct))!;
    }, ct);

    public Task<IReadOnlyList<Site>> ListSitesAsync(CancellationToken ct) =>
        ReadAsync<IReadOnlyList<Site>>(async c => await QueryAsync(c, null, $"SELECT {SiteSelect} FROM sites ORDER BY name", MapSite, ct), ct);

    public Task<IssuedToken> IssueTokenAsync(string site, TokenScope scope, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(scope);
        var prefixes = scope.PathPrefixes.Select(p => RepositoryPaths.Normalize(p) is { Length: > 0 } n ? n : "/").Distinct(StringComparer.Ordinal).ToList();
        foreach (var channel in scope.Channels.Where(c => c != "*"))
        {
            Names.ValidateChannel(channel);
        }

        var normalized = new TokenScope(prefixes, [.. scope.Channels.Distinct(StringComparer.Ordinal)]);
        var (id, token) = SiteTokens.Generate();
        return WriteAsync(async (c, tx) =>
        {
            await RequireSiteAsync(c, tx, site, ct);
            var now = Now();
            await ExecuteAsync(c, tx,
                "INSERT INTO site_tokens (id, site, token_hash, path_prefixes, channels, created_at) VALUES (@id, @site, @hash, @paths, @channels, @now)",
                ct, ("@id", id), ("@site", site), ("@hash", SiteTokens.Hash(token)), ("@paths", ToJson(normalized.PathPrefixes, StoredJson.Default.IReadOnlyListString)), ("@channels", ToJson(normalized.Channels, StoredJson.Default.IReadOnlyListString)), ("@now", now));
            return new IssuedToken(id, token, site, normalized, At(now));
        }, ct);
    }

    public async Task<SiteIdentity> AuthenticateAsync(string token, CancellationToken ct)
    {
        var id = SiteTokens.ParseId(token);
        var rows = await ReadAsync(c => QueryAsync(c, null,
            "SELECT site, token_hash, path_prefixes, channels, revoked_at FROM site_tokens WHERE id = @id",
            r => (Site: r.GetString(0), Hash: r.GetString(1), Paths: r.GetString(2), Channels: r.GetString(3), Revoked: NullableLong(r, 4)), ct, ("@id", id)), ct);
        if (rows.Count == 0 || !SiteTokens.Matches(token, rows[0].Hash))
        {
            throw SiteTokens.Invalid();
        }

        var row = rows[0];
        if (row.Revoked is { } revoked)
        {
            throw new CairnException(ErrorCode.TokenRevoked,
                $"site {row.Site}'s token {id} was revoked at {At(revoked):u}",
                "ask the gateway's operator for a new token and replace the token file");
        }

        return new SiteIdentity(row.Site, id, new TokenScope(FromJson(row.Paths, StoredJson.Default.IReadOnlyListString), FromJson(row.Channels, StoredJson.Default.IReadOnlyListString)));
    }

    public Task<bool> RevokeTokenAsync(string tokenId, CancellationToken ct) =>
        WriteAsync(async (c, tx) => await ExecuteAsync(c, tx,
            "UPDATE site_tokens SET revoked_at = @now WHERE id = @id AND revoked_at IS NULL", ct, ("@id", tokenId), ("@now", Now())) > 0, ct);

    public Task<IReadOnlyList<TokenInfo>> ListTokensAsync(string site, CancellationToken ct) =>
        ReadAsync<IReadOnlyList<TokenInfo>>(async c => await QueryAsync(c, null,
            "SELECT id, site, path_prefixes, channels, created_at, revoked_at FROM site_tokens WHERE site = @site ORDER BY created_at, id",
            r => new TokenInfo(r.GetString(0), r.GetString(1),
                new TokenScope(FromJson(r.GetString(2), StoredJson.Default.IReadOnlyListString), FromJson(r.GetString(3), StoredJson.Default.IReadOnlyListString)),
                At(r.GetInt64(4)), NullableLong(r, 5) is { } v ? At(v) : null), ct, ("@site", site)), ct);

    // ---- claims

    private const string ClaimColumns = "build_key, site, fencing_token, acquired_at, expires_at, released_at";

    private sealed record ClaimRow(Claim Claim, long? ReleasedAt)
    {
        public bool LiveAt(long now) => ReleasedAt is null && Claim.ExpiresAt.ToUnixTimeMilliseconds() > now;
    }

    private static ClaimRow MapClaim(DbDataReader r) =>
        new(new Claim(r.GetString(0), r.GetString(1), r.GetInt64(2), At(r.GetInt64(3)), At(r.GetInt64(4))), NullableLong(r, 5));

    private async Task<ClaimRow?> FindClaimAsync(DbConnection c, DbTransaction? tx, string buildKey, bool forUpdate, CancellationToken ct) =>
        (await QueryAsync(c, tx, $"SELECT {ClaimColumns} FROM claims WHERE build_key = @key{(forUpdate ? ForUpdate : "")}", MapClaim, ct, ("@key", buildKey))).FirstOrDefault();

    public Task<ClaimResult> TryClaimAsync(string buildKey, string site, TimeSpan ttl, JobRequirements? requirements, CancellationToken ct)
    {
        Names.ValidateBuildKey(buildKey);
        Names.ValidateTtl(ttl);
        return WriteAsync(async (c, tx) =>
        {
            var registered = await RequireSiteAsync(c, tx, site, ct);
            if (requirements?.MismatchWith(registered.Capabilities) is { } why)
            {
                throw new CairnException(ErrorCode.CapabilityMismatch,
                    $"site {site} cannot take job {buildKey}: {why}",
                    "claim jobs for this site's platform, environment and labels, or register the site with the capabilities it really has");
            }

            var now = Now();
            var current = await FindClaimAsync(c, tx, buildKey, forUpdate: true, ct);
            if (current is not null && current.LiveAt(now))
            {
                return new ClaimResult(false, current.Claim);
            }

            var token = await NextFencingTokenAsync(c, tx, ct);
            var expires = now + (long)ttl.TotalMilliseconds;

            // The WHERE makes the take-over conditional on the old claim being dead even if another transaction
            // inserted or renewed it since the read above.
            var won = await QueryAsync(c, tx,
                $"INSERT INTO claims ({ClaimColumns}) VALUES (@key, @site, @token, @now, @expires, NULL) " +
                "ON CONFLICT (build_key) DO UPDATE SET site = excluded.site, fencing_token = excluded.fencing_token, " +
                "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at, released_at = NULL " +
                "WHERE claims.released_at IS NOT NULL OR claims.expires_at <= @now RETURNING fencing_token",
                r => r.GetInt64(0), ct, ("@key", buildKey), ("@site", site), ("@token", token), ("@now", now), ("@expires", expires));
            if (won.Count == 0)
            {
                var holder = await FindClaimAsync(c, tx, buildKey, forUpdate: false, ct);
                return new ClaimResult(false, holder!.Claim);
            }

            if (current is not null && current.ReleasedAt is null)
            {
                Logger.LogWarning("job {BuildKey}: claim of site {OldSite} (fencing token {OldToken}) expired at {Expired:u}; site {Site} takes it with token {Token}",
                    buildKey, current.Claim.Site, current.Claim.FencingToken, current.Claim.ExpiresAt, site, token);
            }

            return new ClaimResult(true, new Claim(buildKey, site, token, At(now), At(expires)));
        }, ct);
    }

    private static CairnException ClaimLost(string buildKey, string site, long fencingToken, ClaimRow? current, long now)
    {
        var why = current switch
        {
            null => "there is no claim on it",
            { Claim.FencingToken: var t } when t != fencingToken =>
                $"site {current.Claim.Site} holds it now with fencing token {t}",
            { ReleasedAt: not null } => "the claim was released",
            _ when !current.LiveAt(now) => $"the claim expired at {current.Claim.ExpiresAt:u}",
            _ => $"it is held by site {current.Claim.Site}",
        };
        return new CairnException(ErrorCode.ClaimLost,
            $"site {site}'s claim on job {buildKey} with fencing token {fencingToken} is no longer valid: {why}",
            "the result is not published; heartbeat more often than the claim's TTL, or claim the job again");
    }

    public Task<Claim> HeartbeatAsync(string buildKey, string site, long fencingToken, TimeSpan ttl, CancellationToken ct)
    {
        Names.ValidateTtl(ttl);
        return WriteAsync(async (c, tx) =>
        {
            var now = Now();
            var expires = now + (long)ttl.TotalMilliseconds;
            var updated = await ExecuteAsync(c, tx,
                "UPDATE claims SET expires_at = @expires WHERE build_key = @key AND site = @site AND fencing_token = @token AND released_at IS NULL AND expires_at > @now",
                ct, ("@expires", expires), ("@key", buildKey), ("@site", site), ("@token", fencingToken), ("@now", now));
            var current = await FindClaimAsync(c, tx, buildKey, forUpdate: false, ct);
            if (updated == 0)
            {
                throw ClaimLost(buildKey, site, fencingToken, current, now);
            }

            return current!.Claim;
        }, ct);
    }

    public Task<bool> ReleaseAsync(string buildKey, string site, long fencingToken, CancellationToken ct) =>
        WriteAsync(async (c, tx) => await ExecuteAsync(c, tx,
            "UPDATE claims SET released_at = @now WHERE build_key = @key AND site = @site AND fencing_token = @token AND released_at IS NULL AND expires_at > @now",
            ct, ("@now", Now()), ("@key", buildKey), ("@site", site), ("@token", fencingToken)) > 0, ct);

    public Task<Claim> ValidateFencingTokenAsync(string buildKey, string site, long fencingToken, CancellationToken ct) =>
        ReadAsync(async c =>
        {
            var now = Now();
            var current = await FindClaimAsync(c, null, buildKey, forUpdate: false, ct);
            if (current is null || !current.LiveAt(now) || current.Claim.FencingToken != fencingToken || current.Claim.Site != site)
            {
                throw ClaimLost(buildKey, site, fencingToken, current, now);
            }

            return current.Claim;
        }, ct);

    public Task<Claim?> GetClaimAsync(string buildKey, CancellationToken ct) =>
        ReadAsync(async c =>
        {
            var current = await FindClaimAsync(c, null, buildKey, forUpdate: false, ct);
            return current is not null && current.LiveAt(Now()) ? current.Claim : null;
        }, ct);

    public Task<IReadOnlyList<Claim>> ListLiveClaimsAsync(CancellationToken ct) =>
        ReadAsync<IReadOnlyList<Claim>>(async c => [.. (await QueryAsync(c, null,
            $"SELECT {ClaimColumns} FROM claims WHERE released_at IS NULL AND expires_at > @now ORDER BY acquired_at, build_key", MapClaim, ct,
            ("@now", Now()))).Select(r => r.Claim)], ct);

    // ---- leases

    private const string LeaseColumns = "id, site, paths, acquired_at, expires_at, released_at";

    private static (Lease Lease, long? ReleasedAt) MapLease(DbDataReader r) =>
        (new Lease(r.GetInt64(0), r.GetString(1), FromJson(r.GetString(2), StoredJson.Default.IReadOnlyListString), At(r.GetInt64(3)), At(r.GetInt64(4))), NullableLong(r, 5));

    private static List<string> NormalizePaths(IEnumerable<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var list = paths.Select(RepositoryPaths.Normalize).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (list.Count == 0)
        {
            throw new CairnException(ErrorCode.Usage, "a lease needs at least one repository path", "lease the PLATFORM/NAME/VERSION paths the commit writes");
        }

        return list;
    }

    public Task<LeaseResult> AcquireLeaseAsync(IReadOnlyCollection<string> paths, string site, TimeSpan ttl, CancellationToken ct)
    {
        Names.ValidateTtl(ttl);
        var wanted = NormalizePaths(paths);
        return WriteAsync(async (c, tx) =>
        {
            await RequireSiteAsync(c, tx, site, ct);
            await LockAsync(c, tx, StoreLock.Leases, ct);
            var now = Now();
            var live = await QueryAsync(c, tx, $"SELECT {LeaseColumns} FROM leases WHERE released_at IS NULL AND expires_at > @now ORDER BY id", MapLease, ct, ("@now", now));
            var conflicts = live.Select(l => l.Lease).Where(l => l.Paths.Any(p => wanted.Any(w => RepositoryPaths.Overlap(p, w)))).ToList();
            if (conflicts.Count > 0)
            {
                return new LeaseResult(false, null, conflicts);
            }

            var id = await NextFencingTokenAsync(c, tx, ct);
            var expires = now + (long)ttl.TotalMilliseconds;
            await ExecuteAsync(c, tx, $"INSERT INTO leases ({LeaseColumns}) VALUES (@id, @site, @paths, @now, @expires, NULL)",
                ct, ("@id", id), ("@site", site), ("@paths", ToJson(wanted, StoredJson.Default.IReadOnlyListString)), ("@now", now), ("@expires", expires));
            return new LeaseResult(true, new Lease(id, site, wanted, At(now), At(expires)), []);
        }, ct);
    }

    private static CairnException LeaseLost(long leaseId, string site, (Lease Lease, long? ReleasedAt)? row, long now, string? detail = null)
    {
        var why = detail ?? row switch
        {
            null => "there is no such lease",
            { Lease.Site: var s } when s != site => $"it belongs to site {s}",
            { ReleasedAt: not null } => "it was released",
            { Lease.ExpiresAt: var e } when e.ToUnixTimeMilliseconds() <= now => $"it expired at {e:u}",
            _ => "it is not live",
        };
        return new CairnException(ErrorCode.LeaseLost,
            $"site {site}'s publish lease {leaseId} is not valid: {why}",
            "acquire a new lease and commit again; renew leases well within their TTL");
    }

    private static async Task<(Lease Lease, long? ReleasedAt)?> FindLeaseAsync(DbConnection c, DbTransaction? tx, long leaseId, CancellationToken ct)
    {
        var rows = await QueryAsync(c, tx, $"SELECT {LeaseColumns} FROM leases WHERE id = @id", MapLease, ct, ("@id", leaseId));
        return rows.Count == 0 ? null : rows[0];
    }

    public Task<Lease> RenewLeaseAsync(long leaseId, string site, TimeSpan ttl, CancellationToken ct)
    {
        Names.ValidateTtl(ttl);
        return WriteAsync(async (c, tx) =>
        {
            var now = Now();
            var updated = await ExecuteAsync(c, tx,
                "UPDATE leases SET expires_at = @expires WHERE id = @id AND site = @site AND released_at IS NULL AND expires_at > @now",
                ct, ("@expires", now + (long)ttl.TotalMilliseconds), ("@id", leaseId), ("@site", site), ("@now", now));
            var row = await FindLeaseAsync(c, tx, leaseId, ct);
            return updated == 0 ? throw LeaseLost(leaseId, site, row, now) : row!.Value.Lease;
        }, ct);
    }

    public Task<bool> ReleaseLeaseAsync(long leaseId, string site, CancellationToken ct) =>
        WriteAsync(async (c, tx) => await ExecuteAsync(c, tx,
            "UPDATE leases SET released_at = @now WHERE id = @id AND site = @site AND released_at IS NULL",
            ct, ("@now", Now()), ("@id", leaseId), ("@site", site)) > 0, ct);

    public Task<Lease> ValidateLeaseAsync(long leaseId, string site, IReadOnlyCollection<string> paths, CancellationToken ct)
    {
        var wanted = NormalizePaths(paths);
        return ReadAsync(async c =>
        {
            var now = Now();
            var row = await FindLeaseAsync(c, null, leaseId, ct);
            if (row is not { ReleasedAt: null } live || live.Lease.Site != site || live.Lease.ExpiresAt.ToUnixTimeMilliseconds() <= now)
            {
                throw LeaseLost(leaseId, site, row, now);
            }

            var uncovered = wanted.Where(w => !live.Lease.Paths.Any(p => RepositoryPaths.IsWithin(w, p))).ToList();
            return uncovered.Count > 0
                ? throw LeaseLost(leaseId, site, row, now, $"it does not cover {string.Join(", ", uncovered)} (it covers {string.Join(", ", live.Lease.Paths)})")
                : live.Lease;
        }, ct);
    }

    // ---- commits

    private const string CommitColumns = "id, site, token_id, lease_id, build_key, fencing_token, paths, channel, revision, root, message, committed_at";

    private static CommitRecord MapCommit(DbDataReader r) => new(
        r.GetInt64(0),
        new CommitRequest(r.GetString(1), NullableString(r, 2), r.GetInt64(3), NullableString(r, 4), NullableLong(r, 5),
            FromJson(r.GetString(6), StoredJson.Default.IReadOnlyListString), NullableString(r, 7), r.GetInt64(8), NullableDigest(r, 9), r.GetString(10)),
        At(r.GetInt64(11)));

    public Task<CommitRecord> RecordCommitAsync(CommitRequest commit, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(commit);
        var paths = NormalizePaths(commit.Paths);
        return WriteAsync(async (c, tx) =>
        {
            await RequireSiteAsync(c, tx, commit.Site, ct);
            var now = Now();
            var ids = await QueryAsync(c, tx,
                "INSERT INTO commits (site, token_id, lease_id, build_key, fencing_token, paths, channel, revision, root, message, committed_at) " +
                "VALUES (@site, @token, @lease, @key, @fencing, @paths, @channel, @revision, @root, @message, @now) RETURNING id",
                r => r.GetInt64(0), ct,
                ("@site", commit.Site), ("@token", commit.TokenId), ("@lease", commit.LeaseId), ("@key", commit.BuildKey), ("@fencing", commit.FencingToken),
                ("@paths", ToJson(paths, StoredJson.Default.IReadOnlyListString)), ("@channel", commit.Channel), ("@revision", commit.Revision), ("@root", commit.Root?.ToString()),
                ("@message", commit.Message), ("@now", now));
            return new CommitRecord(ids[0], commit with { Paths = paths }, At(now));
        }, ct);
    }

    public Task<IReadOnlyList<CommitRecord>> ListCommitsAsync(long afterId, int limit, CancellationToken ct) =>
        ReadAsync<IReadOnlyList<CommitRecord>>(async c => await QueryAsync(c, null,
            $"SELECT {CommitColumns} FROM commits WHERE id > @after ORDER BY id LIMIT @limit", MapCommit, ct,
            ("@after", afterId), ("@limit", (long)Math.Clamp(limit, 1, 10_000))), ct);

    private const string OperatorActionColumns = "id, action, target, detail, actor, acted_at";

    public Task<OperatorActionRecord> RecordOperatorActionAsync(OperatorAction action, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(action);
        return WriteAsync(async (c, tx) =>
        {
            var now = Now();
            var ids = await QueryAsync(c, tx,
                "INSERT INTO operator_actions (action, target, detail, actor, acted_at) VALUES (@action, @target, @detail, @actor, @now) RETURNING id",
                r => r.GetInt64(0), ct, ("@action", action.Action), ("@target", action.Target), ("@detail", action.Detail), ("@actor", action.Actor), ("@now", now));
            return new OperatorActionRecord(ids[0], action, At(now));
        }, ct);
    }

    public Task<IReadOnlyList<OperatorActionRecord>> ListOperatorActionsAsync(long afterId, int limit, CancellationToken ct) =>
        ReadAsync<IReadOnlyList<OperatorActionRecord>>(async c => await QueryAsync(c, null,
            $"SELECT {OperatorActionColumns} FROM operator_actions WHERE id > @after ORDER BY id LIMIT @limit",
            r => new OperatorActionRecord(r.GetInt64(0), new OperatorAction(r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4)), At(r.GetInt64(5))), ct,
            ("@after", afterId), ("@limit", (long)Math.Clamp(limit, 1, 10_000))), ct);

    // ---- results, coherence, promotion

    public Task<IReadOnlyList<string>> ForgetFailedResultsAsync(string buildKey, CancellationToken ct)
    {
        Names.ValidateBuildKey(buildKey);
        // A result fails when a check failed or it produced no output (docs/coordination.md, "Results").
        return WriteAsync<IReadOnlyList<string>>(async (c, tx) => await QueryAsync(c, tx,
            "DELETE FROM build_results WHERE build_key = @key AND (failed > 0 OR output_root IS NULL) RETURNING site",
            r => r.GetString(0), ct, ("@key", buildKey)), ct);
    }

    private const string ResultColumns = "build_key, site, product, output_root, passed, failed, skipped, tests, environment, duration_ms, log_link, recorded_at";

    private static BuildResult MapResult(DbDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.GetString(2), NullableDigest(r, 3),
            new CheckOutcome((int)r.GetInt64(4), (int)r.GetInt64(5), (int)r.GetInt64(6), NullableString(r, 7) is { } t ? FromJson(t, StoredJson.Default.IReadOnlyListTestCaseResult) : null),
            r.GetString(8), TimeSpan.FromMilliseconds(r.GetInt64(9)), NullableString(r, 10))
        {
            RecordedAt = At(r.GetInt64(11)),
        };

    private static Task<List<BuildResult>> ResultsAsync(DbConnection c, DbTransaction? tx, string buildKey, CancellationToken ct) =>
        QueryAsync(c, tx, $"SELECT {ResultColumns} FROM build_results WHERE build_key = @key ORDER BY recorded_at, site", MapResult, ct, ("@key", buildKey));

    public Task<BuildResult> RecordResultAsync(BuildResult result, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(result);
        Names.ValidateBuildKey(result.BuildKey);
        return WriteAsync(async (c, tx) =>
        {
            await RequireSiteAsync(c, tx, result.Site, ct);
            var now = Now();
            await ExecuteAsync(c, tx,
                $"INSERT INTO build_results ({ResultColumns}) VALUES (@key, @site, @product, @root, @passed, @failed, @skipped, @tests, @environment, @duration, @log, @now) " +
                "ON CONFLICT (build_key, site) DO UPDATE SET product = excluded.product, output_root = excluded.output_root, passed = excluded.passed, " +
                "failed = excluded.failed, skipped = excluded.skipped, tests = excluded.tests, environment = excluded.environment, " +
                "duration_ms = excluded.duration_ms, log_link = excluded.log_link, recorded_at = excluded.recorded_at",
                ct, ("@key", result.BuildKey), ("@site", result.Site), ("@product", result.Product), ("@root", result.OutputRoot?.ToString()),
                ("@passed", (long)result.Checks.Passed), ("@failed", (long)result.Checks.Failed), ("@skipped", (long)result.Checks.Skipped),
                ("@tests", result.Checks.Tests is null ? null : ToJson(result.Checks.Tests, StoredJson.Default.IReadOnlyListTestCaseResult)), ("@environment", result.Environment),
                ("@duration", (long)result.Duration.TotalMilliseconds), ("@log", result.LogLink), ("@now", now));
            return result with { RecordedAt = At(now) };
        }, ct);
    }

    public Task<IReadOnlyList<BuildResult>> ListRecentResultsAsync(int limit, CancellationToken ct) =>
        ReadAsync<IReadOnlyList<BuildResult>>(async c => await QueryAsync(c, null,
            $"SELECT {ResultColumns} FROM build_results ORDER BY recorded_at DESC, build_key, site LIMIT @limit", MapResult, ct,
            ("@limit", (long)Math.Clamp(limit, 1, 100_000))), ct);

    public Task<IReadOnlyList<BuildResult>> GetResultsAsync(string buildKey, CancellationToken ct) =>
        ReadAsync<IReadOnlyList<BuildResult>>(async c => await ResultsAsync(c, null, buildKey, ct), ct);

    public async Task<CoherenceReport> GetCoherenceAsync(string buildKey, CancellationToken ct) =>
        Coherence.Compute(buildKey, await GetResultsAsync(buildKey, ct));

    public Task SetChannelPolicyAsync(ChannelPolicy policy, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(policy);
        Names.ValidateChannel(policy.Channel);
        if (policy.RequiredAgreeingSites < 1)
        {
            throw new CairnException(ErrorCode.Usage, $"channel {policy.Channel} needs at least 1 agreeing site, not {policy.RequiredAgreeingSites}", "use K ≥ 1");
        }

        return WriteAsync(async (c, tx) => await ExecuteAsync(c, tx,
            "INSERT INTO channel_policies (channel, required_sites) VALUES (@channel, @k) ON CONFLICT (channel) DO UPDATE SET required_sites = excluded.required_sites",
            ct, ("@channel", policy.Channel), ("@k", (long)policy.RequiredAgreeingSites)), ct);
    }

    private static async Task<ChannelPolicy> PolicyAsync(DbConnection c, DbTransaction? tx, string channel, CancellationToken ct)
    {
        var stored = await QueryAsync(c, tx, "SELECT required_sites FROM channel_policies WHERE channel = @channel", r => r.GetInt64(0), ct, ("@channel", channel));
        return stored.Count > 0
            ? new ChannelPolicy(channel, (int)stored[0])
            : Coherence.DefaultPolicy(channel) ?? throw new CairnException(ErrorCode.Usage,
                $"channel {channel} has no promotion policy", "set one (the number of sites that must agree), or use testing or stable");
    }

    public Task<ChannelPolicy> GetChannelPolicyAsync(string channel, CancellationToken ct) => ReadAsync(c => PolicyAsync(c, null, channel, ct), ct);

    public Task<PromotionDecision> EvaluatePromotionAsync(string buildKey, string channel, CancellationToken ct) =>
        ReadAsync(async c => Coherence.Evaluate(Coherence.Compute(buildKey, await ResultsAsync(c, null, buildKey, ct)), await PolicyAsync(c, null, channel, ct)), ct);

    private static Promotion MapPromotion(DbDataReader r) => new(r.GetString(0), r.GetString(1), Digest.Parse(r.GetString(2)), (int)r.GetInt64(3), At(r.GetInt64(4)));

    public Task<Promotion> PromoteAsync(string buildKey, string channel, CancellationToken ct)
    {
        Names.ValidateChannel(channel);
        return WriteAsync(async (c, tx) =>
        {
            // Serialised with other promotions so the decision and its record see the same results.
            await LockAsync(c, tx, StoreLock.Promotions, ct);
            var decision = Coherence.Evaluate(Coherence.Compute(buildKey, await ResultsAsync(c, tx, buildKey, ct)), await PolicyAsync(c, tx, channel, ct));
            if (!decision.Allowed)
            {
                throw new CairnException(ErrorCode.PromotionRefused,
                    $"job {buildKey} is not promoted to {channel}: {decision.Reason}",
                    "see the coherence report; promotion follows once enough sites agree and none disagrees");
            }

            await ExecuteAsync(c, tx,
                "INSERT INTO promotions (build_key, channel, output_root, agreeing_sites, promoted_at) VALUES (@key, @channel, @root, @n, @now) ON CONFLICT (build_key, channel) DO NOTHING",
                ct, ("@key", buildKey), ("@channel", channel), ("@root", decision.Root!.Value.ToString()), ("@n", (long)decision.AgreeingSites), ("@now", Now()));
            return (await QueryAsync(c, tx, "SELECT build_key, channel, output_root, agreeing_sites, promoted_at FROM promotions WHERE build_key = @key AND channel = @channel",
                MapPromotion, ct, ("@key", buildKey), ("@channel", channel)))[0];
        }, ct);
    }

    public Task<IReadOnlyList<Promotion>> GetPromotionsAsync(string buildKey, CancellationToken ct) =>
        ReadAsync<IReadOnlyList<Promotion>>(async c => await QueryAsync(c, null,
            "SELECT build_key, channel, output_root, agreeing_sites, promoted_at FROM promotions WHERE build_key = @key ORDER BY promoted_at, channel",
            MapPromotion, ct, ("@key", buildKey)), ct);
}
