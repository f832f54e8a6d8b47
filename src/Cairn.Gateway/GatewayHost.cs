using Cairn.Core;
using Cairn.Server;
using Cairn.Web;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Cairn.Gateway;

public sealed record GatewayHostOptions
{
    public required GatewayService Service { get; init; }

    /// <summary>The repository directory to serve read-only beside the API (null: an s3:// store, which sites read directly).</summary>
    public string? RepositoryDirectory { get; init; }

    /// <summary>http://ADDRESS:PORT (port 0 picks a free one).</summary>
    public string Listen { get; init; } = "http://127.0.0.1:8090";

    public TimeSpan ManifestMaxAge { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The path prefix a reverse proxy serves the dashboard under; null: X-Forwarded-Prefix or none.</summary>
    public string? BasePath { get; init; }

    /// <summary>The operator's secret: enables the dashboard's sign-in and operator actions (revoke, promote, re-run). Null: none.</summary>
    public string? OperatorToken { get; init; }

    /// <summary>Every dashboard page needs the operator's sign-in (the repository's files and the /v1 API are unaffected).</summary>
    public bool RequireSignIn { get; init; }
}

/// <summary>The gateway's web application: the /v1 API and, on the same listener, the repository endpoints of <c>cairn serve</c>.</summary>
public static class GatewayHost
{
    public static WebApplication Build(GatewayHostOptions options, Action<ILoggingBuilder>? logging = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!Uri.TryCreate(options.Listen, UriKind.Absolute, out var listen) || listen.Scheme != Uri.UriSchemeHttp)
        {
            throw new CairnException(ErrorCode.ServeFailed, $"'{options.Listen}' is not a listen address",
                "use --listen http://ADDRESS:PORT, e.g. http://127.0.0.1:8090 (put TLS in a reverse proxy)");
        }

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        logging?.Invoke(builder.Logging);
        builder.WebHost.UseUrls(listen.GetLeftPart(UriPartial.Authority));
        // Commit bodies are JSON of a few KiB; objects are capped per request by the gateway.
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = Math.Max(options.Service.Options.MaxObjectSize + 1L, 16L << 20));
        var metrics = new ServerMetrics();
        builder.Services.AddSingleton(metrics);
        var app = builder.Build();
        if (options.RepositoryDirectory is { } dir)
        {
            CairnServer.MapRepository(app, dir, options.ManifestMaxAge, metrics, readOnly: false);
        }

        GatewayHttp.MapGateway(app, options.Service);
        Dashboard.Map(app, new DashboardOptions
        {
            Repository = options.Service.Repository, Coordination = options.Service.Store, CoherenceOf = options.Service.GetCoherenceAsync,
            Metrics = metrics.Render, BasePath = options.BasePath, OperatorToken = options.OperatorToken, RequireSignIn = options.RequireSignIn,
        });
        app.MapFallback((HttpContext context) => Results.NotFound());
        return app;
    }
}
