using System.Net;
using System.Net.Sockets;
using Cairn.Core;

namespace Cairn.Sandbox.Tests;

public sealed class IsolationTests : SandboxTestBase
{
    [Fact]
    public async Task Runs_a_command_and_streams_its_merged_output()
    {
        var (result, log) = await RunAsync(Shell("echo out; echo err >&2; exit 7"));
        Assert.Equal(7, result.ExitCode);
        Assert.Null(result.LimitExceeded);
        Assert.Contains("out\n", log);
        Assert.Contains("err\n", log);
    }

    [Fact]
    public async Task A_signal_is_reported()
    {
        var (result, _) = await RunAsync(Shell("kill -TERM $$"));
        Assert.Equal(15, result.Signal);
        Assert.False(result.Succeeded);
    }

    [Fact]
    public async Task Environment_holds_only_the_documented_variables()
    {
        Environment.SetEnvironmentVariable("CAIRN_HOST_SECRET", "leak");
        var spec = Shell("env; cat /proc/1/environ | tr '\\0' '\\n'") with
        {
            Environment = new Dictionary<string, string> { ["NAME"] = "zlib" },
            SourceDateEpoch = 1234,
        };
        var (result, log) = await RunAsync(spec);
        Assert.True(result.Succeeded, log);
        Assert.DoesNotContain("CAIRN_HOST_SECRET", log);
        var names = log.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.Contains('=')).Select(l => l[..l.IndexOf('=')]).ToHashSet();
        var expected = SandboxContract.FixedEnvironment.Keys.Concat(["PATH", "SOURCE_DATE_EPOCH", "NAME", "PWD"]).ToHashSet();
        Assert.Subset(expected, names);
        Assert.Contains("SOURCE_DATE_EPOCH=1234\n", log);
        Assert.Contains("TZ=UTC\n", log);
        Assert.Contains("LC_ALL=C\n", log);
        Assert.Contains($"HOME={SandboxContract.Home}\n", log);
    }

    [Fact]
    public async Task Fixed_variables_cannot_be_overridden()
    {
        var spec = Shell("true") with { Environment = new Dictionary<string, string> { ["HOME"] = "/root" } };
        var e = await Assert.ThrowsAsync<CairnException>(() => RunAsync(spec));
        Assert.Equal(ErrorCode.SandboxSpecInvalid, e.Code);
    }

    [Fact]
    public async Task All_capabilities_are_dropped()
    {
        var log = await RunOkAsync("grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status");
        var lines = log.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5, lines.Length);
        Assert.All(lines, l => Assert.EndsWith("0000000000000000", l));
    }

    [Fact]
    public async Task Hostname_umask_and_home_are_fixed()
    {
        var log = await RunOkAsync("hostname; umask; echo $HOME; touch $HOME/x && echo home-writable; date +%Z");
        Assert.Equal($"{SandboxContract.HostName}\n0022\n{SandboxContract.Home}\nhome-writable\nUTC\n", log);
    }

    [Fact]
    public async Task Cannot_reach_a_server_on_the_host_loopback()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var (result, log) = await RunAsync(Shell($"exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED") with { Command = ["/bin/bash", "-c", $"exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED"] });
        Assert.False(result.Succeeded, log);
        Assert.DoesNotContain("CONNECTED", log);
        Assert.False(listener.Pending());

        // Only loopback exists inside: no interface leads out.
        var devices = await RunOkAsync("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
        Assert.Equal("lo\n", devices);
    }

    [Fact]
    public async Task Host_home_processes_and_other_paths_are_invisible()
    {
        File.WriteAllText(Path.Combine(Scratch, "secret"), "s");
        var log = await RunOkAsync(
            $"ls -A /; echo ---; ls -A /root 2>&1; ls /home; test -e {Scratch}/secret && echo SEEN; ls /proc | grep -c '^[0-9]'");
        Assert.DoesNotContain("SEEN", log);
        Assert.DoesNotContain("work", log.Split("---")[0]);
        Assert.Contains("cairn", log);

        // Only the sandbox's init, the shell and ls: not the host's processes.
        var processes = int.Parse(log.Trim().Split('\n')[^1]);
        Assert.InRange(processes, 1, 5);
    }

    [Fact]
    public async Task Read_only_mounts_stay_read_only_and_the_prefix_is_writable()
    {
        var deps = Directory.CreateDirectory(Path.Combine(Scratch, "zlib")).FullName;
        var prefix = Directory.CreateDirectory(Path.Combine(Scratch, "prefix")).FullName;
        File.WriteAllText(Path.Combine(deps, "lib.txt"), "zlib");
        var log = await RunOkAsync(
            """
            for p in /usr/x /etc/x /x /opt/zlib/x /opt/zlib/lib.txt; do (echo no > $p) 2>/dev/null && echo "WROTE $p"; done
            cat /opt/zlib/lib.txt; echo built > /opt/pkg/1.0/out; mkdir -p /opt/pkg/1.0/bin
            """,
            SandboxMount.ReadOnly(deps, "/opt/zlib"),
            SandboxMount.Writable(prefix, "/opt/pkg/1.0"));
        Assert.DoesNotContain("WROTE", log);
        Assert.Contains("zlib", log);
        Assert.Equal("built\n", File.ReadAllText(Path.Combine(prefix, "out")));
        Assert.Equal("zlib", File.ReadAllText(Path.Combine(deps, "lib.txt")));
    }

    [Fact]
    public async Task Privileged_operations_fail()
    {
        var prefix = Directory.CreateDirectory(Path.Combine(Scratch, "prefix")).FullName;
        var log = await RunOkAsync(
            """
            mount -t tmpfs none /opt/p 2>/dev/null && echo MOUNTED
            mknod /opt/p/dev b 8 0 2>/dev/null && echo MKNOD
            unshare -U true 2>/dev/null && echo USERNS
            unshare -m true 2>/dev/null && echo MOUNTNS
            touch /opt/p/f && chmod u+s /opt/p/f 2>/dev/null && echo SETUID
            chmod g+s /opt/p 2>/dev/null && echo SETGID
            python3 -c 'import fcntl, sys; fcntl.ioctl(0, 0x5412, b"x")' 2>/dev/null && echo TIOCSTI
            chmod 755 /opt/p/f || echo PLAIN_CHMOD_FAILED
            chown 1000 /opt/p 2>/dev/null && echo CHOWN_OTHER
            echo done
            """,
            SandboxMount.Writable(prefix, "/opt/p"));
        Assert.Equal("done\n", log);
    }

    [Fact]
    public async Task A_missing_bwrap_says_how_to_install_it()
    {
        var sandbox = new BubblewrapSandbox(new BubblewrapOptions { BwrapPath = "/nonexistent/bwrap" });
        var e = await Assert.ThrowsAsync<CairnException>(() => sandbox.RunAsync(Shell("true"), Stream.Null, default));
        Assert.Equal(ErrorCode.SandboxUnavailable, e.Code);
        Assert.Contains("apt-get install bubblewrap", e.Hint);
    }

    [Theory]
    [InlineData("relative/path")]
    [InlineData("/a/../etc")]
    public async Task Bad_mount_points_are_refused(string sandboxPath)
    {
        var spec = Shell("true", null, SandboxMount.ReadOnly(Scratch, sandboxPath));
        var e = await Assert.ThrowsAsync<CairnException>(() => RunAsync(spec));
        Assert.Equal(ErrorCode.SandboxSpecInvalid, e.Code);
    }
}
