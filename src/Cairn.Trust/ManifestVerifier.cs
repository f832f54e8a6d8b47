using System.Text.Json;
using Cairn.Core;
using Cairn.Repository;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NSec.Cryptography;

namespace Cairn.Trust;

/// <summary>What a client remembers of a repository between runs: the last head it accepted and the newest revocations.</summary>
public sealed record TrustState(int Format, string Repository, string RootKeyId, long Revision, Digest Root, DateTimeOffset Timestamp);

/// <summary>
/// The client side of docs/security.md: a manifest is accepted only when signed by a publishing key the trusted root
/// certified, not revoked, for this repository, not expired, not older than the last accepted head and not a second
/// version of it. The trusted root is a key file or just its fingerprint (the envelope then supplies the key).
/// </summary>
public sealed class ManifestVerifier : IManifestVerifier
{
    private readonly string? _trustedFingerprint;
    private PublicKey? _root;
    private readonly string _stateDirectory;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    private RevocationList? _revocations;

    public ManifestVerifier(string trust, string stateDirectory, TimeProvider time, ILogger? logger = null)
    {
        if (Keys.IsFingerprint(trust))
        {
            _trustedFingerprint = trust;
        }
        else
        {
            _root = Keys.ReadPublic(trust);
            _trustedFingerprint = Keys.Fingerprint(_root);
        }

        _stateDirectory = stateDirectory;
        _time = time;
        _log = logger ?? NullLogger.Instance;
        if (_root is not null) LoadRevocations();
    }

    public string TrustedRoot => _trustedFingerprint!;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, PublicKey> _publishingKeys = new();

    /// <summary>The certified publishing keys whose signatures were accepted in this run: they also sign the publication log's checkpoint.</summary>
    public IReadOnlyCollection<PublicKey> PublishingKeys => [.. _publishingKeys.Values];

    public long MaxEnvelopeBytes { get; init; } = 64 << 10;

    /// <summary>$CAIRN_STATE, else $XDG_STATE_HOME/cairn, else ~/.local/state/cairn.</summary>
    public static string DefaultStateDirectory =>
        Environment.GetEnvironmentVariable("CAIRN_STATE") is { Length: > 0 } s ? s
        : Path.Combine(Environment.GetEnvironmentVariable("XDG_STATE_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state"), "cairn");

    private static CairnException Bad(string where, string why) =>
        new(ErrorCode.TrustSignatureInvalid, $"'{where}': {why}", "the server's copy is forged or damaged; do not use this server until the publisher has checked it");

