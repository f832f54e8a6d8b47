using System.Formats.Tar;
using Cairn.Cli.Tests.Infrastructure;

namespace Cairn.Cli.Tests;

/// <summary>
/// `cairn import` of archives built to attack the extractor. Each must be refused with its own code (exit 5),
/// write nothing outside, and leave the repository exactly as it was.
/// </summary>
public sealed class HostileImportTests(HostileImportTests.SharedRepository shared) : CliTest, IClassFixture<HostileImportTests.SharedRepository>
{
    /// <summary>One repository for the whole class (its tests run one after another): every refusal must leave it as it was.</summary>
    public sealed class SharedRepository : IAsyncLifetime, IDisposable
    {
        private readonly TempDir _temp = new("cairn-hostile");

        public TestRepository Repo { get; private set; } = null!;

        /// <summary>The state every refusal must leave behind.</summary>
        public RepoState State { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Repo = await TestRepository.CreateAsync(_temp.File("repo"), CancellationToken.None);
            var payload = _temp.Sub("payload");
            await File.WriteAllTextAsync(Path.Combine(payload, "readme"), "a product that is already there\n");
            await Repo.OkAsync(CancellationToken.None, "publish", "base/1", payload);
            await Repo.VerifyFullOkAsync(CancellationToken.None);
            State = await Repo.StateAsync(CancellationToken.None);
        }

        public Task DisposeAsync() => Task.CompletedTask;

        public void Dispose() => _temp.Dispose();
    }

