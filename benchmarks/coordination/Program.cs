using System.Globalization;
using Cairn.Coordination;
using Cairn.Coordination.PostgreSql;
using Cairn.Coordination.Simulation;
using Cairn.Coordination.Sqlite;
using Npgsql;

// cairn-coordination-sim [--sites N] [--jobs M] [--crash K] [--ttl SECONDS] [--build-ms MS] [--backend sqlite|postgres|both]
//                        [--postgres CONNECTION-STRING]
// Runs the coordination scale simulation (CoordinationSimulation) against fresh databases and prints its figures.
var options = new SimulationOptions();
var backend = "both";
var postgres = Environment.GetEnvironmentVariable("CAIRN_TEST_POSTGRES") is { Length: > 0 } env
    ? env : "Host=127.0.0.1;Port=5432;Username=cairn;Password=cairn;Database=cairn_test";
for (var i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    int Int() => int.Parse(Next(), CultureInfo.InvariantCulture);
    switch (args[i])
    {
        case "--sites": options = options with { Sites = Int() }; break;
        case "--jobs": options = options with { Jobs = Int() }; break;
        case "--crash": options = options with { CrashingSites = Int() }; break;
        case "--ttl": options = options with { ClaimTtl = TimeSpan.FromSeconds(double.Parse(Next(), CultureInfo.InvariantCulture)) }; break;
        case "--build-ms": options = options with { MaxBuildTime = TimeSpan.FromMilliseconds(Int()) }; break;
        case "--backend": backend = Next(); break;
        case "--postgres": postgres = Next(); break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}");
            return 2;
    }
}

Console.WriteLine($"load average before: {LoadAverage()}; {Environment.ProcessorCount} cores");
var failed = false;
if (backend is "sqlite" or "both")
{
    var dir = Directory.CreateTempSubdirectory("cairn-coord-sim-").FullName;
    try
    {
        var db = Path.Combine(dir, "coordination.db");
        await using var admin = await SqliteCoordinationStore.OpenAsync(db, TimeProvider.System, null, default);
        var report = await CoordinationSimulation.RunAsync("sqlite", admin, _ => new SqliteCoordinationStore(db, TimeProvider.System), options, default);
        Console.Write(report.Format());
        failed |= report.DoubleBuilds + report.LostCommits + report.JobsNotCommitted > 0;
    }
    finally
    {
        Directory.Delete(dir, recursive: true);
    }

    Console.WriteLine($"load average after sqlite: {LoadAverage()}");
}

if (backend is "postgres" or "both")
{
    var schema = "cairn_sim_" + Guid.NewGuid().ToString("N")[..12];
    await using (var connection = new NpgsqlConnection(postgres))
    {
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE SCHEMA {schema}", connection);
        await create.ExecuteNonQueryAsync();
    }

    try
    {
        // One connection per site (a site does one thing at a time), so 50 sites fit PostgreSQL's default 100.
        var perSite = new NpgsqlConnectionStringBuilder(postgres) { SearchPath = schema, MaxPoolSize = 1 }.ToString();
        await using var admin = await PostgreSqlCoordinationStore.OpenAsync(
            new NpgsqlConnectionStringBuilder(postgres) { SearchPath = schema, MaxPoolSize = 2 }.ToString(), TimeProvider.System, null, default);
        var report = await CoordinationSimulation.RunAsync("postgresql", admin, _ => new PostgreSqlCoordinationStore(perSite, TimeProvider.System), options, default);
        Console.Write(report.Format());
        failed |= report.DoubleBuilds + report.LostCommits + report.JobsNotCommitted > 0;
    }
    finally
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(postgres);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE", connection);
        await drop.ExecuteNonQueryAsync();
    }

    Console.WriteLine($"load average after postgresql: {LoadAverage()}");
}

return failed ? 1 : 0;

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
