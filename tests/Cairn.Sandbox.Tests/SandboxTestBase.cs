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

    protected async Task<(SandboxResult Result, string Log)> RunAsync(SandboxSpec spec, CancellationToken cancellationToken = default)
    {
        using var log = new MemoryStream();
        var result = await Sandbox.RunAsync(spec, log, cancellationToken);
        return (result, Encoding.UTF8.GetString(log.ToArray()));
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
