using Cairn.Coordination;
using Cairn.Coordination.PostgreSql;
using Cairn.Coordination.Sqlite;
using Cairn.Core;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Cairn.Gateway;

/// <summary>Opens the coordination database a <c>--db</c> URL names: <c>sqlite:FILE</c> or <c>postgres://USER:PASSWORD@HOST:PORT/DATABASE[?schema=S]</c>.</summary>
public static class CoordinationDatabase
{
    public static async Task<ICoordinationStore> OpenAsync(string url, TimeProvider time, ILogger? logger, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(url);
        if (url.StartsWith("sqlite:", StringComparison.Ordinal))
        {
            var path = url["sqlite:".Length..];
            if (path.Length == 0) throw Invalid(url);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            return await SqliteCoordinationStore.OpenAsync(path, time, logger, ct).ConfigureAwait(false);
        }

        if (url.StartsWith("postgres://", StringComparison.Ordinal) || url.StartsWith("postgresql://", StringComparison.Ordinal))
        {
            var (connectionString, schema) = PostgresConnectionString(url);
            if (schema is not null)
            {
                // A schema of its own per gateway (or per test) in a shared database; created on first use.
                await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { SearchPath = null }.ToString());
                try
                {
                    await connection.OpenAsync(ct).ConfigureAwait(false);
                    await using var command = new NpgsqlCommand($"CREATE SCHEMA IF NOT EXISTS \"{schema}\"", connection);
                    await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }
                catch (NpgsqlException e)
                {
                    throw new CairnException(ErrorCode.CoordinationUnavailable, $"cannot reach PostgreSQL at {url.Split('@')[^1]}: {e.Message}",
                        "check that the server runs and the user, password and database in --db are right", e);
                }
            }

            return await PostgreSqlCoordinationStore.OpenAsync(connectionString, time, logger, ct).ConfigureAwait(false);
        }

        throw Invalid(url);
    }

    /// <summary>The Npgsql connection string of a postgres:// URL, and the schema it names (search path).</summary>
    public static (string ConnectionString, string? Schema) PostgresConnectionString(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host)) throw Invalid(url);
        var builder = new NpgsqlConnectionStringBuilder { Host = uri.Host, Port = uri.IsDefaultPort || uri.Port < 0 ? 5432 : uri.Port };
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length > 1) builder.Password = Uri.UnescapeDataString(parts[1]);
        }

        var database = uri.AbsolutePath.Trim('/');
        if (database.Length == 0 || database.Contains('/', StringComparison.Ordinal)) throw Invalid(url);
        builder.Database = Uri.UnescapeDataString(database);
        string? schema = null;
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            var value = kv.Length > 1 ? Uri.UnescapeDataString(kv[1]) : "";
            switch (kv[0])
            {
                case "schema" when System.Text.RegularExpressions.Regex.IsMatch(value, "^[a-z_][a-z0-9_]{0,62}$"):
                    schema = value;
                    builder.SearchPath = value;
                    break;
                default:
                    throw Invalid(url);
            }
        }

        return (builder.ToString(), schema);
    }

    private static CairnException Invalid(string url) => new(ErrorCode.GatewayDatabaseUrlInvalid,
        $"'{RedactPassword(url)}' is not a coordination database",
        "use --db sqlite:FILE or --db postgres://USER:PASSWORD@HOST:PORT/DATABASE[?schema=NAME] (schema: lowercase letters, digits, _)");

    private static string RedactPassword(string url)
    {
        var at = url.IndexOf('@', StringComparison.Ordinal);
        var colon = url.IndexOf(':', url.IndexOf("//", StringComparison.Ordinal) + 2);
        return at > 0 && colon > 0 && colon < at ? url[..(colon + 1)] + "***" + url[at..] : url;
    }
}
