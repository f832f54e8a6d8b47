using System.Diagnostics;

namespace Cairn.Sandbox.Tests;

/// <summary>
/// The seccomp filter in the real sandbox, probed with raw system calls (python3 ctypes from the host's /usr). The
/// same probe run directly on the host shows what the filter changes: there, setting S_ISUID works, TIOCSTI on a
/// non-terminal says ENOTTY and clone3 with no arguments says EINVAL.
/// </summary>
public sealed class SeccompSandboxTests : SandboxTestBase
{
    /// <summary>Prints NAME=ok or NAME=ERRNO-NAME per probe; $1 is a writable directory.</summary>
    private const string Probe = """
        import ctypes, errno, os, platform, subprocess, sys, threading
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        x86 = platform.machine() == "x86_64"
        NR = dict(unshare=272 if x86 else 97, setns=308 if x86 else 268, clone3=435, keyctl=250 if x86 else 219,
                  bpf=321 if x86 else 280, perf_event_open=298 if x86 else 241, userfaultfd=323 if x86 else 282,
                  mount=165 if x86 else 40, ioctl=16 if x86 else 29)
        def result(name, fn):
            try:
                fn()
                print(f"{name}=ok")
            except OSError as e:
                print(f"{name}={errno.errorcode.get(e.errno, e.errno)}")
        def sc(nr, *args):
            r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_ulong(a) for a in args])
            if r < 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e))
        d = sys.argv[1]
        f = os.path.join(d, "f")
        open(f, "w").close()
        result("chmod_755", lambda: os.chmod(f, 0o755))
        result("chmod_setuid", lambda: os.chmod(f, 0o4755))
        result("chmod_setgid", lambda: os.chmod(f, 0o2755))
        fd = os.open(f, os.O_RDONLY)
        result("fchmod_setuid", lambda: os.fchmod(fd, 0o4755))
        result("mkfifo", lambda: os.mkfifo(os.path.join(d, "fifo")))
        null = os.open("/dev/null", os.O_RDWR)
        c = ctypes.c_char(b"x")
        result("tiocsti", lambda: sc(NR["ioctl"], null, 0x5412, ctypes.addressof(c)))
        result("tioclinux", lambda: sc(NR["ioctl"], null, 0x541c, ctypes.addressof(c)))
        result("clone3", lambda: sc(NR["clone3"], 0, 0))
        result("unshare_user", lambda: sc(NR["unshare"], 0x10000000))
        result("unshare_mount", lambda: sc(NR["unshare"], 0x00020000))
        result("setns", lambda: sc(NR["setns"], 0, 0))
        result("keyctl", lambda: sc(NR["keyctl"], 0, 0xfffffffd, 0))
        result("bpf", lambda: sc(NR["bpf"], 0, 0, 0))
        result("perf_event_open", lambda: sc(NR["perf_event_open"], 0, 0, 0xffffffff, 0xffffffff, 0))
        result("userfaultfd", lambda: sc(NR["userfaultfd"], 0))
        result("mount", lambda: sc(NR["mount"], 0, 0, 0, 0, 0))
        out = []
        t = threading.Thread(target=lambda: out.append(subprocess.run(["/bin/sh", "-c", "echo a | cat"], capture_output=True).stdout))
        t.start(); t.join()
        print("threads_and_processes=" + ("ok" if out == [b"a\n"] else repr(out)))
        print("END=1")
        """;

    private static Dictionary<string, string> Parse(string log) => log.Split('\n')
        .Where(l => l.Contains('=', StringComparison.Ordinal))
        .ToDictionary(l => l[..l.IndexOf('=', StringComparison.Ordinal)], l => l[(l.IndexOf('=', StringComparison.Ordinal) + 1)..]);

    [Fact]
    public async Task The_filter_refuses_what_it_should_and_builds_still_work()
    {
        var dir = Directory.CreateDirectory(Path.Combine(Scratch, "probe")).FullName;
        var (result, log) = await RunAsync(new SandboxSpec
        {
            Command = ["/usr/bin/python3", "-c", Probe, "/opt/p"],
            Mounts = [SandboxMount.Writable(dir, "/opt/p")],
            Limits = new SandboxLimits { WallTime = TimeSpan.FromSeconds(60) },
        });
        Assert.True(result.Succeeded, $"{result.Describe()}\n{log}");
        var r = Parse(log);
        Assert.True(r.ContainsKey("END"), log);
        Assert.Equal("ok", r["chmod_755"]);
        Assert.Equal("ok", r["mkfifo"]);
        Assert.Equal("ok", r["threads_and_processes"]);
        Assert.Equal("ENOSYS", r["clone3"]);
        foreach (var refused in new[]
                 {
                     "chmod_setuid", "chmod_setgid", "fchmod_setuid", "tiocsti", "tioclinux", "unshare_user", "unshare_mount", "setns",
                     "keyctl", "bpf", "perf_event_open", "userfaultfd", "mount",
                 })
        {
            Assert.True(r[refused] == "EPERM", $"{refused}: {r[refused]}\n{log}");
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
            UnixFileMode.OtherRead | UnixFileMode.OtherExecute, File.GetUnixFileMode(Path.Combine(dir, "f")));
    }

    [Fact]
    public async Task Without_the_sandbox_the_same_probes_succeed_or_fail_otherwise()
    {
        var dir = Directory.CreateDirectory(Path.Combine(Scratch, "host")).FullName;
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "-c", Probe, dir }) psi.ArgumentList.Add(arg);
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var r = Parse(await stdout);
        Assert.True(r.ContainsKey("END"), await stdout + stderr);
        Assert.Equal("ok", r["chmod_setuid"]);
        Assert.Equal("ENOTTY", r["tiocsti"]);
        Assert.Equal("EINVAL", r["clone3"]);
    }

    [Fact]
    public async Task The_filter_descriptor_does_not_reach_the_build()
    {
        // bwrap reads the filter from fd 3 and closes it: the shell's own fd 3 is not open.
        var log = await RunOkAsync("for f in /proc/$$/fd/*; do readlink \"$f\"; done; readlink /proc/$$/fd/3 || echo closed");
        Assert.DoesNotContain("seccomp", log, StringComparison.Ordinal);
        Assert.EndsWith("closed\n", log, StringComparison.Ordinal);
    }
}
