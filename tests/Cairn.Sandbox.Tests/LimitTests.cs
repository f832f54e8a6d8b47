namespace Cairn.Sandbox.Tests;

public sealed class LimitTests : SandboxTestBase
{
    [Fact]
    public async Task Wall_time_kills_the_whole_process_tree()
    {
        var marker = $"1000.{Random.Shared.Next(100000, 999999)}";
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
        var marker = $"1000.{Random.Shared.Next(100000, 999999)}";
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => RunAsync(Shell($"sleep {marker} & sleep {marker}"), cts.Token));
        await AssertNoLeftoversAsync(marker);
    }

    [Fact]
    public async Task A_fork_bomb_ends_that_run_only()
    {
        var limits = new SandboxLimits { WallTime = TimeSpan.FromSeconds(30), MaxProcesses = 64 };
        var (result, _) = await RunAsync(Shell("b() { b | b & }; b; wait", limits) with { Command = ["/bin/bash", "-c", "b() { b | b & }; b; wait; sleep 1000"] });
        Assert.NotNull(result.LimitExceeded);
        if (result.UsedCgroup)
        {
            Assert.Equal(SandboxLimit.Processes, result.LimitExceeded);
            Assert.True(result.Duration < TimeSpan.FromSeconds(20));
        }

        // The runner goes on.
        Assert.Equal("ok\n", await RunOkAsync("echo ok"));
    }

    [Fact]
    public async Task A_memory_hog_ends_that_run_only()
    {
        var limits = new SandboxLimits { WallTime = TimeSpan.FromSeconds(60), MemoryBytes = 128L << 20 };

        // The shell holds the whole 1 GB string in memory.
        var (result, log) = await RunAsync(Shell("x=$(head -c 1000000000 /dev/zero | tr '\\0' x); echo ${#x}", limits));
        Assert.False(result.Succeeded, log);
        if (result.UsedCgroup) Assert.Equal(SandboxLimit.Memory, result.LimitExceeded);
        Assert.Equal("ok\n", await RunOkAsync("echo ok"));
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

    [Fact]
    public async Task One_big_file_beyond_the_disk_limit_ends_the_run()
    {
        var ws = Directory.CreateDirectory(Path.Combine(Scratch, "ws")).FullName;
        var limits = new SandboxLimits { WallTime = TimeSpan.FromSeconds(30), DiskBytes = 8 << 20 };
        var (result, log) = await RunAsync(Shell("head -c 100000000 /dev/zero > /ws/big", limits, SandboxMount.Writable(ws, "/ws")));
        Assert.Equal(SandboxLimit.Disk, result.LimitExceeded);
        Assert.True(new FileInfo(Path.Combine(ws, "big")).Length <= 8 << 20, log);
    }

    [Fact]
    public async Task Many_files_beyond_the_disk_limit_end_the_run()
    {
        var ws = Directory.CreateDirectory(Path.Combine(Scratch, "ws")).FullName;
        var limits = new SandboxLimits
        {
            WallTime = TimeSpan.FromSeconds(60),
            DiskBytes = 20 << 20,
            PollInterval = TimeSpan.FromMilliseconds(100),
        };
        var (result, log) = await RunAsync(Shell("i=0; while :; do head -c 1000000 /dev/zero > /ws/f$i; i=$((i+1)); sleep 0.01; done", limits, SandboxMount.Writable(ws, "/ws")));
        Assert.Equal(SandboxLimit.Disk, result.LimitExceeded);
        Assert.True(result.Duration < TimeSpan.FromSeconds(30), log);
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
