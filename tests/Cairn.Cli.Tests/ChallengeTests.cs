using System.Text.Json;
using System.Text.RegularExpressions;
using Cairn.Cli.Tests.Infrastructure;

namespace Cairn.Cli.Tests;

/// <summary>
/// cairn challenge end to end: a small stack built with real bubblewrap by 'cairn build', served by 'cairn serve',
/// then rebuilt and compared through the http(s) client (and, for a changed recipe, from the directory).
/// </summary>
public sealed class ChallengeTests : CliTest
{
    private const string Base = "name: base\nversion: \"1.0\"\nbuild: |\n  mkdir -p \"$SOFT_DIR/share\"\n  echo base > \"$SOFT_DIR/share/base.txt\"\ncheck: |\n  test -f \"$SOFT_DIR/share/base.txt\"\n";

    // Depends on base, so the challenge has to copy base's published product into its scratch repository.
    private const string Good = "name: good\nversion: \"1.0\"\ndependencies: [base]\nbuild: |\n  mkdir -p \"$SOFT_DIR/bin\" \"$SOFT_DIR/share\"\n  printf '#!/bin/sh\\necho good\\n' > \"$SOFT_DIR/bin/good\"\n  chmod +x \"$SOFT_DIR/bin/good\"\n  cat \"$BASE_DIR/share/base.txt\" > \"$SOFT_DIR/share/from-base.txt\"\ncheck: |\n  \"$SOFT_DIR/bin/good\" | grep -x good\n";

    // Irreproducible on purpose: random bytes in a text file, next to a file that does not change.
    private const string Bad = "name: bad\nversion: \"1.0\"\nbuild: |\n  mkdir -p \"$SOFT_DIR/share\"\n  echo stable > \"$SOFT_DIR/share/stable.txt\"\n  printf 'line one\\nbuilt %s\\nline three\\n' \"$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')\" > \"$SOFT_DIR/share/stamp.txt\"\ncheck: |\n  test -s \"$SOFT_DIR/share/stamp.txt\"\n";

    [Fact]
    public async Task Challenge_says_reproducible_or_names_the_differing_files_and_refuses_changed_recipes()
    {
        var root = Directory.CreateTempSubdirectory("cairn-challenge-test-").FullName;
        try
        {
            var recipes = Path.Combine(root, "recipes");
            foreach (var (name, yaml) in new[] { ("base", Base), ("good", Good), ("bad", Bad) })
            {
                Directory.CreateDirectory(Path.Combine(recipes, name));
                File.WriteAllText(Path.Combine(recipes, name, "recipe.yml"), yaml);
            }

            var repo = Path.Combine(root, "repo");
            var r = await Exec.CairnAsync(["init", repo], Ct);
            Assert.True(r.ExitCode == 0, r.ToString());
            string[] layout = ["--deployment-root", "/cvmfs/cairn.test", "--deployment-site", "test"];
            r = await Exec.CairnAsync(["--repo", repo, "build", recipes, .. layout], Ct);
            Assert.True(r.ExitCode == 0, r.ToString());

            using var server = Exec.Start(Exec.CairnCommand("--repo", repo, "serve", "--listen", "http://127.0.0.1:0"));
            try
            {
                var line = await server.StandardOutput.ReadLineAsync(Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(60), Ct);
                var url = Regex.Match(line ?? "", @"http://127\.0\.0\.1:\d+").Value;
                Assert.False(string.IsNullOrEmpty(url), line);
                var env = new Dictionary<string, string> { ["CAIRN_CACHE"] = Path.Combine(root, "client-cache") };

                r = await Exec.CairnAsync(["--repo", url, "--json", "challenge", "good/1.0", recipes, .. layout], Ct, env);
                Assert.True(r.ExitCode == 0, r.ToString());
                using (var json = JsonDocument.Parse(r.Stdout))
                {
                    Assert.True(json.RootElement.GetProperty("reproducible").GetBoolean(), r.Stdout);
                    Assert.Equal(json.RootElement.GetProperty("published").GetString(), json.RootElement.GetProperty("rebuilt").GetString());
                    Assert.Equal(["base/1.0"], json.RootElement.GetProperty("copied").EnumerateArray().Select(e => e.GetString()));
                    Assert.Empty(json.RootElement.GetProperty("differences").EnumerateArray());
                }

                r = await Exec.CairnAsync(["--repo", url, "challenge", "bad/1.0", recipes, .. layout], Ct, env);
                Assert.True(r.ExitCode == 8, r.ToString());
                Assert.Contains("bad/1.0: NOT reproducible: 1 file(s) differ", r.Stdout, StringComparison.Ordinal);
                Assert.Matches(@"content\s+share/stamp\.txt\s+\d+ B", r.Stdout);
                Assert.DoesNotContain("stable.txt", r.Stdout, StringComparison.Ordinal);
                Assert.Contains("--- a/share/stamp.txt\n+++ b/share/stamp.txt\n@@ -1,3 +1,3 @@\n line one\n-built ", r.Stdout, StringComparison.Ordinal);
                Assert.Matches(@"\n\+built [0-9a-f]+\n line three\n", r.Stdout);
            }
            finally
            {
                server.Kill(entireProcessTree: true);
                await server.WaitForExitAsync(CancellationToken.None);
            }

            // The recipe changed after good/1.0 was published: its key no longer matches, and the challenge says so.
            File.AppendAllText(Path.Combine(recipes, "good", "recipe.yml"), "description: changed after publishing\n");
            r = await Exec.CairnAsync(["--repo", repo, "challenge", "good/1.0", recipes, .. layout], Ct);
            CairnAssert.Fails(r, 3, "CAIRN-E0935");
            Assert.Contains("the recipes changed since good/1.0 was published", r.Stderr, StringComparison.Ordinal);

            // A product published by hand has no build to repeat; a recipes directory without the product's recipe cannot rebuild it.
            var manual = Directory.CreateDirectory(Path.Combine(root, "manual")).FullName;
            File.WriteAllText(Path.Combine(manual, "README"), "published by hand\n");
            r = await Exec.CairnAsync(["--repo", repo, "publish", "manual/1.0", manual], Ct);
            Assert.True(r.ExitCode == 0, r.ToString());
            r = await Exec.CairnAsync(["--repo", repo, "challenge", "manual/1.0", recipes], Ct);
            CairnAssert.Fails(r, 3, "CAIRN-E0936");
            var others = Path.Combine(root, "others");
            Directory.CreateDirectory(Path.Combine(others, "bad"));
            File.WriteAllText(Path.Combine(others, "bad", "recipe.yml"), Bad);
            r = await Exec.CairnAsync(["--repo", repo, "challenge", "base/1.0", others, .. layout], Ct);
            CairnAssert.Fails(r, 2, "CAIRN-E0937");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
