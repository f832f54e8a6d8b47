using System.Diagnostics;
using System.Text;

namespace Cairn.Cli.Tests.Infrastructure;

/// <summary>What a finished process left behind.</summary>
public sealed record RunResult(string Command, int ExitCode, string Stdout, string Stderr, long PeakRssKb)
{
    public override string ToString() =>
        $"`{Command}` exited {ExitCode}\n--- stdout ---\n{Tail(Stdout)}\n--- stderr ---\n{Tail(Stderr)}";

    private static string Tail(string s) => s.Length > 4000 ? "…" + s[^4000..] : s;
}

/// <summary>Runs cairn and the tools the tests compare it with as real child processes.</summary>
public static class Exec
{
    public static string[] CairnCommand(params string[] args) => CairnUnderTest.With(args);

    public static Task<RunResult> CairnAsync(string[] args, CancellationToken ct, IReadOnlyDictionary<string, string>? env = null, bool measureMemory = false, string? workingDirectory = null) =>
        RunAsync(CairnCommand(args), ct, env, measureMemory, workingDirectory);

    /// <summary>Starts a process with redirected output; the caller waits or kills it.</summary>
    public static Process Start(string[] command, IReadOnlyDictionary<string, string>? env = null, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (var a in command.Skip(1)) psi.ArgumentList.Add(a);
        // Children must not inherit a fault point or a repository from the environment of the test run.
        psi.Environment.Remove("CAIRN_FAULT_POINT");
        psi.Environment.Remove("CAIRN_REPO");
        psi.Environment.Remove("CAIRN_CACHE");
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        if (env is not null)
        {
            foreach (var (k, v) in env) psi.Environment[k] = v;
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {command[0]}");
        process.StandardInput.Close();
        return process;
    }

    public static async Task<RunResult> RunAsync(string[] command, CancellationToken ct, IReadOnlyDictionary<string, string>? env = null, bool measureMemory = false, string? workingDirectory = null, TimeSpan? timeout = null)
    {
        using var process = Start(command, env, workingDirectory);
        return await WaitAsync(process, command, ct, measureMemory, timeout);
    }

    public static async Task<RunResult> WaitAsync(Process process, string[] command, CancellationToken ct, bool measureMemory = false, TimeSpan? timeout = null)
    {
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        long peak = 0;
        using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeoutCts.CancelAfter(timeout ?? TimeSpan.FromMinutes(3));
        var exited = process.WaitForExitAsync(timeoutCts.Token);
        if (measureMemory)
        {
            // VmHWM is the resident high-water mark; sample it until the process is gone.
            while (!exited.IsCompleted)
            {
                peak = Math.Max(peak, ReadVmHwmKb(process.Id));
                await Task.WhenAny(exited, Task.Delay(10, CancellationToken.None));
            }
        }

        try
        {
            await exited;
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"`{Describe(command)}` did not finish in time");
        }

        return new RunResult(Describe(command), process.ExitCode, await stdout, await stderr, peak);
    }

    public static long ReadVmHwmKb(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
            // The process exited between samples.
        }

        return 0;
    }

    /// <summary>Runs a tool and fails the test with its output unless it exits 0.</summary>
    public static async Task<RunResult> ToolAsync(CancellationToken ct, params string[] command)
    {
        Tools.Require(command[0]);
        var r = await RunAsync(command, ct);
        Assert.True(r.ExitCode == 0, r.ToString());
        return r;
    }

    /// <summary>Runs a shell pipeline (sh -c) and fails unless it exits 0.</summary>
    public static Task<RunResult> ShellAsync(string script, CancellationToken ct) => ToolAsync(ct, "sh", "-c", script);

    private static string Describe(string[] command)
    {
        var sb = new StringBuilder();
        foreach (var part in command)
        {
            if (sb.Length > 0) sb.Append(' ');
            sb.Append(part.Contains(' ', StringComparison.Ordinal) ? $"'{part}'" : part);
        }

        return sb.ToString();
    }
}

/// <summary>External tools the tests need. A missing one fails the test with the package to install; nothing is skipped.</summary>
public static class Tools
{
    private static readonly Dictionary<string, string> Packages = new(StringComparer.Ordinal)
    {
        ["strace"] = "strace",
        ["zstd"] = "zstd",
        ["xz"] = "xz-utils",
        ["bzip2"] = "bzip2",
        ["tar"] = "tar",
        ["diff"] = "diffutils",
        ["mount"] = "mount",
        ["flock"] = "util-linux",
    };

    public static void Require(string tool)
    {
        if (tool.Contains('/', StringComparison.Ordinal) ? File.Exists(tool) : Find(tool) is not null) return;
        var package = Packages.GetValueOrDefault(tool, tool);
        Assert.Fail($"the tests need '{tool}' on PATH: apt-get install -y {package}");
    }

    private static string? Find(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':')
            .Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);
}

/// <summary>A scratch directory removed (read-only files included) when the test ends.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir(string label = "cairn-cli-test")
    {
        Path = Directory.CreateTempSubdirectory(label + "-").FullName;
    }

    public string Path { get; }

    public string Sub(string name)
    {
        var p = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(p);
        return p;
    }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            // Materialized files and the object cache are read-only; rm handles that where Directory.Delete may not.
            using var p = System.Diagnostics.Process.Start("rm", ["-rf", Path]);
            p.WaitForExit();
        }
        catch (System.ComponentModel.Win32Exception)
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
