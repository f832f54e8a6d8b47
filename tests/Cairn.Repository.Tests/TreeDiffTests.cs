using Cairn.Core;
using Cairn.Repository.FileSystem;
using Microsoft.Extensions.Time.Testing;

namespace Cairn.Repository.Tests;

public sealed class TreeDiffTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => _dir.Dispose();

    private async Task<WritableRepository> RepoAsync(string name) =>
        await DirectoryRepository.InitAsync(_dir.Sub(name), name, "linux-x86_64", _time, null, default);

    private static async Task<Digest> StoreAsync(WritableRepository repo, string directory)
    {
        var root = await DirectorySnapshot.StoreAsync(new Ingest(repo.Objects), directory, null, default);
        await repo.Objects.FlushAsync(default);
        return root.Digest;
    }

    private string Write(string tree, string path, string content, bool executable = false)
    {
        var full = Path.Combine(_dir.Sub(tree), path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
        if (executable) File.SetUnixFileMode(full, (UnixFileMode)0x1ED);
        return full;
    }

    [Fact]
    public async Task IdenticalTreesHaveNoDifferences()
    {
        await using var a = await RepoAsync("ra");
        await using var b = await RepoAsync("rb");
        Write("t", "bin/tool", "#!/bin/sh\n", executable: true);
        Write("t", "share/doc/README", "hello\n");
        var rootA = await StoreAsync(a, _dir.Sub("t"));
        var rootB = await StoreAsync(b, _dir.Sub("t"));
        Assert.Equal(rootA, rootB);
        var result = await TreeDiff.CompareAsync(a.Trees, rootA, b.Trees, rootB, new TreeDiffOptions(), default);
        Assert.Empty(result.Files);
        Assert.False(result.Truncated);
    }

    [Fact]
    public async Task ReportsEveryKindOfDifferenceAcrossTwoRepositories()
    {
        await using var a = await RepoAsync("ra");
        await using var b = await RepoAsync("rb");
        Write("ref", "etc/config", "one\ntwo\nthree\n");
        Write("oth", "etc/config", "one\nTWO\nthree\n");
        Write("ref", "bin/tool", "#!/bin/sh\necho hi\n", executable: true);
        Write("oth", "bin/tool", "#!/bin/sh\necho hi\n");
        Write("ref", "gone.txt", "bye\n");
        Write("oth", "new.txt", "hello\n");
        Write("ref", "share/x/a", "a\n");
        Write("ref", "share/x/b", "b\n");
        Write("ref", "kind", "a file\n");
        Directory.CreateDirectory(_dir.Sub("oth/kind"));
        Write("oth", "kind/inside", "now a directory\n");
        Directory.CreateDirectory(_dir.Sub("ref/lib"));
        Directory.CreateDirectory(_dir.Sub("oth/lib"));
        File.CreateSymbolicLink(_dir.Sub("ref/lib/libx.so"), "libx.so.1");
        File.CreateSymbolicLink(_dir.Sub("oth/lib/libx.so"), "libx.so.2");
        File.WriteAllBytes(_dir.Sub("ref/lib/data.bin"), [1, 0, 2, 3]);
        File.WriteAllBytes(_dir.Sub("oth/lib/data.bin"), [1, 0, 2, 4]);
        var big = new string('x', 70 * 1024) + "\n";
        Write("ref", "big.txt", big + "a\n");
        Write("oth", "big.txt", big + "b\n");
        Write("ref", "same/unchanged", "same\n");
        Write("oth", "same/unchanged", "same\n");

        var rootA = await StoreAsync(a, _dir.Sub("ref"));
        var rootB = await StoreAsync(b, _dir.Sub("oth"));
        var result = await TreeDiff.CompareAsync(a.Trees, rootA, b.Trees, rootB, new TreeDiffOptions(), default);
        Assert.False(result.Truncated);
        var byPath = result.Files.ToDictionary(f => f.Path + ":" + f.Kind);

        var config = byPath["etc/config:content"];
        Assert.Equal(14, config.ReferenceSize);
        Assert.Equal(14, config.OtherSize);
        Assert.NotEqual(config.ReferenceDigest, config.OtherDigest);
        Assert.Equal("--- a/etc/config\n+++ b/etc/config\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n", config.TextDiff);

        Assert.Equal(byPath["bin/tool:mode"].ReferenceDigest, byPath["bin/tool:mode"].OtherDigest);
        Assert.False(byPath.ContainsKey("bin/tool:content"));

        var gone = byPath["gone.txt:removed"];
        Assert.Equal(4, gone.ReferenceSize);
        Assert.Null(gone.OtherSize);
        Assert.Contains("-bye\n", gone.TextDiff, StringComparison.Ordinal);
        var added = byPath["new.txt:added"];
        Assert.Null(added.ReferenceDigest);
        Assert.Contains("+hello\n", added.TextDiff, StringComparison.Ordinal);

        // A directory present on one side only is listed file by file.
        Assert.True(byPath.ContainsKey("share/x/a:removed"));
        Assert.True(byPath.ContainsKey("share/x/b:removed"));
        Assert.Equal("type", byPath["kind:type"].Kind);
        Assert.Contains("libx.so.2", byPath["lib/libx.so:symlink"].TextDiff, StringComparison.Ordinal);

        // Binary (NUL bytes) and large files get sizes and digests but no text diff.
        Assert.Null(byPath["lib/data.bin:content"].TextDiff);
        Assert.NotNull(byPath["lib/data.bin:content"].OtherDigest);
        Assert.Null(byPath["big.txt:content"].TextDiff);

        Assert.DoesNotContain(result.Files, f => f.Path.StartsWith("same", StringComparison.Ordinal));
        Assert.Equal(10, result.Files.Count);
    }

    [Fact]
    public async Task StopsAtMaxFilesAndSaysSo()
    {
        await using var a = await RepoAsync("ra");
        for (var i = 0; i < 10; i++)
        {
            Write("ref", $"f{i}", "a\n");
            Write("oth", $"f{i}", "b\n");
        }

        var rootA = await StoreAsync(a, _dir.Sub("ref"));
        var rootB = await StoreAsync(a, _dir.Sub("oth"));
        var result = await TreeDiff.CompareAsync(a.Trees, rootA, a.Trees, rootB, new TreeDiffOptions { MaxFiles = 3 }, default);
        Assert.True(result.Truncated);
        Assert.Equal(["f0", "f1", "f2"], result.Files.Select(f => f.Path));

        var exact = await TreeDiff.CompareAsync(a.Trees, rootA, a.Trees, rootB, new TreeDiffOptions { MaxFiles = 10 }, default);
        Assert.False(exact.Truncated);
        Assert.Equal(10, exact.Files.Count);
    }

    [Fact]
    public async Task SkipsEqualSubtreesWithoutReadingThem()
    {
        await using var a = await RepoAsync("ra");
        for (var d = 0; d < 40; d++)
        {
            for (var f = 0; f < 5; f++)
            {
                Write("ref", $"d{d}/sub/f{f}", $"{d}/{f}\n");
                Write("oth", $"d{d}/sub/f{f}", d == 17 && f == 3 ? "changed\n" : $"{d}/{f}\n");
            }
        }

        var rootA = await StoreAsync(a, _dir.Sub("ref"));
        var rootB = await StoreAsync(a, _dir.Sub("oth"));
        var counting = new CountingStore(a.Objects);
        var walker = new TreeWalker(counting);
        var result = await TreeDiff.CompareAsync(walker, rootA, walker, rootB, new TreeDiffOptions(), default);
        var only = Assert.Single(result.Files);
        Assert.Equal("d17/sub/f3", only.Path);
        // Two roots, two d17, two d17/sub, and the two versions of the file for its text diff.
        Assert.Equal(8, counting.Reads);
    }

    [Fact]
    public void UnifiedDiffSplitsDistantChangesIntoHunksAndMarksAMissingNewline()
    {
        var before = string.Concat(Enumerable.Range(1, 20).Select(i => $"line {i}\n"));
        var after = before.Replace("line 2\n", "line two\n", StringComparison.Ordinal).Replace("line 20\n", "line 20", StringComparison.Ordinal);
        var diff = TreeDiff.Unified("f", before, after, 3);
        Assert.Equal(
            "--- a/f\n+++ b/f\n" +
            "@@ -1,5 +1,5 @@\n line 1\n-line 2\n+line two\n line 3\n line 4\n line 5\n" +
            "@@ -17,4 +17,4 @@\n line 17\n line 18\n line 19\n-line 20\n+line 20\n\\ No newline at end of file\n",
            diff);
        Assert.Null(TreeDiff.Unified("f", before, before, 3));
        Assert.Equal("--- a/f\n+++ b/f\n@@ -0,0 +1 @@\n+x\n", TreeDiff.Unified("f", "", "x\n", 3));
    }

    [Fact]
    public void TextMeansValidUtf8WithoutNul()
    {
        Assert.Equal("héllo\n", TreeDiff.DecodeText("héllo\n"u8));
        Assert.Null(TreeDiff.DecodeText([0x61, 0x00, 0x62]));
        Assert.Null(TreeDiff.DecodeText([0xC3, 0x28]));
    }

    private sealed class CountingStore(IObjectReader inner) : IObjectReader
    {
        private int _reads;

        public int Reads => _reads;

        public ValueTask<bool> ContainsAsync(Digest digest, CancellationToken ct) => inner.ContainsAsync(digest, ct);

        public ValueTask<byte[]> GetAsync(Digest digest, CancellationToken ct)
        {
            Interlocked.Increment(ref _reads);
            return inner.GetAsync(digest, ct);
        }

        public IAsyncEnumerable<ObjectInfo> ListAsync(CancellationToken ct) => inner.ListAsync(ct);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
