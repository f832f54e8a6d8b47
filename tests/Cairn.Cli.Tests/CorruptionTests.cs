using System.Buffers.Binary;
using System.Security.Cryptography;
using Cairn.Cli.Tests.Infrastructure;

namespace Cairn.Cli.Tests;

/// <summary>Damage to packs and indexes is found by verify and by materialize, with the documented codes and the products it breaks.</summary>
public sealed class CorruptionTests(CorruptionTests.Pristine pristine) : CliTest, IClassFixture<CorruptionTests.Pristine>
{
    /// <summary>zlib then hello published once; every test damages its own copy.</summary>
    public sealed class Pristine : IAsyncLifetime, IDisposable
    {
        private readonly TempDir _temp = new("cairn-corrupt-pristine");

        public string Repo => _temp.File("repo");

        /// <summary>The pack files the hello publish added (the zlib ones came before).</summary>
        public IReadOnlyList<string> HelloPacks { get; private set; } = [];

        public async Task InitializeAsync()
        {
            var ct = CancellationToken.None;
            var hello = await Sources.UnpackAsync(Sources.Hello, _temp.Sub("hello"), ct);
            var zlib = await Sources.UnpackAsync(Sources.Zlib, _temp.Sub("zlib"), ct);
            var repo = await TestRepository.CreateAsync(Repo, ct);
            await repo.OkAsync(ct, "publish", "zlib/1.2.13", zlib);
            var before = PackNames(repo.PacksDirectory);
            await repo.OkAsync(ct, "publish", "hello/2.10", hello);
            HelloPacks = PackNames(repo.PacksDirectory).Except(before).ToList();
            await repo.VerifyFullOkAsync(ct);
        }

        public Task DisposeAsync() => Task.CompletedTask;

        public void Dispose() => _temp.Dispose();
    }

    private const int IndexEntry = 32 + 8 + 4 + 4 + 1;

    private sealed record Damaged(TempDir Temp, TestRepository Repo, string Pack, IndexRecord Victim);

    /// <summary>One entry of a pack index (docs/format/repository.md, "Packs").</summary>
    private sealed record IndexRecord(int Position, long Offset, int Stored, int Size);

    [Fact]
    public async Task Flipped_byte_is_found_by_full_verify_and_materialize()
    {
        var d = await SetUpAsync("flip");
        using var _ = d.Temp;
        await using (var f = new FileStream(d.Pack + ".pack", FileMode.Open, FileAccess.ReadWrite))
        {
            var at = d.Victim.Offset + (d.Victim.Stored / 2);
            f.Position = at;
            var b = f.ReadByte();
            f.Position = at;
            f.WriteByte((byte)(b ^ 0x5A));
        }

        await AssertVerifyFindsAsync(d, full: true, "CAIRN-E0211");
        await AssertMaterializeFailsAsync(d, "CAIRN-E0211");
    }

    [Fact]
    public async Task Truncated_pack_is_found_by_full_verify_and_materialize()
    {
        var d = await SetUpAsync("truncate");
        using var _ = d.Temp;
        await using (var f = new FileStream(d.Pack + ".pack", FileMode.Open, FileAccess.ReadWrite))
        {
            f.SetLength(d.Victim.Offset + 7);
        }

        // The cut also takes hello's trees, so objects below them cannot be traced to a product: only some problems name it.
        await AssertVerifyFindsAsync(d, full: true, "CAIRN-E0211", everyProblemNamed: false);
        await AssertMaterializeFailsAsync(d, "CAIRN-E0211");
    }

    [Fact]
    public async Task Deleted_pack_is_found_by_verify_and_materialize()
    {
        var d = await SetUpAsync("delete-pack");
        using var _ = d.Temp;
        File.Delete(d.Pack + ".pack");
        await AssertVerifyFindsAsync(d, full: false, "CAIRN-E0210");
        await AssertVerifyFindsAsync(d, full: true, "CAIRN-E0210");
        await AssertMaterializeFailsAsync(d, "CAIRN-E0210");
    }

    [Fact]
    public async Task Deleted_index_is_found_by_verify_and_materialize()
    {
        var d = await SetUpAsync("delete-idx");
        using var _ = d.Temp;
        File.Delete(d.Pack + ".idx");
        await AssertVerifyFindsAsync(d, full: false, "CAIRN-E0210");
        await AssertMaterializeFailsAsync(d, "CAIRN-E0210");
    }

