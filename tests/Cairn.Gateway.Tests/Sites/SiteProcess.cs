using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Cairn.Build;
using Cairn.Core;
using Cairn.Gateway.Tests.Infrastructure;

namespace Cairn.Gateway.Tests.Sites;

/// <summary>
/// One <c>cairn build RECIPES --gateway URL --site NAME --token-file F --json</c> as a real process, with short
/// claim TTLs and polling so the fault tests take seconds. Its stderr is watched live (the build's progress lines),
/// so a test can act when the site reaches a step (--verbose logs claims, waits and builds); SIGKILL, SIGSTOP and SIGCONT act on the site process itself.
/// </summary>
public sealed class SiteProcess : IAsyncDisposable
{
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Process _process;

    private SiteProcess(string name, Process process)
    {
        Name = name;
        _process = process;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (_stdout) _stdout.AppendLine(e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data);
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Name { get; }

    public int Pid => _process.Id;

    public string Stderr
    {
        get
        {
            lock (_stderr) return _stderr.ToString();
        }
    }

    public string Stdout
    {
        get
        {
            lock (_stdout) return _stdout.ToString();
        }
    }

    /// <param name="cpus">Run under <c>taskset -c CPUS</c> (the sandboxed build inherits the affinity).</param>
    public static async Task<SiteProcess> StartAsync(GatewayProcess gateway, string name, string recipes, TempDir dir,
        string claimTtl = "2s", string? cpus = null, IReadOnlyList<string>? extra = null, IReadOnlyDictionary<string, string>? env = null)
    {
        var token = await gateway.TokenFileAsync(name, dir.Path);
        var command = new List<string>();
        if (cpus is not null) command.AddRange(["taskset", "-c", cpus]);
        command.AddRange([.. CairnUnderTest.Command, "build", recipes, "--gateway", gateway.Url.AbsoluteUri, "--site", name,
            "--token-file", token, "--claim-ttl", claimTtl, "--poll-max", "400ms", "--work", dir.Sub($"work-{name}"), "--json", "--verbose", .. extra ?? []]);
        return new SiteProcess(name, Exec.Start(command, env));
    }

    /// <summary>Waits until the site has stopped itself at a CAIRN_FAULT_POINT=NAME:stop (state T in /proc).</summary>
    public async Task WaitUntilStoppedAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (true)
        {
            if (_process.HasExited) throw new InvalidOperationException($"site {Name} exited ({_process.ExitCode}) before its fault point:\n{Stderr}");
            var stat = await File.ReadAllTextAsync($"/proc/{Pid}/stat");
            if (stat[(stat.LastIndexOf(')') + 2)..].StartsWith('T')) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"site {Name} did not reach its fault point:\n{Stderr}");
            await Task.Delay(50);
        }
    }

    /// <summary>Waits until the site's progress output contains <paramref name="text"/>.</summary>
    public async Task WaitForAsync(string text, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(2));
        while (!Stderr.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited) throw new InvalidOperationException($"site {Name} exited ({_process.ExitCode}) before printing '{text}':\n{Stderr}\n{Stdout}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"site {Name} did not print '{text}':\n{Stderr}");
            await Task.Delay(50);
        }
    }

    public record Outcome(int ExitCode, StackBuildResult Result, string Stderr);

    /// <summary>Waits for the exit and reads the --json result.</summary>
    public async Task<Outcome> ExitAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(5));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"site {Name} did not finish:\n{Stderr}");
        }

        _process.WaitForExit(); // drains the redirected streams
        StackBuildResult? result;
        try
        {
            result = JsonSerializer.Deserialize(Stdout, BuildJson.Default.StackBuildResult);
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException($"site {Name} (exit {_process.ExitCode}) wrote no JSON result: {e.Message}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}", e);
        }

        return new Outcome(_process.ExitCode, result ?? throw new InvalidOperationException($"site {Name}: empty result\n{Stderr}"), Stderr);
    }

    public Task SignalAsync(string signal) => Exec.RunAsync(["kill", $"-{signal}", Pid.ToString(CultureInfo.InvariantCulture)]);

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // A stopped process must be continued to die of SIGKILL's cleanup; kill the whole tree (bwrap too).
            await SignalAsync("CONT");
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
