using System.Diagnostics;
using System.Globalization;
using Cairn.Core;
using Cairn.Core.Transparency;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Repository.Transparency;
using Cairn.Trust;
using Cairn.Trust.Transparency;
using NSec.Cryptography;

// cairn-tlog-bench [--publishes N] [--catch-up N] [--runs N]
// 1. The cost of appending the log to a small `publish`: the same signed publishes with and without the log.
// 2. A client catching up from a checkpoint --catch-up entries old: proof hashes, tile requests, CPU time.
var publishes = 40;
var catchUp = 100_000;
var runs = 5;
for (var i = 0; i < args.Length; i++)
{
    int Int() => int.Parse(args[++i], CultureInfo.InvariantCulture);
    switch (args[i])
    {
        case "--publishes": publishes = Int(); break;
        case "--catch-up": catchUp = Int(); break;
        case "--runs": runs = Int(); break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}");
            return 2;
    }
}

var work = Path.Combine(Path.GetTempPath(), $"cairn-tlog-bench-{Guid.NewGuid():N}"[..30]);
Directory.CreateDirectory(work);
try
{
    await PublishOverheadAsync(work, publishes);
    await CatchUpAsync(work, catchUp, runs);
}
finally
{
    Directory.Delete(work, recursive: true);
}

return 0;

static async Task PublishOverheadAsync(string work, int publishes)
{
    var keys = TestKeys(work);
    var source = Path.Combine(work, "small-tree");
    for (var f = 0; f < 20; f++)
    {
        Directory.CreateDirectory(Path.Combine(source, $"d{f % 4}"));
        File.WriteAllText(Path.Combine(source, $"d{f % 4}", $"file{f}.txt"), string.Concat(Enumerable.Repeat($"line {f}\n", 200)));
    }

    async Task<List<double>> RunAsync(string name, IManifestSigner signer)
    {
        var path = Path.Combine(work, name);
        await using var repo = await DirectoryRepository.InitAsync(path, "bench", "linux-x86_64", TimeProvider.System, null, default, signer);
        var times = new List<double>();
        for (var p = 0; p < publishes; p++)
        {
            File.WriteAllText(Path.Combine(source, "version"), p.ToString(CultureInfo.InvariantCulture));
            var sw = Stopwatch.StartNew();
            await repo.PublishDirectoryAsync(new ProductRef("small", $"1.{p}"), source, new PublishOptions { PublishedBy = "bench" }, null, default);
            times.Add(sw.Elapsed.TotalMilliseconds);
        }

        return times;
    }

    using var withLog = ManifestSigner.Load(keys, TimeProvider.System);
    using var withoutLog = ManifestSigner.Load(keys, TimeProvider.System);
    // Warm-up (JIT) in a throw-away repository, then the two alternately measured series.
    await RunAsync("warm", withLog);
    var plain = await RunAsync("no-log", new ManifestOnly(withoutLog));
    var logged = await RunAsync("log", withLog);
    double Median(List<double> t) => t.Order().ElementAt(t.Count / 2);
    Console.WriteLine($"publish of a small tree (20 files, {publishes} publishes each, signed): median {Median(plain):F1} ms without the log, {Median(logged):F1} ms with it: +{Median(logged) - Median(plain):F1} ms (target <= 10 ms)");
}

static async Task CatchUpAsync(string work, int catchUp, int runs)
{
    const int old = 1_234;
    using var key = Key.Create(SignatureAlgorithm.Ed25519);
    var path = Path.Combine(work, "catch-up");
    await using var repo = await DirectoryRepository.InitAsync(path, "catch-up", "linux-x86_64", TimeProvider.System, null, default);
    var writer = new LogAppender(repo.Store, new NoteSigner(key));
    var origin = writer.Origin;
    var source = repo.Store.LogSource;
    byte[] Entry(long i) => System.Text.Encoding.UTF8.GetBytes($"{{\"format\":1,\"kind\":\"publish\",\"revision\":{i + 1},\"subject\":\"linux-x86_64/p/{i}\",\"by\":\"bench\",\"at\":\"2026-01-01T00:00:00+00:00\"}}");
    await writer.PublishAsync(await writer.AppendAsync(0, Enumerable.Range(0, old).Select(i => Entry(i)).ToList(), default), default);
    var oldCheckpoint = File.ReadAllBytes(Path.Combine(path, LogFiles.Checkpoint));
    long size = old;
    var build = Stopwatch.StartNew();
    Checkpoint? last = null;
    while (size < old + catchUp)
    {
        var batch = (int)Math.Min(25_000, old + catchUp - size);
        var from = size;
        last = await writer.AppendAsync(size, Enumerable.Range(0, batch).Select(i => Entry(from + i)).ToList(), default);
        size += batch;
    }

    await writer.PublishAsync(last!, default);
    Console.WriteLine($"log of {size} entries written in {build.Elapsed.TotalSeconds:F1} s");

    var cpu = new List<double>();
    var wall = new List<double>();
    CatchUpCost? cost = null;
    for (var run = -1; run < runs; run++)
    {
        // A client that verified the old checkpoint: its state holds exactly that.
        var state = Path.Combine(work, $"state-{run + 1}");
        var verifier = new LogVerifier(state, () => [key.PublicKey], TimeProvider.System);
        Directory.CreateDirectory(Path.GetDirectoryName(verifier.RememberedPath(origin))!);
        File.WriteAllBytes(verifier.RememberedPath(origin), oldCheckpoint);
        var process = Process.GetCurrentProcess();
        var cpu0 = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        await verifier.VerifyCheckpointAsync(source, origin, default);
        sw.Stop();
        process.Refresh();
        if (run < 0) continue; // JIT warm-up
        cpu.Add((process.TotalProcessorTime - cpu0).TotalMilliseconds);
        wall.Add(sw.Elapsed.TotalMilliseconds);
        cost = verifier.LastCatchUp;
    }

    Console.WriteLine($"catch-up {cost!.FromSize} -> {cost.ToSize} entries: {cost.ProofHashes} proof hashes (bound 2*log2(n) = {2 * Math.Log2(cost.ToSize):F1}), "
        + $"{cost.Requests} tile requests (target <= 20), {cost.HashesRead} hashes read from tiles; "
        + $"CPU median {cpu.Order().ElementAt(cpu.Count / 2):F1} ms (target <= 50 ms), wall median {wall.Order().ElementAt(wall.Count / 2):F1} ms over {runs} runs");
}

static string TestKeys(string work)
{
    using var root = Keys.Generate(KeyKind.Root);
    using var key = Keys.Generate(KeyKind.Publishing);
    var now = DateTimeOffset.UtcNow;
    var path = Path.Combine(work, "publishing.key");
    Keys.WritePrivate(key, path, Keys.Certify(root, key.Public, "bench", now.AddMinutes(-1), now.AddDays(1), []), root.Public);
    return path;
}

/// <summary>Signs manifests only: a signed repository without a log, the baseline.</summary>
internal sealed class ManifestOnly(IManifestSigner inner) : IManifestSigner
{
    public byte[] Sign(byte[] manifestBytes, Manifest manifest) => inner.Sign(manifestBytes, manifest);
}

internal sealed class NoteSigner(Key key) : ICheckpointSigner
{
    public NoteSignature SignNote(string keyName, string text) => NoteKeys.Sign(key, keyName, text);
}
