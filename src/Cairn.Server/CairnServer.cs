using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Web;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace Cairn.Server;

public sealed record ServeOptions
{
    /// <summary>The repository directory.</summary>
    public required string RepositoryPath { get; init; }

    /// <summary>Where to listen, e.g. http://127.0.0.1:8080 (port 0 picks a free port).</summary>
    public string Listen { get; init; } = "http://127.0.0.1:8080";

    /// <summary>How long clients and proxies may reuse manifest.json and cairn.json before asking again.</summary>
    public TimeSpan ManifestMaxAge { get; init; } = TimeSpan.FromSeconds(60);

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>The path prefix a reverse proxy serves the dashboard under (links use it); null: X-Forwarded-Prefix or none.</summary>
    public string? BasePath { get; init; }

    /// <summary>The operator's secret (32+ characters): enables the dashboard's sign-in. Null: none.</summary>
    public string? OperatorToken { get; init; }

    /// <summary>Every dashboard page needs the operator's sign-in; the repository's files stay public.</summary>
    public bool RequireSignIn { get; init; }
}

/// <summary>
/// Serves a repository directory read-only over HTTP, with the cache semantics of docs/format/repository.md §10 (Serving over HTTP):
/// packs, indexes, revisions and objects are immutable (a year, <c>immutable</c>, strong ETag, ranges); the
/// manifest has a short lifetime. The same files can be served by any static web server; this server adds
/// /objects/&lt;digest&gt;, /healthz and /metrics.
/// </summary>
public static partial class CairnServer
{
    public const string Immutable = "public, max-age=31536000, immutable";

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Hex();

    [GeneratedRegex("^[0-9]{16}$")]
    private static partial Regex RevisionName();

    /// <summary>A C2SP tile or entry-bundle path below log/tile/ (format/transparency-log.md §3).</summary>
    [GeneratedRegex(@"^(entries|[0-9]|[1-5][0-9]|6[0-3])/(x[0-9]{3}/)*[0-9]{3}(\.p/([1-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5]))?$")]
    private static partial Regex TilePath();

