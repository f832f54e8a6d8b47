using System.Net.Http.Headers;
using Cairn.Server.Tests.Infrastructure;

namespace Cairn.Trust.Tests;

/// <summary>The trust layer through the real CLI: cairn key, publish with --signing-key, cairn serve, a client with --trust, faketime.</summary>
public sealed class CliTrustTests : IDisposable
{
    private readonly TempDir _dir = new("cairn-trust-cli");

    public void Dispose() => _dir.Dispose();

    private Dictionary<string, string> Env => new() { ["CAIRN_STATE"] = _dir.Sub("state"), ["CAIRN_CACHE"] = _dir.Sub("cache") };

    /// <summary>Root and certified publishing key via cairn key, and a repository published with CAIRN_SIGNING_KEY.</summary>
    private async Task<string> SignedRepositoryAsync()
    {
        await Exec.CairnOkAsync(Env, "key", "generate", "--root", "-o", _dir.Sub("root.key"));
        await Exec.CairnOkAsync(Env, "key", "generate", "--publishing", "-o", _dir.Sub("pub.key"));
        await Exec.CairnOkAsync(Env, "key", "certify", "--root", _dir.Sub("root.key"), _dir.Sub("pub.key"), "--days", "90");
        var repo = _dir.Sub("repo");
        var env = new Dictionary<string, string>(Env) { ["CAIRN_SIGNING_KEY"] = _dir.Sub("pub.key") };
        await Exec.CairnOkAsync(env, "init", repo);
        var src = _dir.Sub("src");
        Directory.CreateDirectory(src);
        File.WriteAllText(Path.Combine(src, "README"), "signed\n");
        await Exec.CairnOkAsync(env, "--repo", repo, "publish", "hello/1.0", src);
        return repo;
    }

    [Fact]
    public async Task KeyFilesArePrivateAndAGroupReadableKeyIsRefused()
    {
        await Exec.CairnOkAsync(Env, "key", "generate", "--root", "-o", _dir.Sub("root.key"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_dir.Sub("root.key")));
        File.SetUnixFileMode(_dir.Sub("root.key"), (UnixFileMode)0x1A4); // 0644
        await Exec.CairnOkAsync(Env, "key", "generate", "--publishing", "-o", _dir.Sub("pub.key"));
        var r = await Exec.CairnAsync(Env, "key", "certify", "--root", _dir.Sub("root.key"), _dir.Sub("pub.key"));
        Assert.True(r.ExitCode == 2 && r.Stderr.Contains("CAIRN-E1010", StringComparison.Ordinal), r.ToString());
    }

    [Fact]
    public async Task UnsignedLocalUseNeedsNoSetup()
    {
        var repo = _dir.Sub("plain");
        await Exec.CairnOkAsync(Env, "init", repo);
        var src = _dir.Sub("src");
        Directory.CreateDirectory(src);
        File.WriteAllText(Path.Combine(src, "README"), "plain\n");
        await Exec.CairnOkAsync(Env, "--repo", repo, "publish", "hello/1.0", src);
        Assert.False(File.Exists(Path.Combine(repo, "manifest.sig")));
        var list = await Exec.CairnOkAsync(Env, "--repo", repo, "list");
        Assert.Contains("hello/1.0", list.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CairnServeServesSignaturesWithTheManifestLifetimeAndClientsVerifyThem()
    {
        var repo = await SignedRepositoryAsync();
        await using var serve = await CairnServe.StartAsync(repo, "--manifest-max-age", "42");
        using var http = new HttpClient();
        foreach (var path in new[] { "manifest.sig", "revisions/0000000000000002.sig" })
        {
            using var response = await http.GetAsync($"{serve.Url}/{path}");
            Assert.True(response.IsSuccessStatusCode, path);
            Assert.Equal(CacheControlHeaderValue.Parse("public, max-age=42"), response.Headers.CacheControl);
        }

        var fingerprint = (await Exec.CairnOkAsync(Env, "key", "show", _dir.Sub("root.key.pub"))).Stdout.Split(' ')[2].Trim();
        var list = await Exec.CairnOkAsync(Env, "--repo", serve.Url, "--trust", fingerprint, "list");
        Assert.Contains("hello/1.0", list.Stdout, StringComparison.Ordinal);
        var history = await Exec.CairnOkAsync(new Dictionary<string, string>(Env) { ["CAIRN_TRUST"] = _dir.Sub("root.key.pub") }, "--repo", serve.Url, "history");
        Assert.Contains("publish", history.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnderFaketimeAnExpiredManifestIsRefused_AndResignRenewsIt()
    {
        Assert.True(File.Exists("/usr/bin/faketime"), "faketime is not installed: run scripts/install-deps.sh (Debian package faketime)");
        var repo = await SignedRepositoryAsync();
        await using var serve = await CairnServe.StartAsync(repo);
        string[] list = ["--repo", serve.Url, "--trust", _dir.Sub("root.key.pub"), "list"];
        await Exec.CairnOkAsync(Env, list);
        // Ten days on, the 7-day signature has expired: a frozen server cannot keep clients on its old state.
        var later = await Exec.RunAsync(["/usr/bin/faketime", "+10 days", .. CairnUnderTest.Command, .. list], Env);
        Assert.True(later.ExitCode == 4 && later.Stderr.Contains("CAIRN-E1002", StringComparison.Ordinal), later.ToString());
        // The publisher re-signs the same revision (as cron would, here also ten days on); clients accept it again.
        var resign = await Exec.RunAsync(["/usr/bin/faketime", "+10 days", .. CairnUnderTest.Command, "--repo", repo, "--signing-key", _dir.Sub("pub.key"), "key", "resign"], Env);
        Assert.True(resign.ExitCode == 0, resign.ToString());
        var renewed = await Exec.RunAsync(["/usr/bin/faketime", "+10 days", .. CairnUnderTest.Command, .. list], Env);
        Assert.True(renewed.ExitCode == 0, renewed.ToString());
    }
}