    /// <summary>The archives; names are relative to the product (imported with --as evil/1).</summary>
    private static TarBuilder Build(string kind) => kind switch
    {
        "traversal" => new TarBuilder().File("ok").File("../canary/pwned"),
        "traversal-inner" => new TarBuilder().Dir("lib/").File("lib/../../../canary/pwned"),
        "absolute" => new TarBuilder().File("/tmp/cairn-test-absolute-pwned"),
        "symlink-escape" => new TarBuilder().Dir("lib/").Symlink("lib/x", "../../../../etc"),
        "symlink-absolute" => new TarBuilder().Symlink("etc", "/etc"),
        "through-symlink-dot" => new TarBuilder().Symlink("a", ".").File("a/file"),
        "through-symlink-dir" => new TarBuilder().Dir("sub/").Symlink("a", "sub").File("a/file"),
        // The link itself already escapes; it is refused before anything could be written through it.
        "symlink-outside-then-through" => new TarBuilder().Symlink("out", "../canary").File("out/pwned"),
        "hardlink-etc-passwd" => new TarBuilder().Hardlink("passwd", "/etc/passwd"),
        "hardlink-outside" => new TarBuilder().File("ok").Hardlink("x", "../canary/target"),
        "hardlink-forward" => new TarBuilder().Hardlink("x", "later").File("later"),
        "char-device" => new TarBuilder().Dir("dev/").Special(TarEntryType.CharacterDevice, "dev/null"),
        "block-device" => new TarBuilder().Special(TarEntryType.BlockDevice, "sda"),
        "fifo" => new TarBuilder().Special(TarEntryType.Fifo, "pipe"),
        "duplicate" => new TarBuilder().File("a", "first").File("a", "second"),
        "duplicate-file-over-dir" => new TarBuilder().Dir("d/").File("d/x").File("d"),
        "backslash" => new TarBuilder().File("a\\..\\..\\pwned"),
        "nul" => new TarBuilder().File("evil\0name"),
        "too-many" => Enumerable.Range(0, 20).Aggregate(new TarBuilder(), (b, i) => b.File($"f{i}")),
        "too-deep" => new TarBuilder().File(string.Concat(Enumerable.Repeat("d/", 70)) + "deep"),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    [Theory]
    [InlineData("traversal", "CAIRN-E0301")]
    [InlineData("traversal-inner", "CAIRN-E0301")]
    [InlineData("absolute", "CAIRN-E0302")]
    [InlineData("symlink-escape", "CAIRN-E0304")]
    [InlineData("symlink-absolute", "CAIRN-E0304")]
    [InlineData("through-symlink-dot", "CAIRN-E0305")]
    [InlineData("through-symlink-dir", "CAIRN-E0305")]
    [InlineData("symlink-outside-then-through", "CAIRN-E0304")]
    [InlineData("hardlink-etc-passwd", "CAIRN-E0306")]
    [InlineData("hardlink-outside", "CAIRN-E0306")]
    [InlineData("hardlink-forward", "CAIRN-E0306")]
    [InlineData("char-device", "CAIRN-E0308")]
    [InlineData("block-device", "CAIRN-E0308")]
    [InlineData("fifo", "CAIRN-E0308")]
    [InlineData("duplicate", "CAIRN-E0307")]
    [InlineData("duplicate-file-over-dir", "CAIRN-E0307")]
    [InlineData("backslash", "CAIRN-E0303")]
    [InlineData("nul", "CAIRN-E0303")]
    [InlineData("too-many", "CAIRN-E0309", "--max-entries", "10")]
    [InlineData("too-deep", "CAIRN-E0310")]
    public async Task Hostile_archive_is_refused_with_its_own_code_and_changes_nothing(string kind, string code, params string[] extra)
    {
        using var temp = new TempDir("cairn-hostile");
        var archive = Build(kind).Write(temp.File(kind + ".tar.gz"));
        await AssertRefusedAsync(temp, archive, code, ["--as", "evil/1", .. extra]);
    }

    [Theory]
    [InlineData("traversal")]
    [InlineData("symlink-escape")]
    [InlineData("hardlink-outside")]
    public async Task Deployment_layout_archive_is_checked_the_same_way(string kind)
    {
        // Without --as, entries live under PLATFORM/NAME/VERSION; escapes are measured from the product, not the archive root.
        using var temp = new TempDir("cairn-hostile-layout");
        var archive = temp.File(kind + ".tar");
        var b = new TarBuilder().Dir("linux-x86_64/").Dir("linux-x86_64/evil/").Dir("linux-x86_64/evil/1/").File("linux-x86_64/evil/1/ok");
        var code = kind switch
        {
            "traversal" => Add(b.File("linux-x86_64/evil/1/../2/pwned"), "CAIRN-E0301"),
            // Three levels up from lib/ is still inside the archive, but outside the product.
            "symlink-escape" => Add(b.Dir("linux-x86_64/evil/1/lib/").Symlink("linux-x86_64/evil/1/lib/x", "../../../other"), "CAIRN-E0304"),
            _ => Add(b.File("linux-x86_64/other/1/secret").Hardlink("linux-x86_64/evil/1/x", "linux-x86_64/other/1/secret"), "CAIRN-E0306"),
        };
        b.Write(archive);
        await AssertRefusedAsync(temp, archive, code, []);

        static string Add(TarBuilder _, string c) => c;
    }

    [Fact]
    public async Task Gzip_bomb_is_refused_by_ratio_with_bounded_memory()
    {
        using var temp = new TempDir("cairn-bomb-gz");
        var bomb = Bombs.Gzip(temp.File("bomb.tar.gz"), "zeros.bin");
        Assert.True(new FileInfo(bomb).Length < 2 << 20, $"the bomb is {new FileInfo(bomb).Length} bytes, not a bomb");
        var r = await AssertRefusedAsync(temp, bomb, "CAIRN-E0312", ["--as", "bomb/1"], measureMemory: true);
        AssertMemory(r);
    }

    [Fact]
    public async Task Zstd_bomb_is_refused_by_ratio_with_bounded_memory()
    {
        using var temp = new TempDir("cairn-bomb-zst");
        var bomb = Bombs.Zstd(temp.File("bomb.tar.zst"), "zeros.bin");
        Assert.True(new FileInfo(bomb).Length < 256 << 10, $"the bomb is {new FileInfo(bomb).Length} bytes, not a bomb");
        var r = await AssertRefusedAsync(temp, bomb, "CAIRN-E0312", ["--as", "bomb/1"], measureMemory: true);
        AssertMemory(r);
    }

    [Fact]
    public async Task Bomb_past_a_lifted_ratio_cap_streams_into_the_size_cap_with_bounded_memory()
    {
        // With the ratio check lifted, 512 MiB really are decompressed and chunked: memory must stay flat anyway.
        using var temp = new TempDir("cairn-bomb-size");
        var bomb = Bombs.Zstd(temp.File("bomb.tar.zst"), "zeros.bin");
        var r = await AssertRefusedAsync(temp, bomb, "CAIRN-E0311", ["--as", "bomb/1", "--max-ratio", "1000000000", "--max-size", (512L << 20).ToString(System.Globalization.CultureInfo.InvariantCulture)], measureMemory: true);
        AssertMemory(r);
    }

    [Fact]
    public async Task Zstd_frame_asking_for_a_huge_window_is_refused()
    {
        Tools.Require("zstd");
        using var temp = new TempDir("cairn-zstd-window");
        var tar = new TarBuilder().File("a", new string('x', 1000)).Write(temp.File("w.tar"));
        // --long=31 from a pipe (size unknown) writes a frame header asking for a 2 GiB window.
        await Exec.ShellAsync($"zstd -q --long=31 -c < '{tar}' > '{temp.File("w.tar.zst")}'", Ct);
        await AssertRefusedAsync(temp, temp.File("w.tar.zst"), "CAIRN-E0300", ["--as", "w/1"]);
    }

    private static void AssertMemory(RunResult r)
    {
        Assert.True(r.PeakRssKb > 0, "peak memory was not sampled");
        Assert.True(r.PeakRssKb < 500 * 1024, $"import peaked at {r.PeakRssKb / 1024} MiB resident: the archive is not streamed");
    }

    private async Task<RunResult> AssertRefusedAsync(TempDir temp, string archive, string code, string[] importArgs, bool measureMemory = false)
    {
        var repo = shared.Repo;
        var canary = temp.Sub("canary");
        await File.WriteAllTextAsync(Path.Combine(canary, "target"), "canary\n", Ct);
        // The working directory sits next to the canary, so a relative escape would land in it.
        var work = temp.Sub("work");
        var before = shared.State;

        var r = await Exec.CairnAsync(["--repo", repo.Path, "import", archive, .. importArgs], Ct, measureMemory: measureMemory, workingDirectory: work);

        CairnAssert.Fails(r, 5, code);
        if (code != "CAIRN-E0300") Assert.Contains("nothing was imported", r.Stderr, StringComparison.Ordinal);
        Assert.Equal(before, await repo.StateAsync(Ct));
        Assert.Equal(["target"], Directory.GetFileSystemEntries(canary).Select(Path.GetFileName));
        Assert.Empty(Directory.GetFileSystemEntries(work));
        Assert.Empty(Directory.GetFiles(temp.Path, "pwned", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(repo.Path)!, "pwned", SearchOption.AllDirectories));
        Assert.False(File.Exists("/tmp/cairn-test-absolute-pwned"));
        // Unchanged head, revisions, catalog and pack files: nothing was half-imported, so verify has nothing new to check.
        Assert.Empty(Directory.GetFiles(Path.Combine(repo.Path, "tmp")));
        return r;
    }
}
