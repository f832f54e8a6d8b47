using System.Diagnostics;

namespace Cairn.Fuse.Tests;

/// <summary>`cairn mount` and `cairn unmount` as real processes.</summary>
public sealed class CliMountTests
{
    [Fact]
    public async Task ForegroundMountServesTheTreeAndSigtermUnmountsCleanly()
    {
        await using var repo = await MountedRepository.CreateAsync();
        using var process = Shell.StartCairn("mount", repo.RepositoryPath, repo.MountPoint, "--foreground", "--follow", "--follow-interval", "1");
        var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
        if (line is null) Assert.Fail(await process.StandardError.ReadToEndAsync());
        Assert.Contains($"at {repo.MountPoint}", line, StringComparison.Ordinal);
        await Shell.ShAsync($"diff -r --no-dereference {Shell.Q(repo.Source)} {Shell.Q(repo.Product)}");
        Assert.Equal(0, Kill(process.Id, 15));
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(0, process.ExitCode);
        Assert.Null(MountTable.Find(repo.MountPoint));
    }

    [Fact]
    public async Task DetachedMountReturnsOnceMountedAndUnmountEndsIt()
    {
        await using var repo = await MountedRepository.CreateAsync();
        var log = Path.Combine(repo.Root, "mount.log");
        var r = await Shell.CairnAsync("mount", repo.RepositoryPath, repo.MountPoint, "--log", log);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("fuse.cairn", MountTable.Find(repo.MountPoint)?.FsType);
        var pid = int.Parse(r.Stdout.Split("(pid ")[1].Split(',')[0], System.Globalization.CultureInfo.InvariantCulture);
        await Shell.ShAsync($"cmp {Shell.Q(Path.Combine(repo.Source, "big.bin"))} {Shell.Q(Path.Combine(repo.Product, "big.bin"))}");
        r = await Shell.CairnAsync("unmount", repo.MountPoint);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Null(MountTable.Find(repo.MountPoint));
        var deadline = Stopwatch.StartNew();
        while (Exists(pid) && deadline.Elapsed < TimeSpan.FromSeconds(15)) await Task.Delay(100);
        Assert.False(Exists(pid), "the mount process did not exit after unmount");

        r = await Shell.CairnAsync("unmount", repo.MountPoint);
        Assert.Equal(3, r.ExitCode);
        Assert.Contains("CAIRN-E0804", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MountingOnAMissingDirectoryFailsWithItsCode()
    {
        await using var repo = await MountedRepository.CreateAsync();
        var r = await Shell.CairnAsync("mount", repo.RepositoryPath, Path.Combine(repo.Root, "missing"), "--foreground");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("CAIRN-E0802", r.Stderr, StringComparison.Ordinal);
    }

    private static bool Exists(int pid)
    {
        // A zombie (exited, not yet reaped by its parent) counts as gone.
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);
}
