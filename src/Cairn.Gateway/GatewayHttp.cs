using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace Cairn.Gateway;

/// <summary>
/// The gateway's HTTP API (docs/format/gateway-api.md): one endpoint per <see cref="IGateway"/> call under /v1/,
/// bearer-token authentication, JSON in <see cref="CairnJson"/>'s conventions, every error as a
/// <see cref="GatewayError"/> with the status its code maps to.
/// </summary>
public static class GatewayHttp
{
    public const string JsonContentType = "application/json";

    public static void MapGateway(WebApplication app, GatewayService service)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(service);
        var log = app.Logger;

        app.MapGet("/v1/whoami", (HttpContext c) => Authenticated(c, service, log, CoordinationJson.Default.SiteIdentity, async (g, ct) => await g.WhoAmIAsync(ct)));

        app.MapPut("/v1/site/capabilities", (HttpContext c) => Authenticated(c, service, log, CoordinationJson.Default.Site, async (g, ct) =>
            await g.DeclareCapabilitiesAsync(await ReadAsync(c, CoordinationJson.Default.SiteCapabilities, ct), ct)));

        app.MapPost("/v1/jobs", (HttpContext c) => Authenticated(c, service, log, CoordinationJson.Default.JobOffer, async (g, ct) =>
            await g.RequestJobAsync(await ReadAsync(c, CoordinationJson.Default.JobRequest, ct), ct)));

        app.MapPost("/v1/claims/heartbeat", (HttpContext c) => Authenticated(c, service, log, CoordinationJson.Default.Claim, async (g, ct) =>
        {
            var body = await ReadAsync(c, CoordinationJson.Default.ClaimTokenRequest, ct);
            return await g.HeartbeatAsync(body.BuildKey, body.FencingToken, ct);
        }));

        app.MapPost("/v1/claims/release", (HttpContext c) => Authenticated(c, service, log, CoordinationJson.Default.ReleaseResponse, async (g, ct) =>
        {
            var body = await ReadAsync(c, CoordinationJson.Default.ClaimTokenRequest, ct);
            return new ReleaseResponse(await g.ReleaseAsync(body.BuildKey, body.FencingToken, ct));
        }));

        app.MapPost("/v1/objects/missing", (HttpContext c) => Authenticated(c, service, log, CoordinationJson.Default.MissingObjectsResponse, async (g, ct) =>
            new MissingObjectsResponse(await g.MissingObjectsAsync((await ReadAsync(c, CoordinationJson.Default.MissingObjectsRequest, ct)).Digests ?? [], ct))));

        app.MapPut("/v1/objects/{digest}", (HttpContext c, string digest) => Authenticated(c, service, log, async (g, ct) =>
        {
            if (!Digest.TryParse(digest, out var d))
            {
                throw new CairnException(ErrorCode.Usage, $"'{digest}' is not an object digest", "PUT /v1/objects/<64 lowercase hex digits>");
            }

            var content = await ReadObjectAsync(c, service, d, ct);
            await g.PutObjectAsync(d, content, ct);
        }));

        app.MapPost("/v1/commits", (HttpContext c) => Authenticated(c, service, log, CoordinationJson.Default.CommitOutcome, async (g, ct) =>
            await g.CommitAsync(await ReadAsync(c, CoordinationJson.Default.ProductCommit, ct), ct)));

        app.MapPost("/v1/failures", (HttpContext c) => Authenticated(c, service, log, CoordinationJson.Default.BuildResult, async (g, ct) =>
        {
            var body = await ReadAsync(c, CoordinationJson.Default.FailureReport, ct);
            return await g.ReportFailureAsync(body.Result, body.FencingToken, ct);
        }));

        // Coherence reports are public: anyone deciding whether to trust a product may read why it was (not) promoted.
        app.MapGet("/v1/coherence/{buildKey}", (HttpContext c, string buildKey) =>
            Respond(c, log, CoordinationJson.Default.GatewayCoherence, async ct => await service.GetCoherenceAsync(buildKey, ct)));

