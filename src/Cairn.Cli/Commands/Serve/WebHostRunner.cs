using Cairn.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Cairn.Cli.Commands.Serve;

/// <summary>Runs a web application (cairn serve, cairn gateway) in the foreground until Ctrl-C or SIGTERM.</summary>
internal static class WebHostRunner
{
    /// <summary>Console logging for servers: one line per event, warnings only unless --verbose.</summary>
    public static Action<ILoggingBuilder> Logging(bool verbose) => logging => logging
        .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; })
        .AddFilter((_, level) => level >= (verbose ? LogLevel.Information : LogLevel.Warning));

    /// <param name="describe">The first line printed once listening, given the bound addresses.</param>
    public static async Task RunAsync(CliContext ctx, WebApplication app, string listen, Func<string, string> describe, CancellationToken ct)
    {
        await using (app)
        {
            try
            {
                await app.StartAsync(ct);
            }
            catch (IOException e)
            {
                throw new CairnException(ErrorCode.ServeFailed, $"cannot listen on {listen}: {e.Message}",
                    "choose another --listen address or port, or stop what holds it");
            }

            // One line a script (or a test) can wait for: the address actually bound.
            ctx.Out.WriteLine(describe(string.Join(", ", Cairn.Server.CairnServer.Addresses(app))));
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
    }
}
