using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Cairn.Fuse.Tests;

/// <summary>The mount over `cairn serve` on loopback: lazy remote fetches, the client cache, an origin that goes away.</summary>
public sealed class HttpMountTests
{
    [Fact]
    public async Task MountOverServeReadsEverythingThenCachedFilesSurviveTheOriginAndUncachedOnesFailWithEio()
    {
        await using var repo = await MountedRepository.CreateAsync();
        using var server = Shell.StartCairn("--repo", repo.RepositoryPath, "serve", "--listen", "http://127.0.0.1:0");
        try
        {
            var line = await server.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            var url = Regex.Match(line ?? "", @"http://127\.0\.0\.1:\d+").Value;
            Assert.False(string.IsNullOrEmpty(url), line);
            var r = await Shell.CairnAsync("mount", url, repo.MountPoint, "--cache", Path.Combine(repo.Root, "cache"), "--timeout", "3", "--log", Path.Combine(repo.Root, "mount.log"));
            Assert.True(r.ExitCode == 0, r.ToString());

            // Read one file only; then take the origin away.
            await Shell.ShAsync($"cmp {Shell.Q(Path.Combine(repo.Source, "README"))} {Shell.Q(Path.Combine(repo.Product, "README"))}");
            server.Kill();
            await server.WaitForExitAsync();
            await Shell.ShAsync($"cmp {Shell.Q(Path.Combine(repo.Source, "README"))} {Shell.Q(Path.Combine(repo.Product, "README"))}");
            var watch = Stopwatch.StartNew();
            r = await Shell.ShAsync($"cat {Shell.Q(Path.Combine(repo.Product, "big.bin"))} > /dev/null", check: false, timeout: TimeSpan.FromSeconds(60));
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("Input/output error", r.Stderr, StringComparison.Ordinal);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"took {watch.Elapsed}");
            var log = await File.ReadAllTextAsync(Path.Combine(repo.Root, "mount.log"));
            Assert.Contains("CAIRN-E0805", log, StringComparison.Ordinal);
        }
        finally
        {
            if (!server.HasExited) server.Kill();
            await Shell.CairnAsync("unmount", repo.MountPoint);
        }
    }

    [Fact]
    public async Task EveryFileOverHttpEqualsThePublishedTree()
    {
        await using var repo = await MountedRepository.CreateAsync();
        using var server = Shell.StartCairn("--repo", repo.RepositoryPath, "serve", "--listen", "http://127.0.0.1:0");
        try
        {
            var line = await server.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            var url = Regex.Match(line ?? "", @"http://127\.0\.0\.1:\d+").Value;
            var r = await Shell.CairnAsync("mount", url, repo.MountPoint, "--cache", Path.Combine(repo.Root, "cache"), "--log", Path.Combine(repo.Root, "mount.log"));
            Assert.True(r.ExitCode == 0, r.ToString());
            await Shell.ShAsync($"diff -r --no-dereference {Shell.Q(repo.Source)} {Shell.Q(repo.Product)}");
        }
        finally
        {
            server.Kill();
            await Shell.CairnAsync("unmount", repo.MountPoint);
        }
    }
}
