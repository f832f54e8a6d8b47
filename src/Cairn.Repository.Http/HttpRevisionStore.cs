using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using Cairn.Core;
using Cairn.Repository.Transparency;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Repository.Http;

/// <summary>
/// Read-only revisions of a remote repository: <c>cairn.json</c>, <c>manifest.json</c> (the head) and
/// <c>revisions/N.json</c>, each a plain file a static web server can serve. A static server cannot list
/// directories, so the history is read by asking for every revision from 1 to the head (gc'ed ones are 404).
/// </summary>
public sealed class HttpRevisionStore : IRevisionReader
{
    private readonly RemoteFetcher _fetcher;
    private readonly RemoteOptions _options;
    private readonly ConcurrentDictionary<long, Manifest?> _revisions = new();
    private Manifest? _head;

    private HttpRevisionStore(RemoteFetcher fetcher, RemoteOptions options, RepositoryConfig config, ILogger? logger)
    {
        _fetcher = fetcher;
        _options = options;
        Config = config;
        _log = logger ?? NullLogger.Instance;
    }

    private readonly ILogger _log;

    public static async Task<HttpRevisionStore> OpenAsync(RemoteFetcher fetcher, RemoteOptions options, CancellationToken ct, ILogger? logger = null)
    {
        var config = await fetcher.FetchAsync(new FetchRequest(RepositoryFiles.Config, 1 << 20),
            (bytes, where) => CairnJson.Deserialize(bytes, CoreJson.Default.RepositoryConfig, $"'{where}'"), notFoundIsNull: true, ct).ConfigureAwait(false)
            ?? throw new CairnException(ErrorCode.RepositoryNotFound, $"no Cairn repository at {string.Join(", ", options.Servers)} (cairn.json is not there)",
                "check the URL: it names the repository directory as served (the folder holding cairn.json and manifest.json)");
        if (config.Format != 1)
        {
            throw new CairnException(ErrorCode.UnsupportedRepositoryVersion,
                $"the repository at {options.Servers[0]} has format {config.Format}; this cairn reads format 1", "use a matching cairn release");
        }

        var store = new HttpRevisionStore(fetcher, options, config, logger);
        if (options.Verifier is { } verifier)
        {
            // The root's revocation list, when the server has one (a client also remembers the newest it saw).
            var revocations = await fetcher.FetchAsync(new FetchRequest(RepositoryFiles.Revocations, verifier.MaxEnvelopeBytes), (bytes, _) => bytes,
                notFoundIsNull: true, ct).ConfigureAwait(false);
            store._revocations = revocations;
        }

        await store.FetchHeadAsync(revalidate: false, ct).ConfigureAwait(false);
        return store;
    }

    public RepositoryConfig Config { get; }

    private byte[]? _revocations;

    private Manifest Accept(byte[] bytes, string where, long? revision)
    {
        var m = CairnJson.Deserialize(bytes, CoreJson.Default.Manifest, $"manifest '{where}'");
        if (m.Repository != Config.Name)
        {
            throw new CairnException(ErrorCode.ManifestMalformed, $"manifest '{where}' belongs to repository '{m.Repository}', not '{Config.Name}'", "check the server list");
        }

        if (revision is { } r && m.Revision != r)
        {
            throw new CairnException(ErrorCode.ManifestMalformed, $"'{where}' holds revision {m.Revision}, not {r}", "the server's copy is damaged");
        }

        return m;
    }