    public static WebApplication Build(ServeOptions options, Action<ILoggingBuilder>? logging = null)
    {
        var root = Path.GetFullPath(options.RepositoryPath);
        var configPath = Path.Combine(root, FileSystemLayout.Config);
        if (!File.Exists(configPath))
        {
            throw new CairnException(ErrorCode.RepositoryNotFound, $"no Cairn repository at '{root}'", "point --repo at a repository directory");
        }

        if (!Uri.TryCreate(options.Listen, UriKind.Absolute, out var listen) || listen.Scheme != Uri.UriSchemeHttp)
        {
            throw new CairnException(ErrorCode.ServeFailed, $"'{options.Listen}' is not a listen address", "use --listen http://ADDRESS:PORT, e.g. http://127.0.0.1:8080 (put TLS in a reverse proxy)");
        }

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = root, Args = [] });
        builder.Logging.ClearProviders();
        logging?.Invoke(builder.Logging);
        builder.WebHost.UseUrls(listen.GetLeftPart(UriPartial.Authority));
        var metrics = new ServerMetrics();
        builder.Services.AddSingleton(metrics);
        var app = builder.Build();
        MapRepository(app, root, options.ManifestMaxAge, metrics, readOnly: true);
        var repository = DirectoryRepository.OpenAsync(root, options.Time, null, DirectoryRepository.DefaultLockTimeout, CancellationToken.None).GetAwaiter().GetResult();
        app.Lifetime.ApplicationStopped.Register(() => repository.DisposeAsync().AsTask().GetAwaiter().GetResult());
        Dashboard.Map(app, new DashboardOptions { Repository = repository, Metrics = metrics.Render, Time = options.Time, BasePath = options.BasePath,
            OperatorToken = options.OperatorToken, RequireSignIn = options.RequireSignIn });
        app.MapFallback((HttpContext context) =>
        {
            context.Items["kind"] = "other";
            return Results.NotFound();
        });
        return app;
    }

    /// <summary>
    /// Maps the read-only repository endpoints (manifest, revisions, packs, /objects, /healthz, /metrics) of the
    /// directory <paramref name="root"/> onto <paramref name="app"/>; the gateway shares its listener with them.
    /// <paramref name="readOnly"/> answers every method but GET and HEAD with 405 (cairn serve serves nothing else but
    /// the dashboard's sign-in form).
    /// </summary>
    public static void MapRepository(WebApplication app, string root, TimeSpan manifestMaxAge, ServerMetrics metrics, bool readOnly)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(metrics);
        root = Path.GetFullPath(root);
        var shortLived = $"public, max-age={(long)manifestMaxAge.TotalSeconds}";
        CountAndGuardRequests(app, metrics, readOnly);
        MapStatus(app, root, metrics);
        MapRepositoryFiles(app, root, shortLived);
        MapPacks(app, Path.Combine(root, FileSystemLayout.Packs));
        MapObjects(app, root, metrics);
    }

    /// <summary>Counts every request once it has been answered (HEAD requests send no body); refuses writes when read-only.</summary>
    private static void CountAndGuardRequests(WebApplication app, ServerMetrics metrics, bool readOnly)
    {
        app.Use(async (context, next) =>
        {
            context.Response.OnCompleted(() =>
            {
                var kind = context.Items.TryGetValue("kind", out var k) ? (string)k! : "other";
                var bytes = HttpMethods.IsHead(context.Request.Method) ? 0 : context.Response.ContentLength ?? 0;
                metrics.Record(kind, context.Request.Method, context.Response.StatusCode, bytes);
                return Task.CompletedTask;
            });
            // The dashboard's sign-in is the one form a read-only server accepts (docs/dashboard.md, "Operator actions").
            if (readOnly && !HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method)
                && !(HttpMethods.IsPost(context.Request.Method) && context.Request.Path.Value is Dashboard.Root + "/login" or Dashboard.Root + "/logout"))
            {
                context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
                context.Response.Headers.Allow = "GET, HEAD";
                return;
            }

            await next(context);
        });
    }

    private static void MapStatus(WebApplication app, string root, ServerMetrics metrics)
    {
        app.MapMethods("/healthz", ["GET", "HEAD"], (HttpContext context) =>
        {
            context.Items["kind"] = "health";
            context.Response.Headers.CacheControl = "no-store";
            return File.Exists(Path.Combine(root, FileSystemLayout.Head)) ? Results.Text("ok\n") : Results.Text("no manifest\n", statusCode: 503);
        });

        app.MapMethods("/metrics", ["GET", "HEAD"], (HttpContext context) =>
        {
            context.Items["kind"] = "metrics";
            context.Response.Headers.CacheControl = "no-store";
            return Results.Text(metrics.Render(), "text/plain; version=0.0.4; charset=utf-8");
        });
    }

    /// <summary>The manifest, config, signatures and revisions: small JSON files read whole.</summary>
    private static void MapRepositoryFiles(WebApplication app, string root, string shortLived)
    {
        var revisions = Path.Combine(root, FileSystemLayout.Revisions);
        app.MapMethods("/manifest.json", ["GET", "HEAD"], (HttpContext context) =>
            SmallFile(context, "manifest", Path.Combine(root, FileSystemLayout.Head), shortLived));

        app.MapMethods("/cairn.json", ["GET", "HEAD"], (HttpContext context) =>
            SmallFile(context, "config", Path.Combine(root, FileSystemLayout.Config), shortLived));

        // Signatures (docs/security.md) live as long as the manifest: re-signing refreshes them without a new revision.
        app.MapMethods("/manifest.sig", ["GET", "HEAD"], (HttpContext context) =>
            SmallFile(context, "signature", Path.Combine(root, FileSystemLayout.HeadSignature), shortLived));

        app.MapMethods("/revocations.json", ["GET", "HEAD"], (HttpContext context) =>
            SmallFile(context, "signature", Path.Combine(root, FileSystemLayout.Revocations), shortLived));

        // The publication log: the checkpoint changes with each commit; tiles and entry bundles never change.
        app.MapMethods("/" + LogFiles.Checkpoint, ["GET", "HEAD"], (HttpContext context) =>
            SmallFile(context, "log", Path.Combine(root, LogFiles.Checkpoint), shortLived, "text/plain; charset=utf-8"));

        app.MapMethods("/log/tile/{**path}", ["GET", "HEAD"], (HttpContext context, string path) =>
            TilePath().IsMatch(path) ? SmallFile(context, "log", Path.Combine(root, LogFiles.Folder, "tile", path), Immutable, "application/octet-stream") : Results.NotFound());

        app.MapMethods("/revisions/{name}.sig", ["GET", "HEAD"], (HttpContext context, string name) =>
            RevisionFile(context, root, "signature", Path.Combine(revisions, name + ".sig"), name, shortLived));

        app.MapMethods("/revisions/{name}.json", ["GET", "HEAD"], (HttpContext context, string name) =>
            RevisionFile(context, root, "revision", Path.Combine(revisions, name + ".json"), name, Immutable));
    }

    /// <summary>A file of revision <paramref name="name"/>, served only up to the head.</summary>
    private static IResult RevisionFile(HttpContext context, string root, string kind, string path, string name, string cacheControl)
    {
        context.Items["kind"] = kind;
        if (!RevisionName().IsMatch(name)) return Results.NotFound();
        // A revision above the head is left by a commit that did not finish: not part of the repository.
        var head = ReadHeadRevision(root);
        if (head is null || long.Parse(name, CultureInfo.InvariantCulture) > head) return Results.NotFound();
        return SmallFile(context, kind, path, cacheControl);
    }

    private static void MapPacks(WebApplication app, string packs)
    {
        app.MapMethods("/packs/{file}", ["GET", "HEAD"], (HttpContext context, string file) =>
        {
            var ext = Path.GetExtension(file);
            var name = Path.GetFileNameWithoutExtension(file);
            context.Items["kind"] = ext == ".idx" ? "index" : "pack";
            if ((ext != ".pack" && ext != ".idx") || !Hex().IsMatch(name)) return Results.NotFound();
            // A pack without its index is unfinished or garbage; an index is only ever visible beside its pack.
            var pack = Path.Combine(packs, name + ".pack");
            var idx = Path.Combine(packs, name + ".idx");
            if (!File.Exists(pack) || !File.Exists(idx)) return Results.NotFound();
            context.Response.Headers.CacheControl = Immutable;
            var info = new FileInfo(ext == ".idx" ? idx : pack);
            // The pack's name is its SHA-256; its index is derived from it, so both ETags are strong.
            var etag = new EntityTagHeaderValue($"\"{name}{(ext == ".idx" ? "-idx" : "")}\"");
            return Results.File(info.FullName, "application/octet-stream", lastModified: info.LastWriteTimeUtc, entityTag: etag, enableRangeProcessing: true);
        });
    }

    /// <summary>/objects/DIGEST: one object, decompressed and checked, for clients that do not read packs.</summary>
    private static void MapObjects(WebApplication app, string root, ServerMetrics metrics)
    {
        var store = new Lazy<PackObjectStore>(() => new PackObjectStore(Path.Combine(root, FileSystemLayout.Packs), Path.Combine(root, FileSystemLayout.Tmp)));
        var storeLock = new SemaphoreSlim(1, 1);
        app.MapMethods("/objects/{digest}", ["GET", "HEAD"], async (HttpContext context, string digest, CancellationToken ct) =>
        {
            context.Items["kind"] = "object";
            if (!Digest.TryParse(digest, out var d)) return Results.NotFound();
            var etag = new EntityTagHeaderValue($"\"{digest}\"");
            byte[] content;
            try
            {
                content = await GetObjectAsync(store, storeLock, d, ct);
            }
            catch (CairnException e) when (e.Code == ErrorCode.ObjectMissing)
            {
                return Results.NotFound();
            }
            catch (CairnException e)
            {
                // A corrupt copy is never sent: the client tries another server.
                app.Logger.LogError("object {Digest}: {Message}", digest, e.Message);
                return Results.Problem(e.Message, statusCode: StatusCodes.Status500InternalServerError);
            }

            metrics.ObjectServed();
            context.Response.Headers.CacheControl = Immutable;
            return Results.Bytes(content, "application/octet-stream", entityTag: etag, enableRangeProcessing: true);
        });

        app.Lifetime.ApplicationStopped.Register(() =>
        {
            if (store.IsValueCreated) store.Value.DisposeAsync().AsTask().GetAwaiter().GetResult();
        });
    }

    private static async Task<byte[]> GetObjectAsync(Lazy<PackObjectStore> store, SemaphoreSlim refreshLock, Digest digest, CancellationToken ct)
    {
        try
        {
            return await store.Value.GetAsync(digest, ct);
        }
        catch (CairnException e) when (e.Code == ErrorCode.ObjectMissing)
        {
            // gc may have repacked since the indexes were read: catch up once, then decide.
            await refreshLock.WaitAsync(ct);
            try
            {
                await store.Value.RefreshAsync(ct);
            }
            finally
            {
                refreshLock.Release();
            }

            return await store.Value.GetAsync(digest, ct);
        }
    }

    private static long? ReadHeadRevision(string root)
    {
        try
        {
            return CairnJson.Deserialize(File.ReadAllBytes(Path.Combine(root, FileSystemLayout.Head)), CoreJson.Default.Manifest, "manifest").Revision;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>A small file read whole, with a strong ETag of its SHA-256 (manifest.json changes in place).</summary>
    private static IResult SmallFile(HttpContext context, string kind, string path, string cacheControl, string contentType = "application/json")
    {
        context.Items["kind"] = kind;
        byte[] bytes;
        DateTime modified;
        try
        {
            bytes = File.ReadAllBytes(path);
            modified = File.GetLastWriteTimeUtc(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Results.NotFound();
        }

        context.Response.Headers.CacheControl = cacheControl;
        var etag = new EntityTagHeaderValue($"\"{Convert.ToHexStringLower(SHA256.HashData(bytes))}\"");
        return Results.Bytes(bytes, contentType, lastModified: modified, entityTag: etag, enableRangeProcessing: true);
    }

    /// <summary>The addresses actually bound (port 0 resolved), once the app has started.</summary>
    public static IReadOnlyList<string> Addresses(WebApplication app) =>
        app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()?.Addresses.ToList() ?? [];
}
