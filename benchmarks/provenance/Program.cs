using System.Diagnostics;
using System.Globalization;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Trust;
using Cairn.Trust.Provenance;

// cairn-provenance-bench [--dir DIR] [--publishes N] [--products M] [--cairn PATH]
// 1. cairn publish of a small tree (20 files, 1 KiB each) with and without signing its two statements: median
//    milliseconds of each, and the difference (target: signing adds <= 10 ms).
// 2. M products (default 2,000), each with its statements, then verifying all of them: in-process through
//    ProductProvenance (what cairn verify --provenance runs), and, with --cairn, the real command (target <= 2 s).
var dir = Path.Combine(Path.GetTempPath(), $"cairn-provenance-bench-{Environment.ProcessId}");
var publishes = 41;
var products = 2000;
string? cairn = null;
for (var i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--dir": dir = Next(); break;
        case "--publishes": publishes = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--products": products = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--cairn": cairn = Next(); break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
    }
}

Directory.CreateDirectory(dir);
try
{
    using var key = Keys.Generate(KeyKind.Builder);
    var tree = Path.Combine(dir, "tree");
    for (var f = 0; f < 20; f++)
    {
        Directory.CreateDirectory(Path.Combine(tree, f % 2 == 0 ? "bin" : "lib"));
        File.WriteAllBytes(Path.Combine(tree, f % 2 == 0 ? "bin" : "lib", $"file{f}"), [.. Enumerable.Range(0, 1024).Select(b => (byte)(b * f))]);
    }

    await using var repo = await DirectoryRepository.InitAsync(Path.Combine(dir, "repo"), "bench", "linux-x86_64", TimeProvider.System, null, CancellationToken.None);

    // 1. Publish with and without statements, interleaved so drift affects both alike. Each publish gets a new
    //    version (a new product), so none is skipped as unchanged.
    var plain = new List<double>();
    var signed = new List<double>();
    for (var i = 0; i < publishes; i++)
    {
        foreach (var sign in new[] { false, true })
        {
            var product = new ProductRef("small", $"{i}.{(sign ? 1 : 0)}");
            var options = new PublishOptions { BuildKey = $"k{i}{sign}" };
            if (sign) options = options with { Attestations = $"logs/linux-x86_64/small/{product.Version}/attestations.intoto.jsonl", Attest = root => AttestationBundle.Write(Attester.Sign(Facts(product, "bench"), root, key)) };
            var watch = Stopwatch.StartNew();
            await repo.PublishDirectoryAsync(product, tree, options, null, CancellationToken.None);
            (sign ? signed : plain).Add(watch.Elapsed.TotalMilliseconds);
        }
    }

    var (p, s) = (Median(plain), Median(signed));
    Console.WriteLine($"publish of a 20-file tree: {p:0.00} ms unsigned, {s:0.00} ms with its two signed statements (median of {publishes}); signing adds {s - p:0.00} ms (target <= 10 ms)");

    // 2. M attested products, then verify every product of the head.
    var bulk = await DirectoryRepository.InitAsync(Path.Combine(dir, "bulk"), "bulk", "linux-x86_64", TimeProvider.System, null, CancellationToken.None);
    await using (bulk)
    {
        var small = Path.Combine(dir, "one");
        Directory.CreateDirectory(small);
        var setup = Stopwatch.StartNew();
        for (var i = 0; i < products; i++)
        {
            File.WriteAllText(Path.Combine(small, "version"), i.ToString(CultureInfo.InvariantCulture));
            var product = new ProductRef($"p{i}", "1.0");
            await bulk.PublishDirectoryAsync(product, small, new PublishOptions
            {
                BuildKey = $"k{i}",
                Attestations = $"logs/linux-x86_64/p{i}/1.0/attestations.intoto.jsonl",
                Attest = root => AttestationBundle.Write(Attester.Sign(Facts(product, "bench"), root, key)),
            }, null, CancellationToken.None);
        }

        Console.WriteLine($"setup: {products} attested products published in {setup.Elapsed.TotalSeconds:0.0} s (not a target)");
        var verifier = new ProvenanceVerifier(ProvenancePolicy.OneBuilder("bench", key.Public));
        var watch = Stopwatch.StartNew();
        await using (var reader = await DirectoryRepository.OpenAsync(Path.Combine(dir, "bulk"), TimeProvider.System, null, TimeSpan.FromSeconds(30), CancellationToken.None))
        {
            var head = await reader.HeadAsync(CancellationToken.None);
            var catalog = await reader.CatalogAsync(head, CancellationToken.None);
            var refused = (await ProductProvenance.VerifyAllAsync(reader, head, catalog, verifier, CancellationToken.None)).Count(c => c.Refusal is not null);
            if (refused > 0) throw new InvalidOperationException($"{refused} products refused");
        }

        Console.WriteLine($"verify --provenance over {products} products, in-process: {watch.Elapsed.TotalSeconds:0.000} s (target <= 2 s)");
        if (cairn is not null)
        {
            var policy = Path.Combine(dir, "policy.json");
            File.WriteAllText(policy, $$"""{"format":1,"builders":[{"id":"bench","publicKey":"{{Keys.Encode(key.Public)}}"}]}""");
            var psi = new ProcessStartInfo(cairn, ["verify", "--provenance", "--policy", policy, "--repo", Path.Combine(dir, "bulk"), "--json"]) { RedirectStandardOutput = true };
            watch.Restart();
            using var process = Process.Start(psi)!;
            await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync();
            Console.WriteLine($"cairn verify --provenance over {products} products (process, exit {process.ExitCode}): {watch.Elapsed.TotalSeconds:0.000} s (target <= 2 s)");
        }
    }

    return 0;
}
finally
{
    Directory.Delete(dir, recursive: true);
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted[sorted.Count / 2];
}

static BuildFacts Facts(ProductRef product, string site) => new()
{
    Platform = "linux-x86_64", Name = product.Name, Version = product.Version, RecipePath = product.Name, RecipeDigest = Digest.Of("recipe"u8),
    DeploymentRoot = "/cvmfs/cairn", DeploymentSite = "generic", SandboxContract = 2, SeccompFilter = Digest.Of("bpf"u8), BuildKey = "k",
    Sources = [new SourceInput("src.tar.gz", "https://example.org/src.tar.gz", Digest.Of("src"u8))],
    Site = site, CairnVersion = "bench", InvocationId = Guid.NewGuid().ToString(), StartedOn = DateTimeOffset.UtcNow, FinishedOn = DateTimeOffset.UtcNow,
    LogPath = $"logs/linux-x86_64/{product.Name}/{product.Version}/build.log", LogSha256 = Digest.Of("log"u8),
    CheckScript = "check.sh", CheckScriptSha256 = Digest.Of("check"u8), PassedTests = ["a", "b", "c"],
};