    /// <summary>
    /// Reads the head from every server at once and takes the newest valid one (docs/distribution.md, "Mirrors"):
    /// a mirror that is stale, unsigned, badly signed, of another repository, expired or behind the last accepted
    /// revision is skipped with a warning saying why. <paramref name="revalidate"/> makes proxies check with the server.
    /// </summary>
    public async Task<Manifest?> FetchHeadAsync(bool revalidate, CancellationToken ct)
    {
        var offers = await Task.WhenAll(_options.Servers.Select((_, i) => OfferAsync(i, revalidate, ct))).ConfigureAwait(false);
        var valid = offers.Where(o => o.Manifest is not null).OrderByDescending(o => o.Manifest!.Revision).ToList();
        var refused = offers.Where(o => o.Error is not null).ToList();
        foreach (var o in refused.Where(_ => valid.Count > 0 || offers.Length > 1))
        {
            _log.LogWarning("server {Server} skipped ({Code}): {Why}", o.Server, o.Error!.CodeName, o.Error.Message);
        }

        foreach (var o in offers.Where(o => o.Manifest is null && o.Error is null && valid.Count > 0))
        {
            _log.LogWarning("server {Server} has no manifest.json (404): an empty or half-made mirror, skipped", o.Server);
        }

        if (valid.Count == 0)
        {
            if (refused.Count == 0)
            {
                // Every server answered that there is no manifest: an empty (unsigned) repository.
                _head = null;
                return null;
            }

            throw Combine(refused);
        }

        var best = valid[0];
        if (_options.Verifier is { } verifier)
        {
            try
            {
                verifier.AcceptHead(best.Manifest!, best.Where);
            }
            catch (CairnException e) when (e.Code == ErrorCode.TrustRollback && offers.Length > 1)
            {
                // The newest offer is already behind the last accepted head, so is every other valid one.
                _log.LogWarning("{Error}", e.Message);
                throw Combine([.. refused, .. valid.Select(o => o with
                {
                    Error = new CairnException(ErrorCode.TrustRollback, $"revision {o.Manifest!.Revision} is older than the last accepted ({e.Message})", e.Hint),
                })]);
            }

            // Two mirrors signing different roots under one revision number is equivocation, whichever is used.
            foreach (var twin in valid.Skip(1).Where(o => o.Manifest!.Revision == best.Manifest!.Revision && o.Manifest.Root != best.Manifest.Root))
            {
                verifier.AcceptHead(twin.Manifest!, twin.Where);
            }
        }

        foreach (var stale in valid.Skip(1).Where(o => o.Manifest!.Revision < best.Manifest!.Revision))
        {
            _log.LogWarning("server {Server} is stale: revision {Stale}, newer revision {Head} taken from {Best}", stale.Server, stale.Manifest!.Revision, best.Manifest!.Revision, best.Server);
        }

        // The publication log, from the server whose head is used (docs/security.md): a head outside it is refused.
        if (_options.Log is { } log)
        {
            await log.CheckAsync(new ServerLogSource(this, _options.Servers.ToList().IndexOf(best.Server)), LogFiles.Origin(Config.Name), best.Manifest!, ct).ConfigureAwait(false);
        }

        _head = best.Manifest;
        return _head;
    }

    private sealed record Offer(Uri Server, Manifest? Manifest, string Where, CairnException? Error);

    /// <summary>One server's head, checked as far as it can be without the others (signature, repository, expiry).</summary>
    private async Task<Offer> OfferAsync(int server, bool revalidate, CancellationToken ct)
    {
        var baseUri = _options.Servers[server];
        var where = new Uri(baseUri, RepositoryFiles.Head).ToString();
        try
        {
            if (_options.Verifier is not { } verifier)
            {
                var m = await _fetcher.FetchFromServerAsync(server, new FetchRequest(RepositoryFiles.Head, _options.MaxManifestBytes) { Revalidate = revalidate },
                    (bytes, w) => Accept(bytes, w, null), notFoundIsNull: true, ct).ConfigureAwait(false);
                return new Offer(baseUri, m, where, null);
            }

            return new Offer(baseUri, await SignedHeadAsync(verifier, server, revalidate, ct).ConfigureAwait(false), where, null);
        }
        catch (CairnException e)
        {
            return new Offer(baseUri, null, where, e);
        }
    }

    /// <summary>A single refusal keeps its own code; several of one kind keep it too; a mix is CAIRN-E0706.</summary>
    private static CairnException Combine(List<Offer> refused)
    {
        if (refused.Count == 1) return refused[0].Error!;
        var reasons = string.Join("; ", refused.Select(o => $"{o.Server}: {ErrorCodes.Name(o.Error!.Code)} {o.Error.Message}"));
        var codes = refused.Select(o => o.Error!.Code).Distinct().ToList();
        if (codes.Count == 1)
        {
            return new CairnException(codes[0], $"no server offers a usable head ({reasons})", refused[0].Error!.Hint);
        }

        return new CairnException(ErrorCode.RemoteNoValidHead, $"no server offers a valid signed head ({reasons})",
            "each reason is listed per server: fix or drop the servers concerned (--repo), or wait for a mirror to catch up");
    }

