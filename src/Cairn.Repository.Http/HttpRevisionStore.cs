using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using Cairn.Core;

namespace Cairn.Repository.Http;

/// <summary>
/// Read-only revisions of a remote repository: <c>cairn.json</c>, <c>manifest.json</c> (the head) and
/// <c>revisions/N.json</c>, each a plain file a static web server can serve. A static server cannot list
/// directories, so the history is read by asking for every revision from 1 to the head (gc'ed ones are 404).
/// </summary>
public sealed class HttpRevisionStore : IRevisionStore
{
    private readonly RemoteFetcher _fetcher;
    private readonly RemoteOptions _options;
    private readonly ConcurrentDictionary<long, Manifest?> _revisions = new();
    private Manifest? _head;

    private HttpRevisionStore(RemoteFetcher fetcher, RemoteOptions options, RepositoryConfig config)
    {
        _fetcher = fetcher;
        _options = options;
        Config = config;
    }

    public static async Task<HttpRevisionStore> OpenAsync(RemoteFetcher fetcher, RemoteOptions options, CancellationToken ct)
    {
        var config = await fetcher.FetchAsync(new FetchRequest("cairn.json", 1 << 20),
            (bytes, where) => CairnJson.Deserialize<RepositoryConfig>(bytes, $"'{where}'"), notFoundIsNull: true, ct).ConfigureAwait(false)
            ?? throw new CairnException(ErrorCode.RepositoryNotFound, $"no Cairn repository at {string.Join(", ", options.Servers)} (cairn.json is not there)",
                "check the URL: it names the repository directory as served (the folder holding cairn.json and manifest.json)");
        if (config.Format != 1)
        {
            throw new CairnException(ErrorCode.UnsupportedRepositoryVersion,
                $"the repository at {options.Servers[0]} has format {config.Format}; this cairn reads format 1", "use a matching cairn release");
        }

        var store = new HttpRevisionStore(fetcher, options, config);
        if (options.Verifier is { } verifier)
        {
            // The root's revocation list, when the server has one (a client also remembers the newest it saw).
            var revocations = await fetcher.FetchAsync(new FetchRequest("revocations.json", verifier.MaxEnvelopeBytes), (bytes, _) => bytes,
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
        var m = CairnJson.Deserialize<Manifest>(bytes, $"manifest '{where}'");
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

    /// <summary>Fetches manifest.json; <paramref name="revalidate"/> makes proxies check with the server first.</summary>
    public async Task<Manifest?> FetchHeadAsync(bool revalidate, CancellationToken ct)
    {
        if (_options.Verifier is { } verifier)
        {
            _head = (await FetchSignedAsync(verifier, "manifest.sig", "manifest.json", null, revalidate, ct).ConfigureAwait(false))!;
            verifier.AcceptHead(_head, new Uri(_options.Servers[0], "manifest.json").ToString());
            return _head;
        }

        _head = await _fetcher.FetchAsync(new FetchRequest("manifest.json", _options.MaxManifestBytes) { Revalidate = revalidate },
            (bytes, where) => Accept(bytes, where, null), notFoundIsNull: true, ct).ConfigureAwait(false);
        return _head;
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
        var path = $"revisions/{revision.ToString("D16", CultureInfo.InvariantCulture)}.json";
        if (_options.Verifier is { } verifier)
        {
            var signed = await FetchSignedAsync(verifier, Path.ChangeExtension(path, ".sig"), path, revision, revalidate: false, ct).ConfigureAwait(false);
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
            verifier.UseRevocations(list, "revocations.json");
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
            var own = $"revisions/{signed.Revision.ToString("D16", CultureInfo.InvariantCulture)}.json";
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

    private static CairnException ReadOnly(string what) =>
        new(ErrorCode.RemoteReadOnly, $"a remote repository is read-only: cannot {what}",
            "publish, tag, rollback and gc on the repository directory itself (the server's --repo)");

    public Task<IAsyncDisposable> LockCommitAsync(CancellationToken ct) => throw ReadOnly("commit a revision");

    /// <summary>Readers take the shared lock to keep a local gc away; a remote repository has no local gc, so sharing is free.</summary>
    public Task<IAsyncDisposable> LockObjectsAsync(bool exclusive, CancellationToken ct) =>
        exclusive ? throw ReadOnly("collect garbage") : Task.FromResult<IAsyncDisposable>(NoLock.Instance);

    private sealed class NoLock : IAsyncDisposable
    {
        public static NoLock Instance { get; } = new();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    public ValueTask CommitAsync(Manifest manifest, CancellationToken ct) => throw ReadOnly("commit a revision");

    public ValueTask DeleteRevisionAsync(long revision, CancellationToken ct) => throw ReadOnly("delete a revision");
}
