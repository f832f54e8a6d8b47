using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Cairn.Fuse.Tests;

/// <summary>`cairn mount` by a user other than root goes through Debian's setuid fusermount3 (ADR 0004).</summary>
public sealed class UnprivilegedMountTests
{
    private const int Nobody = 65534;

    private static string AsNobody(string home, string command) =>
        $"setpriv --reuid={Nobody} --regid={Nobody} --clear-groups env HOME={Shell.Q(home)} DOTNET_CLI_TELEMETRY_OPTOUT=1 {command}";

    [Fact]
    public async Task Nobody_mounts_a_served_repository_reads_a_file_and_unmounts()
    {
        await using var repo = await MountedRepository.CreateAsync();
        // Everything nobody touches: its own directory for the mount point, the cache, HOME and the log.
        var own = Path.Combine(repo.Root, "nobody");
        var mountPoint = Path.Combine(own, "mnt");
        Directory.CreateDirectory(mountPoint);
        await Shell.ShAsync($"chmod 755 {Shell.Q(repo.Root)} && chown -R {Nobody}:{Nobody} {Shell.Q(own)}");
        var cairn = CairnUnderTest.ShellWords;
        var binary = CairnUnderTest.Command[^1];
        var probe = await Shell.ShAsync(AsNobody(own, $"test -r {Shell.Q(binary)}"), check: false);
        Assert.True(probe.ExitCode == 0, $"nobody cannot read {binary}: the test binaries must be world-readable ({probe})");

        // fusermount3 opens /dev/fuse as the calling user: Debian's udev rule makes it 0666; containers often leave it 0600.
        var deviceMode = File.GetUnixFileMode("/dev/fuse");
        var worldMode = deviceMode | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite;
        if (deviceMode != worldMode) File.SetUnixFileMode("/dev/fuse", worldMode);
        using var server = Shell.StartCairn("--repo", repo.RepositoryPath, "serve", "--listen", "http://127.0.0.1:0");
        try
        {
            var line = await server.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            var url = Regex.Match(line ?? "", @"http://127\.0\.0\.1:\d+").Value;
            Assert.False(string.IsNullOrEmpty(url), line);

            var r = await Shell.ShAsync(AsNobody(own, $"{cairn} mount {url} {Shell.Q(mountPoint)} --cache {Shell.Q(Path.Combine(own, "cache"))} --log {Shell.Q(Path.Combine(own, "mount.log"))}"),
                check: false, timeout: TimeSpan.FromMinutes(3));
            Assert.True(r.ExitCode == 0, r + "\n" + ReadLog(own));
            var entry = MountTable.Find(mountPoint);
            Assert.Equal(FuseMount.FsType, entry?.FsType);
            var pid = int.Parse(r.Stdout.Split("(pid ")[1].Split(',')[0], System.Globalization.CultureInfo.InvariantCulture);
            var uid = File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            Assert.Equal($"{Nobody}", uid.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);

            var read = await Shell.ShAsync(AsNobody(own, $"cat {Shell.Q(Path.Combine(mountPoint, MountedRepository.ProductPath, "README"))}"));
            Assert.Equal(await File.ReadAllTextAsync(Path.Combine(repo.Source, "README")), read.Stdout);
            var write = await Shell.ShAsync(AsNobody(own, $"touch {Shell.Q(Path.Combine(mountPoint, MountedRepository.ProductPath, "new"))}"), check: false);
            Assert.NotEqual(0, write.ExitCode);

            r = await Shell.ShAsync(AsNobody(own, $"{cairn} unmount {Shell.Q(mountPoint)}"), check: false);
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Null(MountTable.Find(mountPoint));
            var deadline = Stopwatch.StartNew();
            while (Directory.Exists($"/proc/{pid}") && deadline.Elapsed < TimeSpan.FromSeconds(15)) await Task.Delay(100);
            Assert.False(Directory.Exists($"/proc/{pid}"), "the mount process did not exit after unmount");
        }
        finally
        {
            if (!server.HasExited) server.Kill();
            if (MountTable.Find(mountPoint) is not null) FuseMountTestNative.Detach(mountPoint);
            if (deviceMode != worldMode) File.SetUnixFileMode("/dev/fuse", deviceMode);
        }
    }

    private static string ReadLog(string own)
    {
        var log = Path.Combine(own, "mount.log");
        return File.Exists(log) ? File.ReadAllText(log) : "(no mount log)";
    }
}