    /// <summary>
    /// manifest.sig first, with a small cap, checked before the manifest is downloaded; then manifest.json from the
    /// same server, read no further than its signed length and checked against its signed SHA-256.
    /// </summary>
    private async Task<Manifest> SignedHeadAsync(IManifestVerifier verifier, int server, bool revalidate, CancellationToken ct)
    {
        if (_revocations is { } list)
        {
            verifier.UseRevocations(list, RepositoryFiles.Revocations);
        }

        var sigWhere = new Uri(_options.Servers[server], RepositoryFiles.HeadSignature).ToString();
        byte[]? envelope;
        try
        {
            envelope = await _fetcher.FetchFromServerAsync(server, new FetchRequest(RepositoryFiles.HeadSignature, verifier.MaxEnvelopeBytes) { Revalidate = revalidate },
                (bytes, _) => bytes, notFoundIsNull: true, ct).ConfigureAwait(false);
        }
        catch (CairnException e) when (e.Code == ErrorCode.RemoteUnavailable && e.Message.Contains("exceeds the limit", StringComparison.Ordinal))
        {
            throw new CairnException(ErrorCode.TrustManifestTooLarge, $"'{sigWhere}' is larger than {verifier.MaxEnvelopeBytes} bytes: {e.Message}", "the server sends forged data: use another server");
        }

        if (envelope is null)
        {
            throw new CairnException(ErrorCode.TrustSignatureMissing, $"the repository '{Config.Name}' at {_options.Servers[server]} has no 'manifest.sig': it is not signed",
                "publish with --signing-key (or 'cairn key resign' the head), or drop --trust / CAIRN_TRUST for an unsigned repository");
        }

        var signed = verifier.CheckEnvelope(envelope, Config.Name, null, sigWhere);
        try
        {
            return await SignedBodyFromAsync(verifier, server, signed, RepositoryFiles.Head, revalidate, ct).ConfigureAwait(false);
        }
        catch (CairnException)
        {
            // A commit between reading manifest.sig and manifest.json: the signed revision's own file is immutable.
            var own = RepositoryFiles.Revision(signed.Revision);
            return await SignedBodyFromAsync(verifier, server, signed, own, revalidate: false, ct).ConfigureAwait(false);
        }
    }

    private async Task<Manifest> SignedBodyFromAsync(IManifestVerifier verifier, int server, SignedManifest signed, string path, bool revalidate, CancellationToken ct)
    {
        byte[]? bytes;
        try
        {
            bytes = await _fetcher.FetchFromServerAsync(server, new FetchRequest(path, signed.Length) { Revalidate = revalidate }, (b, _) => b, notFoundIsNull: true, ct)
                .ConfigureAwait(false);
        }
        catch (CairnException e) when (e.Code == ErrorCode.RemoteUnavailable && e.Message.Contains("exceeds the limit", StringComparison.Ordinal))
        {
            throw new CairnException(ErrorCode.TrustManifestTooLarge, $"'{path}' is longer than its signed length of {signed.Length} bytes: {e.Message}", "the server sends forged data: use another server");
        }

        var where = new Uri(_options.Servers[server], path).ToString();
        if (bytes is null)
        {
            throw new CairnException(ErrorCode.TrustManifestMismatch, $"'{where}' (signed revision {signed.Revision}) is not there", "the server is half-updated: retry");
        }

        // Outside the fetcher, so that a refusal keeps its trust error code.
        return verifier.CheckManifest(signed, bytes, where);
    }

    /// <summary>The head's pack list, for <see cref="HttpObjectStore"/>.</summary>
    public async Task<IReadOnlyList<string>?> PacksAsync(bool fresh, CancellationToken ct)
    {
        var head = fresh || _head is null ? await FetchHeadAsync(revalidate: fresh, ct).ConfigureAwait(false) : _head;
        return head?.Packs;
    }

    public ValueTask<Manifest?> ReadHeadAsync(CancellationToken ct) => ValueTask.FromResult(_head);

    public async ValueTask<Manifest?> ReadRevisionAsync(long revision, CancellationToken ct)
    {
        if (_head is { } head && head.Revision == revision) return head;
        if (revision < 1) return null;
        if (_revisions.TryGetValue(revision, out var known)) return known;
        var path = RepositoryFiles.Revision(revision);
        if (_options.Verifier is { } verifier)
        {
            var signed = await FetchSignedAsync(verifier, Path.ChangeExtension(path, ".sig"), path, revision, revalidate: false, ct).ConfigureAwait(false);
            if (signed is not null && _options.Log is { } log) await log.CheckAsync(new ServerLogSource(this, null), LogFiles.Origin(Config.Name), signed, ct).ConfigureAwait(false);
            _revisions[revision] = signed;
            return signed;
        }

        var m = await _fetcher.FetchAsync(new FetchRequest(path, _options.MaxManifestBytes),
            (bytes, where) => Accept(bytes, where, revision), notFoundIsNull: true, ct).ConfigureAwait(false);
        _revisions[revision] = m;
        return m;
    }

