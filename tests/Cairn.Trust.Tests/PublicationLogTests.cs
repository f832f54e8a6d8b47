using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Cairn.Core;
using Cairn.Core.Transparency;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Repository.Http;
using Cairn.Server.Tests.Infrastructure;
using Cairn.Trust.Transparency;
using NSec.Cryptography;

namespace Cairn.Trust.Tests;

/// <summary>
/// The publication log's attacks of docs/security.md, each against a real HTTP server serving a real repository
/// (or crafted bytes): every refusal below is one the client would not make without the log checks.
/// </summary>
public sealed class PublicationLogTests : IDisposable
{
    private readonly TrustWorld _w = new();

    public void Dispose() => _w.Dispose();

    private const string Origin = "trusted";

    private LogVerifier? _lastLog;

    /// <summary>A trusting client with the log checks on (state in the world's state directory unless given).</summary>
    private async Task<Manifest> ReadHeadAsync(string url, WitnessPolicy? policy = null, string? state = null)
    {
        var options = _w.Options(url);
        var verifier = (ManifestVerifier)options.Verifier!;
        _lastLog = new LogVerifier(state ?? _w.State, () => verifier.PublishingKeys, TimeProvider.System, policy);
        await using var repo = await HttpRepository.OpenAsync(options with { Log = _lastLog }, TimeProvider.System, null, default);
        return await repo.HeadAsync(default);
    }

    private async Task<CairnException> RefusedAsync(string url, ErrorCode expected, WitnessPolicy? policy = null)
    {
        var e = await Assert.ThrowsAsync<CairnException>(() => ReadHeadAsync(url, policy));
        Assert.True(e.Code == expected, $"expected {expected}, got {e.Code}: {e.Message}");
        return e;
    }

    private static Checkpoint CheckpointOf(string repo) =>
        Checkpoint.Parse(SignedNote.Parse(File.ReadAllBytes(Path.Combine(repo, LogFiles.Checkpoint)))!.Text)!;

