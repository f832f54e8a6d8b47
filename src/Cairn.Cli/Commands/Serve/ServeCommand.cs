using System.CommandLine;
using Cairn.Core;
using Cairn.Server;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Cairn.Cli.Commands.Serve;

public static class ServeCommand
{
    public static Command Create()
    {
        var listen = new Option<string>("--listen")
        {
            Description = "Address to listen on (http://ADDRESS:PORT; port 0 picks a free one)",
            DefaultValueFactory = _ => "http://127.0.0.1:8080",
        };
        var maxAge = new Option<int>("--manifest-max-age")
        {
            Description = "Seconds clients and proxies may reuse manifest.json before asking again",
            DefaultValueFactory = _ => 60,
        };
        var command = new Command("serve", "Serve the repository read-only over HTTP (packs, indexes, revisions, manifest, /objects, /healthz, /metrics)")
        {
            listen, maxAge,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            if (ctx.IsRemote)
            {
                throw new CairnException(ErrorCode.Usage, "cairn serve serves a repository directory, not a URL", "pass --repo DIR");
            }

            if (ctx.Parse.GetValue(maxAge) < 0)
            {
                throw new CairnException(ErrorCode.Usage, "--manifest-max-age must be 0 or more", "e.g. --manifest-max-age 60");
            }

            var verbose = ctx.Parse.GetValue(GlobalOptions.Verbose);
            var app = CairnServer.Build(new ServeOptions
            {
                RepositoryPath = ctx.RepositoryPath,
                Listen = ctx.Parse.GetValue(listen)!,
                ManifestMaxAge = TimeSpan.FromSeconds(ctx.Parse.GetValue(maxAge)),
                Time = ctx.Time,
            }, logging => logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; })
                .AddFilter((category, level) => level >= (verbose ? LogLevel.Information : LogLevel.Warning)));
            await using (app)
            {
                try
                {
                    await app.StartAsync(ct);
                }
                catch (IOException e)
                {
                    throw new CairnException(ErrorCode.ServeFailed, $"cannot listen on {ctx.Parse.GetValue(listen)}: {e.Message}",
                        "choose another --listen address or port, or stop what holds it");
                }

                // One line a script (or a test) can wait for: the address actually bound.
                ctx.Out.WriteLine($"serving {Path.GetFullPath(ctx.RepositoryPath)} on {string.Join(", ", CairnServer.Addresses(app))}");
                ctx.Out.Flush();
                // Until Ctrl-C or SIGTERM: the host's console lifetime handles both and stops the application.
                try
                {
                    await app.WaitForShutdownAsync(ct);
                }
                catch (OperationCanceledException)
                {
                }

                await app.StopAsync(CancellationToken.None);
            }

            return 0;
        });
        return command;
    }
}