    public SignedManifest CheckEnvelope(byte[] envelope, string repository, long? revision, string where)
    {
        if (envelope.LongLength > MaxEnvelopeBytes)
        {
            throw new CairnException(ErrorCode.TrustManifestTooLarge, $"'{where}' is {envelope.LongLength} bytes, above the limit of {MaxEnvelopeBytes}", "the server sends forged data");
        }

        SignatureFile? file;
        try
        {
            file = JsonSerializer.Deserialize(envelope, TrustJson.Default.SignatureFile);
        }
        catch (JsonException e)
        {
            throw Bad(where, $"not a signature file ({e.Message})");
        }

        if (file?.Statement is null || file.Certificate is null) throw Bad(where, "not a signature file");
        var root = TrustedKey(file.RootPublicKey, where);
        if (_repository is null) LoadState(repository);

        // 1. The publishing key: certified by the trusted root, not revoked, within its validity.
        if (file.Certificate.PayloadType != Envelope.CertificateType || !file.Certificate.IsSignedBy(root))
        {
            throw new CairnException(ErrorCode.TrustKeyNotTrusted, $"'{where}' is signed by a key the trusted root {TrustedRoot} did not certify",
                "the server's data is forged, or the repository changed roots: check --trust / CAIRN_TRUST with the publisher");
        }

        var cert = file.Certificate.Read(TrustJson.Default.PublishingCertificate, "certificate");
        if (RevokedKeys().FirstOrDefault(r => r.KeyId == cert.KeyId) is { } revoked)
        {
            throw new CairnException(ErrorCode.TrustKeyRevoked, $"'{where}' is signed by publishing key {cert.KeyId} ('{cert.Name}'), revoked at {revoked.At:u}{(revoked.Reason is null ? "" : $" ({revoked.Reason})")}",
                "the key may be stolen: nothing it signed is used; the publisher must re-sign with a new key");
        }

        var key = Keys.DecodePublic(cert.PublicKey);
        if (key is null || Keys.Fingerprint(key) != cert.KeyId) throw Bad(where, "the certificate's key does not match its id");
        if (cert.Repositories.Count > 0 && !cert.Repositories.Contains(repository))
        {
            throw new CairnException(ErrorCode.TrustWrongRepository, $"'{where}' is signed by a key certified for {string.Join(", ", cert.Repositories)}, not for '{repository}'",
                "the server mixes repositories: check the server list");
        }

        // 2. The statement.
        if (file.Statement.PayloadType != Envelope.ManifestType || !file.Statement.IsSignedBy(key))
        {
            throw Bad(where, "bad signature");
        }

        var s = file.Statement.Read(TrustJson.Default.ManifestStatement, "manifest signature");
        _publishingKeys[cert.KeyId] = key;
        if (s.Repository != repository)
        {
            throw new CairnException(ErrorCode.TrustWrongRepository, $"'{where}' is the signed manifest of repository '{s.Repository}', not '{repository}'",
                "the server mixes repositories: check the server list");
        }

        if (revision is { } r && s.Revision != r) throw Bad(where, $"signs revision {s.Revision}, not {r}");

        var now = _time.GetUtcNow();
        if (revision is null && now >= s.Expires)
        {
            throw new CairnException(ErrorCode.TrustManifestExpired, $"'{where}': the signed manifest of '{repository}' revision {s.Revision} expired at {s.Expires:u} (now {now:u})",
                "the server is stale or frozen (freeze attack): use another server, or ask the publisher to re-sign (cairn key resign); check this host's clock");
        }

        // The head must be fresh (freeze attack); an older revision asked for by number need only have been signed
        // while its key was valid.
        var at = revision is null ? now : s.Timestamp;
        if (at < cert.NotBefore || at >= cert.Expires)
        {
            throw new CairnException(ErrorCode.TrustCertificateExpired, $"'{where}' is signed by publishing key '{cert.Name}', certified from {cert.NotBefore:u} to {cert.Expires:u}, not at {at:u}",
                "the publisher must certify a new publishing key (cairn key certify) and re-sign; check this host's clock");
        }

        if (s.Length < 0) throw Bad(where, "negative length");
        return new SignedManifest(s.Repository, s.Revision, s.Timestamp, s.Expires, s.Length, s.Sha256);
    }

    private PublicKey TrustedKey(string? envelopeRoot, string where)
    {
        lock (_lock)
        {
            if (_root is not null) return _root;
            var key = Keys.DecodePublic(envelopeRoot);
            if (key is null || Keys.Fingerprint(key) != _trustedFingerprint)
            {
                throw new CairnException(ErrorCode.TrustKeyNotTrusted, $"'{where}' chains to root {(key is null ? "(none)" : Keys.Fingerprint(key))}, not to the trusted {_trustedFingerprint}",
                    "the server's data is forged, or --trust / CAIRN_TRUST names another repository's root");
            }

            _root = key;
            LoadRevocations();
            if (_pending is { } pending) UseRevocations(pending.List, pending.Where);
            return key;
        }
    }

    public Manifest CheckManifest(SignedManifest statement, byte[] manifestBytes, string where)
    {
        if (manifestBytes.LongLength != statement.Length || Envelope.Sha256Hex(manifestBytes) != statement.Sha256)
        {
            throw new CairnException(ErrorCode.TrustManifestMismatch, $"'{where}' is not the manifest that was signed ({manifestBytes.LongLength} bytes, signed {statement.Length})",
                "the server's copy is forged or damaged; use another server");
        }

        var m = CairnJson.Deserialize(manifestBytes, CoreJson.Default.Manifest, $"manifest '{where}'");
        if (m.Repository != statement.Repository || m.Revision != statement.Revision)
        {
            throw new CairnException(ErrorCode.TrustManifestMismatch, $"'{where}' says repository '{m.Repository}' revision {m.Revision}, signed as '{statement.Repository}' revision {statement.Revision}",
                "the publisher signed an inconsistent manifest");
        }

        return m;
    }

