using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Cairn.Server.Tests.Infrastructure;

/// <summary>What <see cref="FaultProxy"/> does to a request that matches a rule.</summary>
public enum Fault
{
    /// <summary>Forward unchanged.</summary>
    None,

    /// <summary>Send the headers and half the body, then reset the connection (RST).</summary>
    Reset,

    /// <summary>Send the headers (with the full Content-Length) and half the body, then close normally.</summary>
    Truncate,

    /// <summary>Flip one bit in the middle of the body.</summary>
    FlipBit,

    NotFound404,
    Error500,
    Unavailable503,

    /// <summary>Send the headers, then the body at one byte per second.</summary>
    Trickle,

    /// <summary>Answer 200 with no length and a body that never ends.</summary>
    Endless,

    /// <summary>Answer every URL with the same HTML page and 200, as a hotel or airport login page does.</summary>
    CaptivePortal,

    /// <summary>Forward unchanged after a pause, so that concurrent requests overlap.</summary>
    Delay,
}

/// <summary>
/// A small fault-injecting HTTP/1.1 proxy for tests: it listens on loopback, forwards each request (one per
/// connection) to a real upstream server and applies the fault of the first rule whose path prefix matches.
/// It counts requests per path, so tests can see what reached the upstream.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Uri _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(string Prefix, Fault Fault)> _rules = [];
    private readonly ConcurrentDictionary<string, int> _requests = new(StringComparer.Ordinal);
    private readonly ConcurrentBag<Task> _connections = [];
    private readonly Task _accept;

    public FaultProxy(string upstream)
    {
        _upstream = new Uri(upstream);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accept = AcceptLoopAsync();
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}";

    public TimeSpan DelayTime { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Applies <paramref name="fault"/> to paths starting with <paramref name="prefix"/> ("/" for all); the first match wins.</summary>
    public FaultProxy Rule(string prefix, Fault fault)
    {
        lock (_rules) _rules.Add((prefix, fault));
        return this;
    }

    public void ClearRules()
    {
        lock (_rules) _rules.Clear();
    }

    /// <summary>Requests received whose path starts with <paramref name="prefix"/>.</summary>
    public int Requests(string prefix = "/") => _requests.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).Sum(kv => kv.Value);

    public int RequestsWhere(Func<string, bool> path) => _requests.Where(kv => path(kv.Key)).Sum(kv => kv.Value);

    public void ResetCounters() => _requests.Clear();

    private Fault FaultFor(string path)
    {
        lock (_rules) return _rules.FirstOrDefault(r => path.StartsWith(r.Prefix, StringComparison.Ordinal)).Fault;
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }

            _connections.Add(Task.Run(() => HandleAsync(client)));
        }
    }

    private async Task HandleAsync(TcpClient client)
    {
        using var _ = client;
        var ct = _stop.Token;
        try
        {
            var stream = client.GetStream();
            var head = await ReadHeadAsync(stream, ct);
            if (head is null) return;
            var lines = head.Split("\r\n");
            var parts = lines[0].Split(' ');
            if (parts.Length < 3) return;
            var target = parts[1];
            // A client that talks to us as a proxy sends an absolute URL.
            var path = target.StartsWith("http", StringComparison.Ordinal) ? new Uri(target).PathAndQuery : target;
            _requests.AddOrUpdate(path, 1, (_, n) => n + 1);
            var fault = FaultFor(path);

            switch (fault)
            {
                case Fault.NotFound404:
                    await WriteSimpleAsync(stream, "404 Not Found", "text/plain", "not found\n"u8.ToArray(), ct);
                    return;
                case Fault.Error500:
                    await WriteSimpleAsync(stream, "500 Internal Server Error", "text/plain", "boom\n"u8.ToArray(), ct);
                    return;
                case Fault.Unavailable503:
                    await WriteSimpleAsync(stream, "503 Service Unavailable", "text/plain", "overloaded\n"u8.ToArray(), ct);
                    return;
                case Fault.CaptivePortal:
                    await WriteSimpleAsync(stream, "200 OK", "text/html",
                        "<!DOCTYPE html><html><head><title>Welcome</title></head><body>Please log in to use the network.</body></html>\n"u8.ToArray(), ct);
                    return;
                case Fault.Endless:
                    await WriteEndlessAsync(stream, ct);
                    return;
                case Fault.Delay:
                    await Task.Delay(DelayTime, ct);
                    break;
            }

            var (responseHead, body) = await ForwardAsync(lines, path, ct);
            var half = body.Length / 2;
            switch (fault)
            {
                case Fault.Reset:
                    await stream.WriteAsync(responseHead, ct);
                    await stream.WriteAsync(body.AsMemory(0, half), ct);
                    await stream.FlushAsync(ct);
                    client.Client.LingerState = new LingerOption(true, 0);
                    client.Client.Close();
                    return;
                case Fault.Truncate:
                    await stream.WriteAsync(responseHead, ct);
                    await stream.WriteAsync(body.AsMemory(0, half), ct);
                    client.Client.Shutdown(SocketShutdown.Both);
                    return;
                case Fault.FlipBit:
                    if (body.Length > 0) body[half] ^= 0x10;
                    break;
                case Fault.Trickle:
                    await stream.WriteAsync(responseHead, ct);
                    for (var i = 0; i < body.Length; i++)
                    {
                        await stream.WriteAsync(body.AsMemory(i, 1), ct);
                        await stream.FlushAsync(ct);
                        await Task.Delay(1000, ct);
                    }

                    return;
            }

            await stream.WriteAsync(responseHead, ct);
            await stream.WriteAsync(body, ct);
            await stream.FlushAsync(ct);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away (often on purpose: it gave up on a fault), or the proxy is stopping.
        }
    }

    /// <summary>Sends the request upstream with "Connection: close" and reads the whole response.</summary>
    private async Task<(byte[] Head, byte[] Body)> ForwardAsync(string[] requestLines, string path, CancellationToken ct)
    {
        var parts = requestLines[0].Split(' ');
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{parts[0]} {path} HTTP/1.1\r\n");
        foreach (var line in requestLines.Skip(1))
        {
            if (line.Length == 0) continue;
            var name = line.Split(':', 2)[0].Trim();
            if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase) || name.Equals("Proxy-Connection", StringComparison.OrdinalIgnoreCase)
                || name.Equals("Host", StringComparison.OrdinalIgnoreCase) || name.Equals("Keep-Alive", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            sb.Append(line).Append("\r\n");
        }

        sb.Append(CultureInfo.InvariantCulture, $"Host: {_upstream.Authority}\r\nConnection: close\r\n\r\n");
        using var upstream = new TcpClient();
        await upstream.ConnectAsync(_upstream.Host, _upstream.Port, ct);
        var us = upstream.GetStream();
        await us.WriteAsync(Encoding.ASCII.GetBytes(sb.ToString()), ct);
        using var all = new MemoryStream();
        await us.CopyToAsync(all, ct);
        var bytes = all.ToArray();
        var split = bytes.AsSpan().IndexOf("\r\n\r\n"u8);
        if (split < 0) throw new IOException("upstream sent no complete response head");
        var headText = Encoding.ASCII.GetString(bytes, 0, split);
        // Keep the head as is, but say that this connection closes after the response.
        var headLines = headText.Split("\r\n").Where(l => !l.StartsWith("Connection:", StringComparison.OrdinalIgnoreCase)).Append("Connection: close");
        var head = Encoding.ASCII.GetBytes(string.Join("\r\n", headLines) + "\r\n\r\n");
        return (head, bytes[(split + 4)..]);
    }

    private static async Task<string?> ReadHeadAsync(NetworkStream stream, CancellationToken ct)
    {
        var buffer = new List<byte>(1024);
        var one = new byte[1];
        while (buffer.Count < 64 * 1024)
        {
            var n = await stream.ReadAsync(one, ct);
            if (n == 0) return null;
            buffer.Add(one[0]);
            if (buffer.Count >= 4 && buffer[^1] == '\n' && buffer[^2] == '\r' && buffer[^3] == '\n' && buffer[^4] == '\r')
            {
                return Encoding.ASCII.GetString(buffer.ToArray(), 0, buffer.Count - 4);
            }
        }

        return null;
    }

    private static async Task WriteSimpleAsync(NetworkStream stream, string status, string type, byte[] body, CancellationToken ct)
    {
        var head = $"HTTP/1.1 {status}\r\nContent-Type: {type}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), ct);
        await stream.WriteAsync(body, ct);
        await stream.FlushAsync(ct);
    }

    /// <summary>200 with neither a length nor chunking: the body ends when the connection does, which is never.</summary>
    private static async Task WriteEndlessAsync(NetworkStream stream, CancellationToken ct)
    {
        await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"u8.ToArray(), ct);
        var chunk = new byte[64 * 1024];
        Array.Fill(chunk, (byte)'A');
        while (!ct.IsCancellationRequested) await stream.WriteAsync(chunk, ct);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accept;
            await Task.WhenAll(_connections.ToArray()).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
        }

        _listener.Dispose();
        _stop.Dispose();
    }
}
