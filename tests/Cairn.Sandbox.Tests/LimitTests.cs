using Cairn.Core;

namespace Cairn.Sandbox.Tests;

public sealed class LimitTests : SandboxTestBase
{
    [Fact]
    public async Task Wall_time_kills_the_whole_process_tree()
    {
        var marker = NewMarker();
        var limits = new SandboxLimits { WallTime = TimeSpan.FromSeconds(2) };
        var (result, _) = await RunAsync(Shell($"sleep {marker} & (sleep {marker} &); sleep {marker}", limits));
        Assert.True(result.TimedOut);
        Assert.Equal(9, result.Signal);
        Assert.InRange(result.Duration, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(20));
        await AssertNoLeftoversAsync(marker);
    }

    [Fact]
    public async Task Cancellation_kills_the_sandbox_and_throws()
    {
        var marker = NewMarker();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => RunAsync(Shell($"sleep {marker} & sleep {marker}"), cts.Token));
        await AssertNoLeftoversAsync(marker);
    }

    // Each limit is tested on this host as it is (cgroups where the host gives them) and with cgroups switched
    // off, which is what a CI runner in a container without cgroup delegation gets. Each asserts the limit that
    // stopped the run, what enforced it, and that no process of the run is left.

    [HostHasCgroupFact("pids")]
    public async Task A_fork_bomb_is_stopped_by_the_pids_cgroup() =>
        await AssertForkBombStoppedAsync(new BubblewrapSandbox(), ProcessLimitEnforcement.PidsCgroup);

    [PrivilegedFact]
    public async Task A_fork_bomb_run_by_root_without_cgroups_is_stopped_under_an_isolated_uid() =>
        await AssertForkBombStoppedAsync(new BubblewrapSandbox(new BubblewrapOptions { UseCgroups = false }), ProcessLimitEnforcement.IsolatedUid);

    private async Task AssertForkBombStoppedAsync(BubblewrapSandbox sandbox, ProcessLimitEnforcement expected)
    {
        var marker = NewMarker();
        var limits = new SandboxLimits { WallTime = TimeSpan.FromSeconds(60), MaxProcesses = 64, PollInterval = TimeSpan.FromMilliseconds(100) };
        var spec = Shell("", limits) with { Command = ["/bin/bash", "-c", $"b() {{ b | b & }}; b; wait; sleep {marker}"] };
        var (result, log) = await RunAsync(sandbox, spec);
        Assert.Equal(expected, result.ProcessLimitBy);
        Assert.True(result.LimitExceeded == SandboxLimit.Processes, $"{result.Describe()}\n{Tail(log)}");
        await AssertNoLeftoversAsync(marker);

        // The runner goes on.
        Assert.Equal("ok\n", await RunOkAsync("echo ok"));
    }

    [PrivilegedFact]
    public async Task Root_without_any_process_limit_is_refused_unless_the_operator_accepts_it()
    {
        var options = new BubblewrapOptions { UseCgroups = false, IsolateUidWithoutCgroup = false, AllowNoProcessLimit = false };
        var refused = await Assert.ThrowsAsync<CairnException>(() => RunAsync(new BubblewrapSandbox(options), Shell("echo never")));
        Assert.Equal(ErrorCode.SandboxProcessLimitUnavailable, refused.Code);
        Assert.Contains("CAIRN_ALLOW_NO_PROCESS_LIMIT=1", refused.Hint, StringComparison.Ordinal);

        var (result, log) = await RunAsync(new BubblewrapSandbox(options with { AllowNoProcessLimit = true }), Shell("echo accepted"));
        Assert.True(result.Succeeded, result.Describe());
        Assert.Equal("accepted\n", log);
        Assert.Equal(ProcessLimitEnforcement.None, result.ProcessLimitBy);
    }

    [PrivilegedFact]
    public async Task Under_an_isolated_uid_the_sandbox_looks_the_same_and_the_mounts_keep_their_owner()
    {
        // Sources below a directory only root may enter (a 0700 temporary directory) are still reachable.
        var hidden = Directory.CreateDirectory(Path.Combine(Scratch, "hidden")).FullName;
        File.SetUnixFileMode(hidden, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var source = Directory.CreateDirectory(Path.Combine(hidden, "src")).FullName;
        await File.WriteAllTextAsync(Path.Combine(source, "input"), "from the host\n");
        var ws = Directory.CreateDirectory(Path.Combine(hidden, "ws")).FullName;
        await File.WriteAllTextAsync(Path.Combine(ws, "old"), "root's file\n");

        var sandbox = new BubblewrapSandbox(new BubblewrapOptions { UseCgroups = false });
        var (result, log) = await RunAsync(sandbox, Shell(
            "id -u; cat /src/input /one-file; echo built > /ws/new; echo more >> /ws/old; ls /ws",
            null, SandboxMount.ReadOnly(source, "/src"), SandboxMount.ReadOnly(Path.Combine(source, "input"), "/one-file"), SandboxMount.Writable(ws, "/ws")));
        Assert.True(result.Succeeded, $"{result.Describe()}\n{log}");
        Assert.Equal(ProcessLimitEnforcement.IsolatedUid, result.ProcessLimitBy);
        Assert.Equal("0\nfrom the host\nfrom the host\nnew\nold\n", log);
        Assert.Equal("built\n", await File.ReadAllTextAsync(Path.Combine(ws, "new")));
        Assert.Equal("root's file\nmore\n", await File.ReadAllTextAsync(Path.Combine(ws, "old")));
        Assert.Equal(["0:0", "0:0", "0:0"], [Owner(ws), Owner(Path.Combine(ws, "new")), Owner(Path.Combine(ws, "old"))]);
    }

    [HostHasCgroupFact("memory")]
    public async Task A_memory_hog_is_stopped_by_the_memory_cgroup()
    {
        var (result, log) = await RunMemoryHogAsync(new BubblewrapSandbox());
        Assert.Equal(MemoryLimitEnforcement.MemoryCgroup, result.MemoryLimitBy);
        Assert.True(result.LimitExceeded == SandboxLimit.Memory, $"{result.Describe()}\n{Tail(log)}");
    }

    [Fact]
    public async Task A_memory_hog_without_cgroups_is_stopped_by_its_address_space_limit()
    {
        var (result, log) = await RunMemoryHogAsync(new BubblewrapSandbox(new BubblewrapOptions { UseCgroups = false }));
        Assert.Equal(MemoryLimitEnforcement.AddressSpaceRlimit, result.MemoryLimitBy);

        // RLIMIT_AS makes the allocation fail rather than killing: the shell says so and fails; no other limit
        // (the wall time is a minute) ended it.
        Assert.Null(result.LimitExceeded);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("cannot allocate", log, StringComparison.OrdinalIgnoreCase);
    }

    private async Task<(SandboxResult Result, string Log)> RunMemoryHogAsync(BubblewrapSandbox sandbox)
    {
        var marker = NewMarker();
        var limits = new SandboxLimits { WallTime = TimeSpan.FromSeconds(60), MemoryBytes = 128L << 20 };

        // bash holds the whole 1 GB string in memory; the background sleep must die with the run.
        var spec = Shell("", limits) with { Command = ["/bin/bash", "-c", $"sleep {marker} & x=$(head -c 1000000000 /dev/zero | tr '\\0' x); echo ${{#x}}"] };
        var (result, log) = await RunAsync(sandbox, spec);
        Assert.False(result.Succeeded, log);
        await AssertNoLeftoversAsync(marker);
        Assert.Equal("ok\n", await RunOkAsync("echo ok"));
        return (result, log);
    }

    [Fact]
    public async Task Endless_output_is_cut_and_ends_the_run()
    {
        var limits = new SandboxLimits { WallTime = TimeSpan.FromSeconds(30), LogBytes = 1 << 20 };
        using var log = new MemoryStream();
        var result = await Sandbox.RunAsync(Shell("yes flood", limits), log, default);
        Assert.Equal(SandboxLimit.Log, result.LimitExceeded);
        Assert.True(result.LogTruncated);
        Assert.InRange(log.Length, 1 << 20, (1 << 20) + 200);
        Assert.Equal(log.Length, result.LogBytes);
        Assert.EndsWith("the run was ended\n", System.Text.Encoding.UTF8.GetString(log.ToArray()));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task One_big_file_beyond_the_disk_limit_ends_the_run(bool useCgroups)
    {
        var marker = NewMarker();
        var ws = Directory.CreateDirectory(Path.Combine(Scratch, "ws")).FullName;
        var limits = new SandboxLimits { WallTime = TimeSpan.FromSeconds(30), DiskBytes = 8 << 20 };
        var sandbox = new BubblewrapSandbox(new BubblewrapOptions { UseCgroups = useCgroups });
        var (result, log) = await RunAsync(sandbox, Shell($"sleep {marker} & head -c 100000000 /dev/zero > /ws/big", limits, SandboxMount.Writable(ws, "/ws")));
        Assert.True(result.LimitExceeded == SandboxLimit.Disk, $"{result.Describe()}\n{log}");
        Assert.Equal(128 + 25, result.ExitCode); // SIGXFSZ: RLIMIT_FSIZE, not the poll, stopped it
        Assert.True(new FileInfo(Path.Combine(ws, "big")).Length <= 8 << 20, log);
        await AssertNoLeftoversAsync(marker);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Many_files_beyond_the_disk_limit_end_the_run(bool useCgroups)
    {
        var marker = NewMarker();
        var ws = Directory.CreateDirectory(Path.Combine(Scratch, "ws")).FullName;
        var limits = new SandboxLimits
        {
            WallTime = TimeSpan.FromSeconds(60),
            DiskBytes = 20 << 20,
            PollInterval = TimeSpan.FromMilliseconds(100),
        };
        var sandbox = new BubblewrapSandbox(new BubblewrapOptions { UseCgroups = useCgroups });
        var (result, log) = await RunAsync(sandbox, Shell($"sleep {marker} & i=0; while :; do head -c 1000000 /dev/zero > /ws/f$i; i=$((i+1)); sleep 0.01; done", limits, SandboxMount.Writable(ws, "/ws")));
        Assert.True(result.LimitExceeded == SandboxLimit.Disk, $"{result.Describe()}\n{log}");
        Assert.Equal(128 + 9, result.ExitCode); // killed by the sandbox's poll of the writable mounts
        Assert.InRange(Directory.GetFiles(ws).Length, 20, 1000);
        await AssertNoLeftoversAsync(marker);
    }

    [Fact]
    public async Task The_private_tmp_is_size_limited()
    {
        var limits = new SandboxLimits { WallTime = TimeSpan.FromSeconds(30), TmpBytes = 4 << 20 };
        var (result, log) = await RunAsync(Shell("head -c 10000000 /dev/zero > /tmp/big", limits));
        Assert.False(result.Succeeded);
        Assert.Contains("No space left", log);
    }

    [Fact]
    public async Task The_sandbox_survives_the_exit_of_the_thread_that_started_it()
    {
        // --die-with-parent fires when bwrap's parent *thread* exits; RunAsync runs synchronously up to its
        // first await on this short-lived thread.
        Task<(SandboxResult, string)>? run = null;
        var thread = new Thread(() => run = RunAsync(Shell("sleep 1; echo alive")));
        thread.Start();
        thread.Join();
        var (result, log) = await run!;
        Assert.True(result.Succeeded, $"{result.Describe()}\n{log}");
        Assert.Equal("alive\n", log);
    }
}