    public void AcceptHead(Manifest manifest, string where)
    {
        lock (_lock)
        {
            var state = LoadState(manifest.Repository);
            if (state is not null)
            {
                if (manifest.Revision < state.Revision)
                {
                    throw new CairnException(ErrorCode.TrustRollback,
                        $"'{where}' offers revision {manifest.Revision} of '{manifest.Repository}', older than revision {state.Revision} accepted at {state.Timestamp:u}",
                        "the server is stale or replays an old state (rollback attack): use another server");
                }

                if (manifest.Revision == state.Revision && manifest.Root != state.Root)
                {
                    // Two validly signed, different states under one revision number: the publishing key signed both
                    // (stolen, or a broken publisher). Keep the evidence.
                    var line = $"{_time.GetUtcNow():O} {manifest.Repository} revision {manifest.Revision}: accepted root {state.Root}, now {manifest.Root} from {where}";
                    _log.LogError("equivocation: {Line}", line);
                    Directory.CreateDirectory(_stateDirectory);
                    File.AppendAllText(Path.Combine(_stateDirectory, "equivocation.log"), line + "\n");
                    throw new CairnException(ErrorCode.TrustEquivocation,
                        $"'{where}' offers revision {manifest.Revision} of '{manifest.Repository}' with root {manifest.Root}, but root {state.Root} was accepted under that number",
                        $"the publishing key signed two different states (stolen key?): report it to the publisher; evidence in {Path.Combine(_stateDirectory, "equivocation.log")}");
                }

                if (manifest.Revision == state.Revision) return;
            }

            SaveState(new TrustState(1, manifest.Repository, TrustedRoot, manifest.Revision, manifest.Root, _time.GetUtcNow()));
        }
    }

    public void UseRevocations(byte[] list, string where)
    {
        lock (_lock)
        {
            if (_root is null)
            {
                // Trusted by fingerprint: the root's key arrives with the first signature file.
                _pending = (list, where);
                return;
            }

            var parsed = Keys.ReadRevocations(list, _root);
            if (parsed is null)
            {
                _log.LogWarning("ignoring '{Where}': not a revocation list signed by the trusted root", where);
                return;
            }

            if (_revocations is null || parsed.Serial > _revocations.Serial)
            {
                _revocations = parsed;
                // Remembered at once (it is root-signed): a mirror that later withholds it does not un-revoke a key.
                if (where != RevocationsPath)
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(RevocationsPath)!);
                    var tmp = $"{RevocationsPath}.{Environment.ProcessId}.tmp";
                    File.WriteAllBytes(tmp, list);
                    File.Move(tmp, RevocationsPath, overwrite: true);
                }
            }
        }
    }

    private (byte[] List, string Where)? _pending;

    private string RevocationsPath => Path.Combine(_stateDirectory, "trust", $"revocations@{TrustedRoot[Keys.FingerprintPrefix.Length..][..16]}.json");

    private void LoadRevocations()
    {
        if (File.Exists(RevocationsPath)) UseRevocations(File.ReadAllBytes(RevocationsPath), RevocationsPath);
    }

    private IReadOnlyList<RevokedKey> RevokedKeys()
    {
        lock (_lock) return _revocations?.Revoked ?? [];
    }

    private string StatePath(string repository)
    {
        var safe = string.Concat(repository.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
        return Path.Combine(_stateDirectory, "trust", $"{safe}@{TrustedRoot[Keys.FingerprintPrefix.Length..][..16]}.json");
    }

    private string? _repository;

    /// <summary>Loads the remembered head and revocations; a fingerprint-only trust can load them once the root is known.</summary>
    public TrustState? LoadState(string? repository)
    {
        lock (_lock)
        {
            repository ??= _repository;
            if (repository is null) return null;
            _repository = repository;
            var path = StatePath(repository);
            if (!File.Exists(path)) return null;
            var state = JsonSerializer.Deserialize(File.ReadAllBytes(path), TrustJson.Default.TrustState);
            return state;
        }
    }

    private void SaveState(TrustState state)
    {
        var path = StatePath(state.Repository);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var tmp = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllBytes(tmp, CairnJson.SerializeIndented(state, TrustJson.Default.TrustState));
        File.Move(tmp, path, overwrite: true);
    }
}
