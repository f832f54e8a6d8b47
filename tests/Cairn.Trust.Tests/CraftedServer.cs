using System.Collections.Concurrent;
using Cairn.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Cairn.Trust.Tests;

/// <summary>
/// A real HTTP server (in-process Kestrel on loopback) that serves a repository directory as plain files, except for
/// the paths an attack replaces with bytes of its choosing. It records what was asked and how much it sent.
/// </summary>
public sealed class CraftedServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private long _bytesSent;

    public ConcurrentQueue<string> Requests { get; } = new();

    public ConcurrentDictionary<string, Func<HttpContext, Task>> Overrides { get; } = new();

    public string Root { get; set; }

    public string Url { get; }

    public long BytesSent => Interlocked.Read(ref _bytesSent);

    private CraftedServer(string root, int port)
    {
        Root = root;
        Url = $"http://127.0.0.1:{port}";
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(Url);
        _app = builder.Build();
        _app.Run(async context =>
        {
            var path = context.Request.Path.Value!.TrimStart('/');
            Requests.Enqueue(path);
            if (Overrides.TryGetValue(path, out var handler))
            {
                await handler(context);
                return;
            }

            var file = Path.Combine(Root, path);
            if (path.Contains("..", StringComparison.Ordinal) || !File.Exists(file))
            {
                context.Response.StatusCode = 404;
                return;
            }

            Interlocked.Add(ref _bytesSent, new FileInfo(file).Length);
            await Results.File(file, "application/octet-stream", enableRangeProcessing: true).ExecuteAsync(context);
        });
    }

    public static async Task<CraftedServer> StartAsync(string root)
    {
        var server = new CraftedServer(root, Exec.FreePort());
        await server._app.StartAsync();
        return server;
    }

    /// <summary>Serves these bytes at <paramref name="path"/>.</summary>
    public void Serve(string path, byte[] bytes) => Overrides[path] = async context =>
    {
        Interlocked.Add(ref _bytesSent, bytes.Length);
        context.Response.ContentType = "application/json";
        await context.Response.Body.WriteAsync(bytes);
    };

    /// <summary>Serves another file's bytes at <paramref name="path"/>, with range requests (as packs are read).</summary>
    public void ServeFile(string path, string file) => Overrides[path] = async context =>
    {
        Interlocked.Add(ref _bytesSent, new FileInfo(file).Length);
        await Results.File(file, "application/octet-stream", enableRangeProcessing: true).ExecuteAsync(context);
    };

    /// <summary>Serves a body that never ends (no Content-Length), until the client hangs up.</summary>
    public void ServeEndless(string path) => Overrides[path] = async context =>
    {
        var chunk = new byte[64 << 10];
        Array.Fill(chunk, (byte)' ');
        long sent = 0;
        try
        {
            // Bounded only so that a client that ignores the end cannot keep the test running forever.
            while (!context.RequestAborted.IsCancellationRequested && sent < (1L << 30))
            {
                await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
                sent += chunk.Length;
                Interlocked.Add(ref _bytesSent, chunk.Length);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // The client stopped reading: what the test wants.
        }
    };

    public bool WasRequested(string path) => Requests.Contains(path);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
