using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Cairn.Server.Tests.Infrastructure;

/// <summary>A server process the test started and stops (kills) when disposed.</summary>
public abstract class ServerProcess : IAsyncDisposable
{
    protected Process? Process { get; set; }

    private readonly System.Text.StringBuilder _output = new();

    public int Port { get; protected set; }

    public string Url => $"http://127.0.0.1:{Port}";

    protected void Capture(Process p)
    {
        p.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
    }

    public string Log
    {
        get
        {
            lock (_output) return _output.ToString();
        }
    }

    public bool Running => Process is { HasExited: false };

    /// <summary>Sends SIGTERM (as systemd or docker stop would) and returns the exit code.</summary>
    public async Task<int> TerminateAsync()
    {
        var p = Process!;
        var r = await Exec.RunAsync(["kill", "-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        Assert.True(r.ExitCode == 0, r.ToString());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await p.WaitForExitAsync(cts.Token);
        return p.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        if (Process is { } p)
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
                await p.WaitForExitAsync();
            }

            p.Dispose();
        }
    }
}

/// <summary>`cairn serve` as a real process on a free loopback port.</summary>
public sealed partial class CairnServe : ServerProcess
{
    [GeneratedRegex("^cairn_http_requests_total\\{kind=\"(?<kind>[a-z]+)\",method=\"(?<method>[A-Z]+)\",status=\"(?<status>\\d+)\"\\} (?<n>\\d+)$", RegexOptions.Multiline)]
    private static partial Regex RequestLine();

    public static async Task<CairnServe> StartAsync(string repository, params string[] extra)
    {
        var server = new CairnServe { Port = Exec.FreePort() };
        server.Process = Exec.Start([.. CairnUnderTest.Command, "--repo", repository, "serve", "--listen", $"http://127.0.0.1:{server.Port}", .. extra]);
        server.Capture(server.Process);
        await Exec.WaitForPortAsync(server.Port, server.Process, () => server.Log);
        return server;
    }

    /// <summary>Requests the server answered, excluding /metrics itself, from its Prometheus text.</summary>
    public async Task<long> RequestCountAsync(string? kind = null)
    {
        using var http = new HttpClient();
        var text = await http.GetStringAsync($"{Url}/metrics");
        return RequestLine().Matches(text)
            .Where(m => m.Groups["kind"].Value != "metrics" && (kind is null || m.Groups["kind"].Value == kind))
            .Sum(m => long.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture));
    }
}

/// <summary>Debian's nginx serving a repository directory as plain files, with the cache headers of docs/distribution.md.</summary>
public sealed class Nginx : ServerProcess
{
    public const string Binary = "/usr/sbin/nginx";

    public static async Task<Nginx> StartAsync(string root, TempDir work)
    {
        Assert.True(File.Exists(Binary), "nginx is not installed: run scripts/install-deps.sh (Debian package nginx)");
        var server = new Nginx { Port = Exec.FreePort() };
        var dir = work.Sub($"nginx-{server.Port}");
        Directory.CreateDirectory(dir);
        var conf = Path.Combine(dir, "nginx.conf");
        File.WriteAllText(conf, NginxConfig.Render(root, server.Port, dir));
        server.Process = Exec.Start([Binary, "-c", conf, "-p", dir, "-e", Path.Combine(dir, "error.log")]);
        server.Capture(server.Process);
        await Exec.WaitForPortAsync(server.Port, server.Process, () => server.Log + ReadOrEmpty(Path.Combine(dir, "error.log")));
        return server;
    }

    internal static string ReadOrEmpty(string path) => File.Exists(path) ? File.ReadAllText(path) : "";
}

public static class NginxConfig
{
    /// <summary>The configuration documented in docs/distribution.md, with the test's paths and port.</summary>
    public static string Render(string root, int port, string dir) => $$"""
        daemon off;
        master_process off;
        user root;
        worker_processes 1;
        pid {{dir}}/nginx.pid;
        error_log {{dir}}/error.log warn;
        events { worker_connections 256; }
        http {
            access_log {{dir}}/access.log;
            client_body_temp_path {{dir}}/body;
            proxy_temp_path {{dir}}/proxy;
            fastcgi_temp_path {{dir}}/fastcgi;
            uwsgi_temp_path {{dir}}/uwsgi;
            scgi_temp_path {{dir}}/scgi;
            default_type application/octet-stream;
            types { application/json json; }
            server {
                listen 127.0.0.1:{{port}};
                root {{root}};
                location = /manifest.json { add_header Cache-Control "public, max-age=60"; }
                location = /cairn.json { add_header Cache-Control "public, max-age=60"; }
                location = /manifest.sig { add_header Cache-Control "public, max-age=60"; }
                location = /revocations.json { add_header Cache-Control "public, max-age=60"; }
                location ~ ^/revisions/[0-9]+\.sig$ { add_header Cache-Control "public, max-age=60"; }
                location /packs/ { add_header Cache-Control "public, max-age=31536000, immutable"; }
                location /revisions/ { add_header Cache-Control "public, max-age=31536000, immutable"; }
                location = /log/checkpoint { add_header Cache-Control "public, max-age=60"; }
                location /log/tile/ { add_header Cache-Control "public, max-age=31536000, immutable"; }
                location / { return 404; }
            }
        }
        """;
}

/// <summary>Debian's Squid as a caching forward proxy on loopback, memory cache only, fetching whole packs for ranges.</summary>
public sealed class Squid : ServerProcess
{
    public const string Binary = "/usr/sbin/squid";

    public static async Task<Squid> StartAsync(TempDir work)
    {
        Assert.True(File.Exists(Binary), "squid is not installed: run scripts/install-deps.sh (Debian package squid)");
        var proxy = new Squid { Port = Exec.FreePort() };
        var dir = work.Sub($"squid-{proxy.Port}");
        Directory.CreateDirectory(dir);
        // Squid drops root privileges to its effective user for logs and pid file.
        File.SetUnixFileMode(dir, (UnixFileMode)0x1FF);
        var conf = Path.Combine(dir, "squid.conf");
        File.WriteAllText(conf, $"""
            http_port 127.0.0.1:{proxy.Port}
            acl loopback src 127.0.0.0/8
            http_access allow loopback
            http_access deny all
            cache_mem 256 MB
            maximum_object_size_in_memory 128 MB
            maximum_object_size 1 GB
            range_offset_limit -1
            quick_abort_min -1 KB
            collapsed_forwarding on
            refresh_pattern . 0 20% 4320
            pid_filename {dir}/squid.pid
            cache_log {dir}/cache.log
            access_log stdio:{dir}/access.log
            coredump_dir {dir}
            shutdown_lifetime 0 seconds
            visible_hostname cairn-test-proxy
            """);
        proxy.Process = Exec.Start([Binary, "-N", "-f", conf]);
        proxy.Capture(proxy.Process);
        await Exec.WaitForPortAsync(proxy.Port, proxy.Process, () => proxy.Log + Nginx.ReadOrEmpty(Path.Combine(dir, "cache.log")), TimeSpan.FromSeconds(60));
        proxy.AccessLog = Path.Combine(dir, "access.log");
        return proxy;
    }

    public string AccessLog { get; private set; } = "";
}
