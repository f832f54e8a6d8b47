using System.Security.Cryptography;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Fuse.Tests;

/// <summary>One real mount (as root) of a real source tree, shared by read-only checks.</summary>
public sealed class MountFixture : IAsyncLifetime
{
    public MountedRepository Repo { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Repo = await MountedRepository.CreateAsync();
        await Repo.MountAsync();
    }

    public async Task DisposeAsync() => await Repo.DisposeAsync();
}

public sealed class MountTests(MountFixture fixture) : IClassFixture<MountFixture>
{
    private MountedRepository Repo => fixture.Repo;

    [Fact]
    public async Task EveryFileEqualsThePublishedTree() =>
        await Shell.ShAsync($"diff -r --no-dereference {Shell.Q(Repo.Source)} {Shell.Q(Repo.Product)}");

    [Fact]
    public void SizesModesAndLinksMatchTheSource()
    {
        var count = 0;
        foreach (var source in Directory.EnumerateFileSystemEntries(Repo.Source, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(Repo.Source, source);
            var mounted = Path.Combine(Repo.Product, relative);
            var info = new FileInfo(source);
            var m = new FileInfo(mounted);
            Assert.True(m.Exists || Directory.Exists(mounted) || m.LinkTarget is not null, $"{relative} missing on the mount");
            if (info.LinkTarget is { } target)
            {
                Assert.Equal(target, m.LinkTarget);
            }
            else if (Directory.Exists(source))
            {
                Assert.Equal((UnixFileMode)0b101_101_101, File.GetUnixFileMode(mounted));
            }
            else
            {
                Assert.Equal(info.Length, m.Length);
                var executable = (info.UnixFileMode & UnixFileMode.UserExecute) != 0;
                Assert.Equal(executable ? (UnixFileMode)0b101_101_101 : (UnixFileMode)0b100_100_100, m.UnixFileMode);
            }

            count++;
        }

        Assert.True(count > 100, $"only {count} entries compared");
    }

    [Fact]
    public async Task StatReadlinkAndExecuteWork()
    {
        var r = await Shell.ShAsync($"cd {Shell.Q(Repo.Product)} && stat -c '%s %a %h %F' big.bin lib/libbig.so.1.0 bin/hello empty && stat -c '%a %h %F' empty-dir lib . " +
            "&& readlink lib/libbig.so && readlink dangling && readlink absolute && ./bin/hello && cat lib/libbig.so | wc -c");
        Assert.Equal(
            "3500000 444 1 regular file\n1300000 444 1 regular file\n36 555 1 regular file\n0 444 1 regular empty file\n" +
            $"555 2 directory\n555 2 directory\n555 {2 + Directory.GetDirectories(Repo.Source).Length} directory\n" +
            "libbig.so.1\ndoes/not/exist\n/etc/hostname\nhello from the mount\n1300000\n",
            r.Stdout);
    }

    [Fact]
    public async Task IdenticalContentAtTwoPathsIsNotHardLinked()
    {
        var r = await Shell.ShAsync($"cd {Shell.Q(Repo.Product)} && stat -c '%i %h' twin-a lib/twin-b");
        var lines = r.Stdout.Trim().Split('\n');
        Assert.NotEqual(lines[0].Split(' ')[0], lines[1].Split(' ')[0]);
        Assert.All(lines, l => Assert.EndsWith(" 1", l, StringComparison.Ordinal));
    }

    [Fact]
    public async Task InodesAreStableWhileMounted()
    {
        var first = (await Shell.ShAsync($"ls -iR {Shell.Q(Repo.MountPoint)} | md5sum")).Stdout;
        await Shell.ShAsync("echo 2 > /proc/sys/vm/drop_caches");
        Assert.Equal(first, (await Shell.ShAsync($"ls -iR {Shell.Q(Repo.MountPoint)} | md5sum")).Stdout);
    }

    [Fact]
    public async Task FindLsAndDuWalkTheWholeMount()
    {
        var source = (await Shell.ShAsync($"cd {Shell.Q(Repo.Source)} && find . | sort")).Stdout;
        var mounted = (await Shell.ShAsync($"cd {Shell.Q(Repo.Product)} && find . | sort")).Stdout;
        Assert.Equal(source, mounted);
        var typesSource = (await Shell.ShAsync($"cd {Shell.Q(Repo.Source)} && find . -printf '%y %s %p\\n' | grep -v '^d' | sort")).Stdout;
        var typesMounted = (await Shell.ShAsync($"cd {Shell.Q(Repo.Product)} && find . -printf '%y %s %p\\n' | grep -v '^d' | sort")).Stdout;
        Assert.Equal(typesSource, typesMounted);
        var ls = await Shell.ShAsync($"ls -lR {Shell.Q(Repo.MountPoint)}");
        Assert.Contains("big.bin", ls.Stdout, StringComparison.Ordinal);
        var du = await Shell.ShAsync($"du -sb {Shell.Q(Repo.Product)}");
        Assert.True(long.Parse(du.Stdout.Split('\t')[0], System.Globalization.CultureInfo.InvariantCulture) > 4_800_000, du.Stdout);
        var df = await Shell.ShAsync($"df -P {Shell.Q(Repo.MountPoint)}");
        Assert.Contains("cairn-test", df.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EightThreadsReadingAtOnceSeeTheRightBytes()
    {
        var files = Directory.EnumerateFiles(Repo.Source, "*", SearchOption.AllDirectories)
            .Where(f => new FileInfo(f).LinkTarget is null).ToList();
        var expected = files.ToDictionary(f => f, f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));
        var errors = new System.Collections.Concurrent.ConcurrentBag<string>();
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            // Each thread reads every file, in its own order, in odd-sized pieces.
            var order = files.OrderBy(f => HashCode.Combine(f, t)).ToList();
            var buffer = new byte[7919 * (t + 1)];
            foreach (var f in order)
            {
                using var stream = File.OpenRead(Path.Combine(Repo.Product, Path.GetRelativePath(Repo.Source, f)));
                using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                int n;
                while ((n = stream.Read(buffer)) > 0) sha.AppendData(buffer, 0, n);
                if (Convert.ToHexString(sha.GetHashAndReset()) != expected[f]) errors.Add(f);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Empty(errors);
    }

    [Fact]
    public async Task WritesFailWithReadOnlyFileSystem()
    {
        var p = Shell.Q(Repo.Product);
        foreach (var script in new[]
        {
            $"touch {p}/new-file", $"mkdir {p}/new-dir", $"echo x >> {p}/README", $"rm {p}/README", $"mv {p}/README {p}/README2",
            $"ln -s x {p}/new-link", $"chmod 777 {p}/README", $"truncate -s 0 {p}/big.bin", $"setfattr -n user.x -v 1 {p}/README 2>&1 || touch {p}/README",
        })
        {
            var r = await Shell.ShAsync(script, check: false);
            Assert.True(r.ExitCode != 0, script);
            Assert.Contains("Read-only file system", r.Stderr + r.Stdout, StringComparison.Ordinal);
        }

        var e = Assert.ThrowsAny<IOException>(() => File.WriteAllText(Path.Combine(Repo.Product, "README"), "x"));
        Assert.Contains("Read-only", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheMountIsReadOnlyNosuidNodevFuseCairn()
    {
        var entry = MountTable.Find(Repo.MountPoint);
        Assert.NotNull(entry);
        Assert.Equal("fuse.cairn", entry.FsType);
        var options = File.ReadLines("/proc/self/mountinfo").Single(l => l.Split(' ')[4] == Repo.MountPoint).Split(' ')[5];
        Assert.Contains("ro", options.Split(','));
        Assert.Contains("nosuid", options.Split(','));
        Assert.Contains("nodev", options.Split(','));
    }
}

/// <summary>Mounts that are damaged, slow, replaced or unmounted on purpose: each has its own repository.</summary>
public sealed class MountFaultTests
{
    [Fact]
    public async Task ACorruptObjectGivesEioAndALogLineNamingItWhileOtherFilesStillRead()
    {
        await using var repo = await MountedRepository.CreateAsync();
        var victim = Path.Combine(repo.Source, "lib", "libbig.so.1.0");
        // Incompressible enough to be stored raw: find its first chunk's bytes in a pack and flip one.
        var chunk = File.ReadAllBytes(victim).AsSpan(200_000, 64).ToArray();
        var flipped = false;
        foreach (var pack in Directory.EnumerateFiles(Path.Combine(repo.RepositoryPath, "packs"), "*.pack"))
        {
            var bytes = File.ReadAllBytes(pack);
            var at = bytes.AsSpan().IndexOf(chunk);
            if (at < 0) continue;
            bytes[at + 10] ^= 0xFF;
            File.WriteAllBytes(pack, bytes);
            flipped = true;
        }

        Assert.True(flipped, "the victim's bytes were not found raw in any pack");
        var mount = await repo.MountAsync();
        var r = await Shell.ShAsync($"cat {Shell.Q(Path.Combine(repo.Product, "lib", "libbig.so.1.0"))} > /dev/null", check: false);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("Input/output error", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("CAIRN-E0805", repo.Log.Text, StringComparison.Ordinal);
        Assert.Contains("lib/libbig.so.1.0", repo.Log.Text, StringComparison.Ordinal);
        Assert.Matches("[0-9a-f]{64}", repo.Log.Text);
        Assert.True(mount.Errors > 0);
        // Everything else still reads.
        await Shell.ShAsync($"cmp {Shell.Q(Path.Combine(repo.Source, "big.bin"))} {Shell.Q(Path.Combine(repo.Product, "big.bin"))}");
        await Shell.ShAsync($"cmp {Shell.Q(Path.Combine(repo.Source, "README"))} {Shell.Q(Path.Combine(repo.Product, "README"))}");
    }

    [Fact]
    public async Task AStoreThatNeverAnswersGivesEioAfterTheTimeOutNotAHang()
    {
        await using var repo = await MountedRepository.CreateAsync();
        HangingStore? store = null;
        await repo.MountAsync(new FuseMountOptions { ReadTimeout = TimeSpan.FromSeconds(2), FsName = "cairn-test" }, r =>
        {
            store = new HangingStore(r.Objects);
            return new ProductRepository(store, r.Revisions, TimeProvider.System);
        });
        await Shell.ShAsync($"cat {Shell.Q(Path.Combine(repo.Product, "README"))} > /dev/null"); // fetched before the outage
        store!.Hang = true;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var r = await Shell.ShAsync($"cat {Shell.Q(Path.Combine(repo.Product, "big.bin"))} > /dev/null", check: false, timeout: TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("Input/output error", r.Stderr, StringComparison.Ordinal);
        Assert.InRange(watch.Elapsed.TotalSeconds, 1.5, 20);
        Assert.Contains("timed out", repo.Log.Text, StringComparison.Ordinal);
        // Cached content still reads during the outage; after it, the same file reads again.
        await Shell.ShAsync($"cmp {Shell.Q(Path.Combine(repo.Source, "README"))} {Shell.Q(Path.Combine(repo.Product, "README"))}");
        store.Hang = false;
        await Shell.ShAsync($"cmp {Shell.Q(Path.Combine(repo.Source, "big.bin"))} {Shell.Q(Path.Combine(repo.Product, "big.bin"))}");
    }

    [Fact]
    public async Task UnmountWithAnOpenFileDetachesAndTheFileKeepsReading()
    {
        await using var repo = await MountedRepository.CreateAsync();
        var mount = await repo.MountAsync();
        var expected = await File.ReadAllBytesAsync(Path.Combine(repo.Source, "big.bin"));
        var actual = new byte[expected.Length];
        await using (var open = File.OpenRead(Path.Combine(repo.Product, "big.bin")))
        {
            await open.ReadExactlyAsync(actual.AsMemory(0, 1000));
            var r = await Shell.CairnAsync("unmount", repo.MountPoint);
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Null(MountTable.Find(repo.MountPoint));
            Assert.False(File.Exists(Path.Combine(repo.Product, "big.bin")));
            await open.ReadExactlyAsync(actual.AsMemory(1000));
            Assert.Equal(expected, actual);
            Assert.False(mount.Completion.IsCompleted);
        }

        await mount.Completion.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task FollowShowsANewRevisionToNewLookupsWhileOpenFilesKeepTheOld()
    {
        await using var repo = await MountedRepository.CreateAsync();
        var mount = await repo.MountAsync(new FuseMountOptions { FollowInterval = TimeSpan.FromSeconds(1), FsName = "cairn-test" });
        var readme = Path.Combine(repo.Product, "README");
        var old = await File.ReadAllTextAsync(readme);
        await using var open = File.OpenRead(readme);
        var changed = Path.Combine(repo.Root, "changed");
        await Shell.ShAsync($"cp -a {Shell.Q(repo.Source)} {Shell.Q(changed)} && echo 'new revision' > {Shell.Q(changed)}/README");
        await repo.PublishAsync("zlib", "1.2.13", changed, replace: true);
        await repo.PublishAsync("hello", "2.10", changed);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!Directory.Exists(Path.Combine(repo.MountPoint, "linux-x86_64", "hello", "2.10")) && DateTime.UtcNow < deadline) await Task.Delay(200);
        Assert.True(Directory.Exists(Path.Combine(repo.MountPoint, "linux-x86_64", "hello", "2.10")), "the new product did not appear");
        Assert.True(mount.Revision.Revision >= 4);
        Assert.Equal("new revision\n", await File.ReadAllTextAsync(readme));
        using var reader = new StreamReader(open);
        Assert.Equal(old, await reader.ReadToEndAsync());
    }

    [Fact]
    public async Task MountingTwiceOrOnAMissingDirectoryIsRefusedWithACode()
    {
        await using var repo = await MountedRepository.CreateAsync();
        await repo.MountAsync();
        await using var again = await Cairn.Repository.FileSystem.DirectoryRepository.OpenAsync(repo.RepositoryPath, TimeProvider.System, null, TimeSpan.FromSeconds(5), CancellationToken.None);
        var e = await Assert.ThrowsAsync<CairnException>(() => FuseMount.MountAsync(again, repo.MountPoint, new FuseMountOptions(), new CapturingLogger(), CancellationToken.None));
        Assert.Equal(ErrorCode.MountPointInvalid, e.Code);
        e = await Assert.ThrowsAsync<CairnException>(() => FuseMount.MountAsync(again, Path.Combine(repo.Root, "nope"), new FuseMountOptions(), new CapturingLogger(), CancellationToken.None));
        Assert.Equal(ErrorCode.MountPointInvalid, e.Code);
    }
}

/// <summary>Wraps a store; while <see cref="Hang"/> is set, fetches never complete (an unreachable origin without a time-out).</summary>
public sealed class HangingStore(IObjectReader inner) : IObjectReader
{
    private volatile bool _hang;

    public bool Hang
    {
        get => _hang;
        set => _hang = value;
    }

    public ValueTask<bool> ContainsAsync(Digest digest, CancellationToken ct) => inner.ContainsAsync(digest, ct);

    public async ValueTask<byte[]> GetAsync(Digest digest, CancellationToken ct)
    {
        if (Hang) await Task.Delay(Timeout.Infinite, CancellationToken.None);
        return await inner.GetAsync(digest, ct);
    }

    public IAsyncEnumerable<ObjectInfo> ListAsync(CancellationToken ct) => inner.ListAsync(ct);

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