        app.MapGet("/v1/coherence", (HttpContext c) =>
            Respond(c, log, CoordinationJson.Default.IReadOnlyListGatewayCoherence, async ct => await service.FindCoherenceAsync(c.Request.Query.TryGetValue("product", out var p) && p.Count > 0 ? p[0] : null, ct)));
    }

    private static Task Authenticated<T>(HttpContext context, GatewayService service, ILogger log, JsonTypeInfo<T> answer, Func<IGateway, CancellationToken, Task<T>> call) =>
        Respond(context, log, answer, async ct => await call(await AuthenticateAsync(context, service, ct), ct));

    /// <summary>A call answered with 204 No Content.</summary>
    private static Task Authenticated(HttpContext context, GatewayService service, ILogger log, Func<IGateway, CancellationToken, Task> call) =>
        Handle(context, log, async ct =>
        {
            await call(await AuthenticateAsync(context, service, ct), ct);
            context.Response.StatusCode = StatusCodes.Status204NoContent;
        });

    private static async Task<IGateway> AuthenticateAsync(HttpContext context, GatewayService service, CancellationToken ct)
    {
        string header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith(GatewayProtocol.TokenPrefix, StringComparison.Ordinal))
        {
            throw new CairnException(ErrorCode.TokenInvalid, "the request carries no site token",
                "send 'Authorization: Bearer cairn_…' (cairn build --token-file FILE does)");
        }

        return await service.AuthenticateAsync(header[GatewayProtocol.TokenPrefix.Length..].Trim(), ct);
    }

    private static Task Respond<T>(HttpContext context, ILogger log, JsonTypeInfo<T> answer, Func<CancellationToken, Task<T>> call) =>
        Handle(context, log, async ct =>
        {
            var result = await call(ct);
            if (result is null)
            {
                context.Response.StatusCode = StatusCodes.Status204NoContent;
                return;
            }

            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = JsonContentType;
            await JsonSerializer.SerializeAsync(context.Response.Body, result, answer, ct);
        });

    /// <summary>Runs a call, turning its failure into a <see cref="GatewayError"/> answer.</summary>
    private static async Task Handle(HttpContext context, ILogger log, Func<CancellationToken, Task> call)
    {
        var ct = context.RequestAborted;
        context.Response.Headers.CacheControl = "no-store";
        try
        {
            await call(ct);
        }
        catch (CairnException e)
        {
            var status = StatusOf(e.Code);
            if (status >= 500) log.LogError("{Method} {Path}: {Code} {Message}", context.Request.Method, context.Request.Path, e.CodeName, e.Message);
            else log.LogInformation("{Method} {Path}: {Code} {Message}", context.Request.Method, context.Request.Path, e.CodeName, e.Message);
            await WriteErrorAsync(context, status, e.Code, e.Message, e.Hint);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away; there is no one to answer.
        }
        catch (BadHttpRequestException e)
        {
            await WriteErrorAsync(context, e.StatusCode, ErrorCode.Usage, e.Message, "check the request against docs/format/gateway-api.md");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The store or its disk failed: still an error report the client can read, never an empty 500.
            log.LogError(e, "{Method} {Path} failed", context.Request.Method, context.Request.Path);
            await WriteErrorAsync(context, StatusCodes.Status500InternalServerError, ErrorCode.IoError, e.Message, "see the gateway's log; retry");
        }
    }

    private static async Task WriteErrorAsync(HttpContext context, int status, ErrorCode code, string message, string? hint)
    {
        if (context.Response.HasStarted) return;
        context.Response.Clear();
        context.Response.Headers.CacheControl = "no-store";
        context.Response.StatusCode = status;
        context.Response.ContentType = JsonContentType;
        await JsonSerializer.SerializeAsync(context.Response.Body, new GatewayError(ErrorCodes.Name(code), code.ToString(), message, hint), CoordinationJson.Default.GatewayError);
    }

    /// <summary>The HTTP status of each error (docs/format/gateway-api.md, "Errors").</summary>
    public static int StatusOf(ErrorCode code) => code switch
    {
        ErrorCode.TokenInvalid or ErrorCode.TokenRevoked => StatusCodes.Status401Unauthorized,
        ErrorCode.TokenOutOfScope => StatusCodes.Status403Forbidden,
        ErrorCode.ProductNotFound or ErrorCode.RevisionNotFound or ErrorCode.SiteUnknown => StatusCodes.Status404NotFound,
        ErrorCode.ClaimLost or ErrorCode.LeaseLost or ErrorCode.GatewayLeaseBusy or ErrorCode.ProductExists or ErrorCode.PromotionRefused
            or ErrorCode.CapabilityMismatch => StatusCodes.Status409Conflict,
        ErrorCode.GatewayObjectTooLarge => StatusCodes.Status413PayloadTooLarge,
        ErrorCode.GatewayObjectMismatch or ErrorCode.GatewayObjectsMissing => StatusCodes.Status422UnprocessableEntity,
        ErrorCode.CoordinationUnavailable => StatusCodes.Status503ServiceUnavailable,
        ErrorCode.Usage or ErrorCode.InvalidPath or ErrorCode.InvalidProductReference or ErrorCode.GatewayCommitInvalid
            or ErrorCode.ManifestMalformed => StatusCodes.Status400BadRequest,
        _ => StatusCodes.Status500InternalServerError,
    };

    private static async Task<T> ReadAsync<T>(HttpContext context, JsonTypeInfo<T> body, CancellationToken ct)
        where T : class
    {
        if (context.Request.ContentType is not { } type || !type.StartsWith(JsonContentType, StringComparison.OrdinalIgnoreCase))
        {
            throw new CairnException(ErrorCode.Usage, $"{context.Request.Method} {context.Request.Path} expects a JSON body (Content-Type: {JsonContentType})",
                "see docs/format/gateway-api.md");
        }

        try
        {
            return await JsonSerializer.DeserializeAsync(context.Request.Body, body, ct)
                ?? throw new JsonException("the body is null");
        }
        catch (JsonException e)
        {
            throw new CairnException(ErrorCode.Usage, $"the body of {context.Request.Method} {context.Request.Path} is not a valid {typeof(T).Name}: {e.Message}",
                "see docs/format/gateway-api.md");
        }
    }

    private static async Task<byte[]> ReadObjectAsync(HttpContext context, GatewayService service, Digest digest, CancellationToken ct)
    {
        var max = service.Options.MaxObjectSize;
        if (context.Request.ContentLength is { } declared && declared > max) throw service.TooLarge(digest, declared);
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = max + 1L;
        using var buffer = new MemoryStream(context.Request.ContentLength is { } n ? (int)n : 64 * 1024);
        var chunk = new byte[81920];
        while (true)
        {
            var read = await context.Request.Body.ReadAsync(chunk, ct);
            if (read == 0) break;
            buffer.Write(chunk, 0, read);
            if (buffer.Length > max) throw service.TooLarge(digest, buffer.Length);
        }

        return buffer.ToArray();
    }
}
