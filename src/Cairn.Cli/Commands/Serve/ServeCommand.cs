using System.CommandLine;
using Cairn.Core;
using Cairn.Repository;
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
        var basePath = OperatorToken.BasePathOption();
        var operatorToken = OperatorToken.TokenFileOption();
        var requireToken = OperatorToken.RequireTokenOption();
        var command = new Command("serve", "Serve the repository read-only over HTTP (packs, indexes, revisions, manifest, /objects, /healthz, /metrics) and the dashboard at /ui/")
        {
            listen, maxAge, basePath, operatorToken, requireToken,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            if (ctx.Location is not DirectoryLocation directory)
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
                RepositoryPath = directory.Path,
                Listen = ctx.Parse.GetValue(listen)!,
                ManifestMaxAge = TimeSpan.FromSeconds(ctx.Parse.GetValue(maxAge)),
                Time = ctx.Time,
                BasePath = OperatorToken.BasePath(ctx.Parse.GetValue(basePath)),
                OperatorToken = await OperatorToken.ReadAsync(ctx.Parse.GetValue(operatorToken), ct),
                RequireSignIn = OperatorToken.RequireSignIn(ctx.Parse.GetValue(requireToken), ctx.Parse.GetValue(operatorToken)),
            }, WebHostRunner.Logging(verbose));
            await WebHostRunner.RunAsync(ctx, app, ctx.Parse.GetValue(listen)!, addresses => $"serving {directory.FullPath} on {addresses}", ct);

            return 0;
        });
        return command;
    }
}
