using System.Text;

namespace Cairn.Sandbox.Tests;

public abstract class SandboxTestBase : IDisposable
{
    protected SandboxTestBase()
    {
        Scratch = Directory.CreateTempSubdirectory("cairn-sandbox-test-").FullName;
    }

    protected string Scratch { get; }

    protected BubblewrapSandbox Sandbox { get; } = new();

    protected static SandboxSpec Shell(string script, SandboxLimits? limits = null, params SandboxMount[] mounts) => new()
    {
        Command = ["/bin/sh", "-c", script],
        Mounts = mounts,
        Limits = limits ?? new SandboxLimits { WallTime = TimeSpan.FromSeconds(60) },
    };

    protected Task<(SandboxResult Result, string Log)> RunAsync(SandboxSpec spec, CancellationToken cancellationToken = default) =>
        RunAsync(Sandbox, spec, cancellationToken);

    protected static async Task<(SandboxResult Result, string Log)> RunAsync(BubblewrapSandbox sandbox, SandboxSpec spec, CancellationToken cancellationToken = default)
    {
        using var log = new MemoryStream();
        var result = await sandbox.RunAsync(spec, log, cancellationToken);
        return (result, Encoding.UTF8.GetString(log.ToArray()));
    }

    /// <summary>A sleep duration no other process on the host has on its command line, to find the run's leftovers.</summary>
    protected static string NewMarker() => $"1000.{Random.Shared.Next(100000, 999999)}";

    protected static string Tail(string log) => log.Length <= 2000 ? log : log[^2000..];

    /// <summary>uid:gid of a host file.</summary>
    protected static string Owner(string path)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("stat") { RedirectStandardOutput = true };
        foreach (var a in (string[])["-c", "%u:%g", "--", path]) psi.ArgumentList.Add(a);
        using var stat = System.Diagnostics.Process.Start(psi)!;
        var owner = stat.StandardOutput.ReadToEnd().Trim();
        stat.WaitForExit();
        Assert.Equal(0, stat.ExitCode);
        return owner;
    }

    protected async Task<string> RunOkAsync(string script, params SandboxMount[] mounts)
    {
        var (result, log) = await RunAsync(Shell(script, null, mounts));
        Assert.True(result.Succeeded, $"{result.Describe()}\n{log}");
        return log;
    }

    /// <summary>Host processes whose command line holds <paramref name="marker"/>: leftovers of a killed sandbox.</summary>
    protected static List<int> HostProcessesWith(string marker)
    {
        var found = new List<int>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (cmdline.Contains(marker, StringComparison.Ordinal)) found.Add(pid);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return found;
    }

    protected static async Task AssertNoLeftoversAsync(string marker)
    {
        // Reaping after SIGKILL is asynchronous; give it a moment.
        for (var i = 0; i < 50 && HostProcessesWith(marker).Count > 0; i++) await Task.Delay(100);
        Assert.Empty(HostProcessesWith(marker));
    }

    public void Dispose()
    {
        Directory.Delete(Scratch, recursive: true);
        GC.SuppressFinalize(this);
    }
}