    private static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(dir.Replace(from, to, StringComparison.Ordinal));
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            if (!file.Contains("/locks/", StringComparison.Ordinal)) File.Copy(file, file.Replace(from, to, StringComparison.Ordinal), overwrite: true);
        }
    }

    [Fact]
    public async Task EveryCommitIsLoggedAndAClientFollowsTheLogForward()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        // init and the publish: two entries, signed by the publishing key.
        Assert.Equal(2, CheckpointOf(repo).Size);
        await using var server = await CraftedServer.StartAsync(repo);
        Assert.Equal(2, (await ReadHeadAsync(server.Url)).Revision);
        Assert.True(File.Exists(_lastLog!.RememberedPath(Origin)));

        await _w.PublishAsync(repo, "data", "2.0", "revision three");
        await using (var writable = await DirectoryRepository.OpenAsync(repo, TimeProvider.System, null, DirectoryRepository.DefaultLockTimeout, default, TrustWorld.Signer(_w.PublishingKey)))
        {
            await writable.TagAsync("stable", 3, default);
        }

        Assert.Equal(4, CheckpointOf(repo).Size);
        Assert.Equal(4, (await ReadHeadAsync(server.Url)).Revision);
        Assert.Equal(new CatchUpCost(2, 4, _lastLog.LastCatchUp!.ProofHashes, _lastLog.LastCatchUp.Requests, _lastLog.LastCatchUp.HashesRead), _lastLog.LastCatchUp);
        Assert.InRange(_lastLog.LastCatchUp.ProofHashes, 1, 4);
        Assert.True(server.WasRequested(LogFiles.Checkpoint) && server.WasRequested("log/tile/0/000.p/4") && server.WasRequested("log/tile/entries/000.p/4"));
    }

    [Fact]
    public async Task HistoryRewrittenUnderAClientHoldingAnOlderCheckpointIsRefusedWithEvidence()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        await using var server = await CraftedServer.StartAsync(repo);
        Assert.Equal(2, (await ReadHeadAsync(server.Url)).Revision);

        // Whoever holds the publishing key (a compromised gateway) rebuilds the repository with another history
        // and a higher revision: every signature is valid and no revision number is reused.
        var forged = await _w.CreateRepositoryAsync("forged");
        await _w.PublishAsync(forged, "hello", "1.1", "rewritten");
        server.Root = forged;
        var e = await RefusedAsync(server.Url, ErrorCode.LogInconsistent);
        var evidence = Directory.GetFiles(Path.Combine(_w.State, "log", "evidence"));
        Assert.Single(evidence);
        Assert.Contains(evidence[0], e.Message, StringComparison.Ordinal);
        var text = File.ReadAllText(evidence[0]);
        Assert.Contains(File.ReadAllText(Path.Combine(forged, LogFiles.Checkpoint)), text, StringComparison.Ordinal);
        Assert.Contains(File.ReadAllText(_lastLog!.RememberedPath(Origin)), text, StringComparison.Ordinal);
        // The remembered checkpoint is still the good one.
        Assert.Equal(CheckpointOf(repo).RootBase64, Checkpoint.Parse(SignedNote.Parse(File.ReadAllBytes(_lastLog.RememberedPath(Origin)))!.Text)!.RootBase64);
    }

    [Fact]
    public async Task SplitViewBetweenTwoMirrorsIsRefused()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        var mirrorA = _w.Dir.Sub("mirror-a");
        var mirrorB = _w.Dir.Sub("mirror-b");
        CopyDirectory(repo, mirrorA);
        CopyDirectory(repo, mirrorB);
        // The publisher (or a thief of its key) shows each mirror another continuation of the same history.
        await _w.PublishAsync(mirrorA, "data", "1.0", "seen by mirror a");
        await _w.PublishAsync(mirrorB, "data", "1.0", "seen by mirror b");
        await _w.PublishAsync(mirrorB, "data", "1.1", "and more");
        await using var a = await CraftedServer.StartAsync(mirrorA);
        await using var b = await CraftedServer.StartAsync(mirrorB);
        Assert.Equal(3, (await ReadHeadAsync(a.Url)).Revision);
        // Revision 4 is newer than 3 (no rollback, no reused number): only the log shows the fork.
        await RefusedAsync(b.Url, ErrorCode.LogInconsistent);
    }

    [Fact]
    public async Task RevisionTheLogDoesNotContainIsRefused()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        var oldLog = _w.Dir.Sub("old-log");
        CopyDirectory(Path.Combine(repo, LogFiles.Folder), oldLog);
        await _w.PublishAsync(repo, "backdoor", "1.0", "unlogged");
        // The server serves the signed revision 3 but the log as it was before it.
        Directory.Delete(Path.Combine(repo, LogFiles.Folder), recursive: true);
        CopyDirectory(oldLog, Path.Combine(repo, LogFiles.Folder));
        await using var server = await CraftedServer.StartAsync(repo);
        var e = await RefusedAsync(server.Url, ErrorCode.LogRevisionNotIncluded);
        Assert.Contains("revision 3", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RevisionWithOtherContentThanItsLogEntryIsRefused()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        var other = await _w.CreateRepositoryAsync("other");
        // Same key, same name, same revision number 2, other content: the head is signed, but the log records another root.
        await using var server = await CraftedServer.StartAsync(repo);
        server.Serve("manifest.sig", File.ReadAllBytes(Path.Combine(other, "manifest.sig")));
        server.Serve("manifest.json", File.ReadAllBytes(Path.Combine(other, "manifest.json")));
        var e = await RefusedAsync(server.Url, ErrorCode.LogRevisionNotIncluded);
        Assert.Contains("records revision 2 with root", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("bit-flipped")]
    [InlineData("entries-bit-flipped")]
    public async Task DamagedTileIsRefused(string damage)
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        await using var server = await CraftedServer.StartAsync(repo);
        var tile = damage.StartsWith("entries", StringComparison.Ordinal) ? "log/tile/entries/000.p/2" : "log/tile/0/000.p/2";
        var bytes = File.ReadAllBytes(Path.Combine(repo, tile));
        if (damage == "truncated")
        {
            bytes = bytes[..^1];
        }
        else
        {
            bytes[^3] ^= 0x10;
        }

        server.Serve(tile, bytes);
        var e = await RefusedAsync(server.Url, ErrorCode.LogTileInvalid);
        Assert.Contains(damage == "truncated" ? "000.p/2" : "log/tile/", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckpointSignedByAnUnknownKeyIsRefused()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        await using var server = await CraftedServer.StartAsync(repo);
        var note = SignedNote.Parse(File.ReadAllBytes(Path.Combine(repo, LogFiles.Checkpoint)))!;
        using var stranger = Key.Create(SignatureAlgorithm.Ed25519);
        server.Serve(LogFiles.Checkpoint, new SignedNote(note.Text, [NoteKeys.Sign(stranger, Origin, note.Text)]).EncodeBytes());
        var e = await RefusedAsync(server.Url, ErrorCode.LogCheckpointInvalid);
        Assert.Contains("not signed by the repository's publishing key", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OldCheckpointReplayedIsRefused_Freeze()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        var old = File.ReadAllBytes(Path.Combine(repo, LogFiles.Checkpoint));
        await _w.PublishAsync(repo, "data", "2.0", "revision three");
        await using var server = await CraftedServer.StartAsync(repo);
        Assert.Equal(3, (await ReadHeadAsync(server.Url)).Revision);
        // A mirror freezes the log at its older, validly signed checkpoint.
        server.Serve(LogFiles.Checkpoint, old);
        var e = await RefusedAsync(server.Url, ErrorCode.LogRollback);
        Assert.Contains("2 entries", e.Message, StringComparison.Ordinal);
        // And dropping the log altogether is no way around it.
        server.Overrides[LogFiles.Checkpoint] = context =>
        {
            context.Response.StatusCode = 404;
            return Task.CompletedTask;
        };
        await RefusedAsync(server.Url, ErrorCode.LogMissing);
    }

    [Fact]
    public async Task TwoWitnessesCosignAndAClientPolicyRequiresThem()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        await using var server = await CraftedServer.StartAsync(repo);
        using var publishing = Keys.ReadPrivate(_w.PublishingKey);
        var witnesses = new List<Witness>();
        foreach (var name in new[] { "w1.example.org/a", "w2.example.org/b", "w3.example.org/c" })
        {
            var key = Key.Create(SignatureAlgorithm.Ed25519);
            witnesses.Add(new Witness(key, name, new LogVerifier(_w.Dir.Sub($"witness-{name[..2]}"), () => [publishing.Public], TimeProvider.System), TimeProvider.System));
        }

        var source = new HttpLogSource(server.Url);
        await using (var writable = await DirectoryRepository.OpenAsync(repo, TimeProvider.System, null, DirectoryRepository.DefaultLockTimeout, default))
        {
            foreach (var witness in witnesses.Take(2))
            {
                var (checkpoint, cosignature) = await witness.CosignAsync(source, Origin, default);
                Assert.True(await writable.AttachCosignatureAsync(checkpoint.Text, cosignature, default));
            }
        }

        var policyFile = _w.Dir.Sub("policy");
        File.WriteAllText(policyFile, $"# two of three\n{string.Join("\n", witnesses.Select(w => $"witness {w.VerifierKey}"))}\nquorum 2\n");
        Assert.Equal(2, (await ReadHeadAsync(server.Url, WitnessPolicy.Load(policyFile))).Revision);

        File.WriteAllText(policyFile, $"{string.Join("\n", witnesses.Select(w => $"witness {w.VerifierKey}"))}\nquorum 3\n");
        var e = await RefusedAsync(server.Url, ErrorCode.LogWitnessPolicy, WitnessPolicy.Load(policyFile));
        Assert.Contains("2 of the policy's witnesses", e.Message, StringComparison.Ordinal);

        // A witness that cosigned this history refuses a rewritten one.
        var forged = await _w.CreateRepositoryAsync("forged");
        await _w.PublishAsync(forged, "hello", "1.1", "rewritten");
        server.Root = forged;
        var refused = await Assert.ThrowsAsync<CairnException>(() => witnesses[0].CosignAsync(source, Origin, default));
        Assert.Equal(ErrorCode.LogWitnessRefused, refused.Code);
        Assert.Contains("CAIRN-E1301", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CairnServeNginxAndReplicateCarryTheLog()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        await _w.PublishAsync(repo, "data", "2.0", "revision three");
        var mirror = _w.Dir.Sub("mirror");
        var replicated = await Exec.CairnAsync(_w.Env, "replicate", repo, mirror);
        Assert.True(replicated.ExitCode == 0, replicated.ToString());
        Assert.Equal(File.ReadAllBytes(Path.Combine(repo, LogFiles.Checkpoint)), File.ReadAllBytes(Path.Combine(mirror, LogFiles.Checkpoint)));

        await using (var serve = await CairnServe.StartAsync(mirror))
        {
            Assert.Equal(3, (await ReadHeadAsync(serve.Url)).Revision);
            using var http = new HttpClient();
            using var checkpoint = await http.GetAsync(new Uri($"{serve.Url}/{LogFiles.Checkpoint}"));
            Assert.Equal("public, max-age=60", checkpoint.Headers.CacheControl!.ToString());
            using var tile = await http.GetAsync(new Uri($"{serve.Url}/log/tile/0/000.p/3"));
            Assert.Equal(3 * 32, (await tile.Content.ReadAsByteArrayAsync()).Length);
            Assert.Contains("immutable", tile.Headers.CacheControl!.ToString(), StringComparison.Ordinal);
            // Only tile paths of the C2SP layout are served below log/tile/.
            using var outside = await http.GetAsync(new Uri($"{serve.Url}/log/tile/0/%2E%2E%2F%2E%2E%2Fcairn.json"));
            Assert.Equal(System.Net.HttpStatusCode.NotFound, outside.StatusCode);
        }

        // A second publish reaches the mirror by replicate again: the client follows it (consistency from 3 to 4).
        await _w.PublishAsync(repo, "data", "3.0", "revision four");
        Assert.Equal(0, (await Exec.CairnAsync(_w.Env, "replicate", repo, mirror)).ExitCode);
        await using var nginx = await Nginx.StartAsync(mirror, _w.Dir);
        Assert.Equal(4, (await ReadHeadAsync(nginx.Url)).Revision);
        Assert.Equal(3, _lastLog!.LastCatchUp!.FromSize);
    }

    [Fact]
    public async Task SignedNoteVectorFromC2spVerifies()
    {
        // c2sp.org/signed-note, "Example": the verifier key and the note it verifies.
        var vkey = NoteKeys.ParseVerifierKey("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k");
        Assert.NotNull(vkey);
        Assert.Equal(NoteKeys.Ed25519Type, vkey.Value.Type);
        var note = SignedNote.Parse(Encoding.UTF8.GetBytes(
            "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"));
        Assert.NotNull(note);
        Assert.Equal(0x530d903au, note.Signatures[0].KeyId);
        Assert.True(NoteKeys.IsSignedBy(note, "example.com/foo", vkey.Value.Key));
        Assert.False(NoteKeys.IsSignedBy(note with { Text = "This is an example message!\n" }, "example.com/foo", vkey.Value.Key));
        // A key id off by one is not this key's.
        Assert.Null(NoteKeys.ParseVerifierKey("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"));
        await Task.CompletedTask;
    }

    [Fact]
    public void CosignatureIsTimestampedAndBoundToTheCheckpoint()
    {
        using var key = Key.Create(SignatureAlgorithm.Ed25519);
        var text = "example.com/log\n5\n" + Convert.ToBase64String(new byte[32]) + "\n";
        var at = DateTimeOffset.FromUnixTimeSeconds(1679315147);
        var line = NoteKeys.Cosign(key, "witness.example.com/w1", text, at);
        Assert.Equal(8 + 64, line.Signature.Length);
        var note = new SignedNote(text, [line]);
        Assert.Equal(at, NoteKeys.CosignedAt(SignedNote.Parse(note.EncodeBytes())!, "witness.example.com/w1", key.PublicKey));
        Assert.Null(NoteKeys.CosignedAt(note with { Text = text.Replace("\n5\n", "\n6\n", StringComparison.Ordinal) }, "witness.example.com/w1", key.PublicKey));
        // The signed message is the C2SP one: header, time line, note text.
        Assert.Equal($"cosignature/v1\ntime 1679315147\n{text}", Encoding.UTF8.GetString(NoteKeys.CosignedMessage(text, 1679315147)));
    }

    [Fact]
    public async Task CliProvesInclusionThatAnIndependentImplementationChecks()
    {
        var repo = await _w.CreateRepositoryAsync("repo");
        await _w.PublishAsync(repo, "data", "2.0", "revision three");
        var verify = await Exec.CairnAsync(_w.Env, "--repo", repo, "log", "verify", "--log-key", _w.PublishingKey + ".pub");
        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.Contains("3 entries verified", verify.Stdout, StringComparison.Ordinal);
        var show = await Exec.CairnAsync(_w.Env, "--repo", repo, "log", "show", "--from", "1");
        Assert.True(show.ExitCode == 0, show.ToString());
        Assert.Contains("publish", show.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(" init ", show.Stdout, StringComparison.Ordinal);

        var prove = await Exec.CairnAsync(_w.Env, "--repo", repo, "--json", "log", "prove", "2");
        Assert.True(prove.ExitCode == 0, prove.ToString());
        var proofFile = _w.Dir.Sub("proof.json");
        File.WriteAllText(proofFile, prove.Stdout);
        using (var doc = JsonDocument.Parse(prove.Stdout))
        {
            Assert.Equal(1, doc.RootElement.GetProperty("index").GetInt64());
        }

        // Python's hashlib, following docs/format/transparency-log.md §7 (not Cairn's code), accepts the proof...
        Assert.Equal("ok", await CheckWithPythonAsync(proofFile));
        // ...and rejects it once the entry is changed.
        File.WriteAllText(proofFile, System.Text.RegularExpressions.Regex.Replace(prove.Stdout, "\"entry\":\\s*\"", m => m.Value + "AAAA"));
        Assert.Equal("bad", await CheckWithPythonAsync(proofFile));

        // A damaged tile makes 'cairn log verify' fail with the tile's code.
        var tile = Path.Combine(repo, "log/tile/0/000.p/3");
        var bytes = File.ReadAllBytes(tile);
        bytes[0] ^= 1;
        File.WriteAllBytes(tile, bytes);
        var damaged = await Exec.CairnAsync(_w.Env, "--repo", repo, "log", "verify");
        Assert.True(damaged.ExitCode == 4, damaged.ToString());
        Assert.Contains("CAIRN-E1304", damaged.Stderr, StringComparison.Ordinal);
    }

    /// <summary>The third-party check of docs/format/transparency-log.md §7, in Python.</summary>
    private static async Task<string> CheckWithPythonAsync(string proofFile)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "check_inclusion.py");
        var psi = new ProcessStartInfo("python3", [script, proofFile]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(error.Length == 0, error);
        return output.Trim();
    }

    /// <summary>A log read over plain HTTP (what a witness reads).</summary>
    private sealed class HttpLogSource(string url) : Cairn.Repository.Transparency.ILogSource
    {
        private static readonly HttpClient Client = new();

        public string Where(string path) => $"{url}/{path}";

        public async Task<byte[]?> ReadAsync(string path, long maxBytes, CancellationToken ct)
        {
            using var response = await Client.GetAsync(new Uri($"{url}/{path}"), ct);
            if (response.StatusCode == System.Net.HttpStatusCode.NotFound) return null;
            response.EnsureSuccessStatusCode();
            return await response.Content.ReadAsByteArrayAsync(ct);
        }
    }
}