    /// <summary>
    /// The signature first, with a small cap, checked before the manifest is downloaded; then the manifest, read
    /// no further than its signed length and checked against its signed SHA-256 (docs/security.md).
    /// </summary>
    private async Task<Manifest?> FetchSignedAsync(IManifestVerifier verifier, string sigPath, string path, long? revision, bool revalidate, CancellationToken ct)
    {
        if (_revocations is { } list)
        {
            verifier.UseRevocations(list, RepositoryFiles.Revocations);
        }

        byte[]? envelope;
        try
        {
            envelope = await _fetcher.FetchAsync(new FetchRequest(sigPath, verifier.MaxEnvelopeBytes) { Revalidate = revalidate }, (bytes, _) => bytes,
                notFoundIsNull: true, ct).ConfigureAwait(false);
        }
        catch (CairnException e) when (e.Code == ErrorCode.RemoteUnavailable && e.Message.Contains("exceeds the limit", StringComparison.Ordinal))
        {
            throw new CairnException(ErrorCode.TrustManifestTooLarge, $"'{sigPath}' is larger than {verifier.MaxEnvelopeBytes} bytes: {e.Message}", "the server sends forged data: use another server");
        }

        // An older revision without a signature (gc'ed, or from before signing began) is simply not there.
        if (envelope is null && revision is not null) return null;
        if (envelope is null)
        {
            throw new CairnException(ErrorCode.TrustSignatureMissing, $"the repository '{Config.Name}' at {string.Join(", ", _options.Servers)} has no '{sigPath}': it is not signed",
                "publish with --signing-key (or 'cairn key resign' the head), or drop --trust / CAIRN_TRUST for an unsigned repository");
        }

        var where = new Uri(_options.Servers[0], sigPath).ToString();
        var signed = verifier.CheckEnvelope(envelope, Config.Name, revision, where);
        try
        {
            return await FetchSignedBodyAsync(verifier, signed, path, revalidate, ct).ConfigureAwait(false);
        }
        catch (CairnException) when (revision is null)
        {
            // A commit between reading manifest.sig and manifest.json: the signed revision's own file is immutable.
            var own = RepositoryFiles.Revision(signed.Revision);
            return await FetchSignedBodyAsync(verifier, signed, own, revalidate: false, ct).ConfigureAwait(false);
        }
    }

    private async Task<Manifest> FetchSignedBodyAsync(IManifestVerifier verifier, SignedManifest signed, string path, bool revalidate, CancellationToken ct)
    {
        try
        {
            return await _fetcher.FetchAsync(new FetchRequest(path, signed.Length) { Revalidate = revalidate },
                       (bytes, where) => verifier.CheckManifest(signed, bytes, where), notFoundIsNull: true, ct).ConfigureAwait(false)
                   ?? throw new CairnException(ErrorCode.TrustManifestMismatch, $"'{path}' (signed revision {signed.Revision}) is not on any server", "the servers are half-updated: retry");
        }
        catch (CairnException e) when (e.Code == ErrorCode.RemoteUnavailable && e.Message.Contains("exceeds the limit", StringComparison.Ordinal))
        {
            throw new CairnException(ErrorCode.TrustManifestTooLarge, $"'{path}' is longer than its signed length of {signed.Length} bytes: {e.Message}", "the server sends forged data: use another server");
        }
        catch (CairnException e) when (e.Code == ErrorCode.RemoteContentRejected)
        {
            throw new CairnException(ErrorCode.TrustManifestMismatch, e.Message, "the server's copy is forged, damaged or half-updated: retry, or use another server");
        }
    }

    public async IAsyncEnumerable<Manifest> ListRevisionsAsync([EnumeratorCancellation] CancellationToken ct)
    {
        var head = _head?.Revision ?? 0;
        const int window = 16;
        for (long start = 1; start <= head; start += window)
        {
            var batch = Enumerable.Range(0, (int)Math.Min(window, head - start + 1)).Select(i => ReadRevisionAsync(start + i, ct).AsTask()).ToList();
            foreach (var m in await Task.WhenAll(batch).ConfigureAwait(false))
            {
                if (m is not null) yield return m;
            }
        }
    }

    /// <summary>The log's files from one server (the one whose head is used), or from any (null) for older revisions.</summary>
    private sealed class ServerLogSource(HttpRevisionStore store, int? server) : ILogSource
    {
        public string Where(string path) => new Uri(store._options.Servers[server ?? 0], path).ToString();

        public Task<byte[]?> ReadAsync(string path, long maxBytes, CancellationToken ct) => server is { } s
            ? store._fetcher.FetchFromServerAsync(s, new FetchRequest(path, maxBytes) { Revalidate = path == LogFiles.Checkpoint }, (bytes, _) => bytes, notFoundIsNull: true, ct)
            : store._fetcher.FetchAsync(new FetchRequest(path, maxBytes), (bytes, _) => bytes, notFoundIsNull: true, ct);
    }

    /// <summary>The publication log as this client reads it (cairn log show/verify/prove on a remote repository).</summary>
    public ILogSource LogSource => new ServerLogSource(this, null);
}
