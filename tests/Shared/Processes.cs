using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Cairn.Testing;

public sealed record RunResult(string Command, int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"`{Command}` exited {ExitCode}\n--- stdout ---\n{Tail(Stdout)}\n--- stderr ---\n{Tail(Stderr)}";

    private static string Tail(string s) => s.Length > 4000 ? "…" + s[^4000..] : s;
}

/// <summary>A fresh directory, removed with everything in it when the test ends.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir(string prefix = "cairn-test")
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            foreach (var f in Directory.EnumerateFiles(Path, "*", SearchOption.AllDirectories)) File.SetAttributes(f, FileAttributes.Normal);
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>Runs cairn (<see cref="CairnUnderTest"/>) and other commands as real processes.</summary>
public static class Exec
{
    public static Process Start(IReadOnlyList<string> command, IReadOnlyDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = System.IO.Path.GetTempPath(),
        };
        foreach (var a in command.Skip(1)) psi.ArgumentList.Add(a);
        foreach (var v in new[] { "CAIRN_REPO", "CAIRN_CACHE", "CAIRN_CACHE_SIZE", "CAIRN_SIGNING_KEY", "CAIRN_TRUST", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "NO_PROXY", "no_proxy" })
        {
            psi.Environment.Remove(v);
        }

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

    public static async Task<RunResult> RunAsync(IReadOnlyList<string> command, IReadOnlyDictionary<string, string>? env = null, TimeSpan? timeout = null)
    {
        using var process = Start(command, env);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"`{string.Join(' ', command)}` did not finish in time: {await stderr}");
        }

        return new RunResult(string.Join(' ', command), process.ExitCode, await stdout, await stderr);
    }

    public static Task<RunResult> CairnAsync(IReadOnlyDictionary<string, string>? env, params string[] args) =>
        RunAsync(CairnUnderTest.With(args), env);

    public static Task<RunResult> CairnAsync(params string[] args) => CairnAsync(null, args);

    /// <summary>Runs cairn and fails the test unless it exits 0.</summary>
    public static async Task<RunResult> CairnOkAsync(IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        var r = await CairnAsync(env, args);
        Assert.True(r.ExitCode == 0, r.ToString());
        return r;
    }

    public static Task<RunResult> CairnOkAsync(params string[] args) => CairnOkAsync(null, args);

    /// <summary>A TCP port free on loopback right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Waits until something accepts connections on the port.</summary>
    public static async Task WaitForPortAsync(int port, Process process, Func<string> diagnostics, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited) throw new InvalidOperationException($"{process.StartInfo.FileName} exited with {process.ExitCode}: {diagnostics()}");
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50);
            }
        }

        throw new TimeoutException($"nothing listens on port {port}: {diagnostics()}");
    }

    public static string Describe(IEnumerable<string> command)
    {
        var sb = new StringBuilder();
        foreach (var part in command) sb.Append(sb.Length > 0 ? " " : "").Append(part);
        return sb.ToString();
    }
}
