using System.Globalization;
using Cairn.Coordination.Sqlite;

namespace Cairn.Coordination.Tests;

/// <summary>
/// Entry point of the test assembly when it is run as a program: <c>dotnet Cairn.Coordination.Tests.dll
/// claim-worker DB SITE KEYS START-FILE</c> claims keys key-0 … key-(KEYS-1) in the SQLite database DB as SITE once
/// START-FILE exists, and prints "granted KEY TOKEN" for each claim it won. The cross-process test runs several.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args is not ["claim-worker", var db, var site, var keys, var startFile])
        {
            await Console.Error.WriteLineAsync("usage: claim-worker DB SITE KEYS START-FILE");
            return 2;
        }

        await using var store = new SqliteCoordinationStore(db, TimeProvider.System);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!File.Exists(startFile))
        {
            if (DateTime.UtcNow > deadline) return 3;
            await Task.Delay(5);
        }

        for (var i = 0; i < int.Parse(keys, CultureInfo.InvariantCulture); i++)
        {
            var result = await store.TryClaimAsync($"key-{i}", site, TimeSpan.FromMinutes(10), null, CancellationToken.None);
            if (result.Granted)
            {
                Console.WriteLine($"granted key-{i} {result.Claim.FencingToken}");
            }
        }

        return 0;
    }
}