    [Fact]
    public async Task Index_recording_a_wrong_size_is_found_by_verify()
    {
        var d = await SetUpAsync("size");
        using var _ = d.Temp;
        // Rewrite the size field of one entry and re-seal the index checksum, so only the size is wrong.
        var idx = await File.ReadAllBytesAsync(d.Pack + ".idx", Ct);
        var field = 8 + (d.Victim.Position * IndexEntry) + 44;
        BinaryPrimitives.WriteUInt32BigEndian(idx.AsSpan(field), (uint)(d.Victim.Size + 1));
        SHA256.HashData(idx.AsSpan(0, idx.Length - 32), idx.AsSpan(idx.Length - 32));
        await File.WriteAllBytesAsync(d.Pack + ".idx", idx, Ct);

        await AssertVerifyFindsAsync(d, full: false, "CAIRN-E0212");
        var r = await MaterializeAsync(d, "hello/2.10");
        Assert.True(r.ExitCode == 4 && (r.Stderr.Contains("CAIRN-E0211", StringComparison.Ordinal) || r.Stderr.Contains("CAIRN-E0212", StringComparison.Ordinal)), r.ToString());
    }

    private async Task<Damaged> SetUpAsync(string label)
    {
        var temp = new TempDir("cairn-corrupt-" + label);
        await Exec.ToolAsync(Ct, "cp", "-a", pristine.Repo, temp.File("repo"));
        var repo = new TestRepository(temp.File("repo"));
        // The biggest pack the hello publish added holds its file content (the other holds trees and the catalog).
        var pack = pristine.HelloPacks.Select(p => Path.Combine(repo.PacksDirectory, p)).OrderByDescending(p => new FileInfo(p + ".pack").Length).First();
        var victim = ReadIndex(pack + ".idx").MaxBy(e => e.Stored)!;
        return new Damaged(temp, repo, pack, victim);
    }

    private static List<string> PackNames(string packs) =>
        Directory.EnumerateFiles(packs, "*.pack").Select(p => Path.GetFileName(p)[..^".pack".Length]).ToList();

    private static List<IndexRecord> ReadIndex(string path)
    {
        var data = File.ReadAllBytes(path);
        Assert.True(data.AsSpan(0, 4).SequenceEqual("CIX1"u8), $"{path} is not a pack index");
        var count = (int)BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(4));
        return Enumerable.Range(0, count).Select(i =>
        {
            var e = data.AsSpan(8 + (i * IndexEntry), IndexEntry);
            return new IndexRecord(i, (long)BinaryPrimitives.ReadUInt64BigEndian(e[32..]), (int)BinaryPrimitives.ReadUInt32BigEndian(e[40..]), (int)BinaryPrimitives.ReadUInt32BigEndian(e[44..]));
        }).ToList();
    }

    private async Task AssertVerifyFindsAsync(Damaged d, bool full, string code, bool everyProblemNamed = true)
    {
        var r = await d.Repo.RunAsync(Ct, full ? ["verify", "--full", "--json"] : ["verify", "--json"]);
        CairnAssert.Fails(r, 4, "CAIRN-E0216");
        var problems = TestRepository.Problems(r);
        Assert.True(problems.Any(p => p.Code == code), $"verify{(full ? " --full" : "")} did not report {code}: {r}");
        // Problems name the damaged product, and only it: zlib lives in other packs.
        static bool NamesHello(IReadOnlyList<string> products) => products.Any(x => x.EndsWith("/hello/2.10", StringComparison.Ordinal));
        if (everyProblemNamed) Assert.All(problems, p => Assert.True(NamesHello(p.Products), $"{p.Code} names [{string.Join(", ", p.Products)}]"));
        else Assert.Contains(problems, p => p.Code == code && NamesHello(p.Products));
        Assert.DoesNotContain(problems, p => p.Products.Any(x => x.Contains("/zlib/", StringComparison.Ordinal)));
    }

    private async Task AssertMaterializeFailsAsync(Damaged d, string code)
    {
        var r = await MaterializeAsync(d, "hello/2.10");
        CairnAssert.Fails(r, 4, code);
        var zlib = await MaterializeAsync(d, "zlib/1.2.13");
        Assert.True(zlib.ExitCode == 0, "an undamaged product must still materialize: " + zlib);
    }

    private async Task<RunResult> MaterializeAsync(Damaged d, string product)
    {
        var dest = d.Temp.File("dest-" + Guid.NewGuid().ToString("N"));
        var r = await d.Repo.RunAsync(Ct, "materialize", "--cache", d.Temp.File("cache-" + Guid.NewGuid().ToString("N")), product, dest);
        if (r.ExitCode != 0)
        {
            // Nothing half-laid-out stays behind under the product's path.
            Assert.Empty(Directory.Exists(dest) ? Directory.GetFiles(dest, "*", SearchOption.AllDirectories) : []);
        }

        return r;
    }
}
