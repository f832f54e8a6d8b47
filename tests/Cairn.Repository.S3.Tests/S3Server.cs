using System.Diagnostics;
using Cairn.Repository.Tests;

namespace Cairn.Repository.S3.Tests;

/// <summary>A real S3-compatible server (s3rver, installed by scripts/install-deps.sh) on a free loopback port, for one test class.</summary>
public sealed class S3Server : IAsyncLifetime
{
    public const string Bucket = "cairn";
    private readonly TempDirectory _data = new();
    private Process? _process;

    public int Port { get; private set; }

    /// <summary>A fresh prefix per call, so tests sharing the server never see each other's repositories.</summary>
    public string NewUrl() => $"s3://S3RVER:S3RVER@{Bucket}/t{Guid.NewGuid():N}?endpoint=http://127.0.0.1:{Port}&region=us-east-1";

    public async Task InitializeAsync()
    {
        var start = new ProcessStartInfo("node", [Path.Combine(AppContext.BaseDirectory, "s3rver-launch.js"), _data.Path, Bucket])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        _process = Process.Start(start) ?? throw new InvalidOperationException("node did not start");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var line = await _process.StandardOutput.ReadLineAsync(timeout.Token);
        if (line is null || !line.StartsWith("READY ", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"s3rver did not start (run scripts/install-deps.sh): {line} {await _process.StandardError.ReadToEndAsync(timeout.Token)}");
        }

        Port = int.Parse(line[6..], System.Globalization.CultureInfo.InvariantCulture);
    }

    public async Task DisposeAsync()
    {
        if (_process is { } p)
        {
            p.StandardInput.Close();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await p.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                p.Kill(entireProcessTree: true);
            }

            p.Dispose();
        }

        _data.Dispose();
    }
}
