using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Cairn.Build.Coordinated;
using Cairn.Build.Recipes;
using Cairn.Core;
using Cairn.Sandbox;
using Cairn.Trust.Provenance;

namespace Cairn.Build;

/// <summary>A build's attestations (docs/format/provenance.md): what went in, who built it, which tests passed.</summary>
public sealed partial class StackBuilder
{
    public const string AttestationsFileName = "attestations" + AttestationBundle.FileSuffix;

    /// <summary>Beside the build log: logs/PLATFORM/NAME/VERSION/attestations.intoto.jsonl.</summary>
    public static string AttestationsPathInTree(string platform, string name, string version) => $"{LogsDirectory}/{platform}/{name}/{version}/{AttestationsFileName}";

    public static string CairnVersion { get; } =
        typeof(StackBuilder).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>The signing step handed to the publish target: it runs once the product's root digest is known.</summary>
    private Func<Digest, byte[]>? Attestation(Stack stack, Recipe recipe, Decision decision, string logFile, IReadOnlyList<string> reports, DateTimeOffset startedAt)
    {
        if (stack.Options.BuilderKey is not { } key) return null;
        var cases = JunitCases.Outcome(recipe.Id, reports, checkPassed: true, null).Tests ?? [];
        var check = recipe.Check.ReadText(recipe);
        var facts = new BuildFacts
        {
            Platform = stack.Platform, Name = recipe.Name, Version = recipe.Version,
            RecipePath = Path.GetRelativePath(stack.Options.RecipesDirectory, recipe.Directory).Replace(Path.DirectorySeparatorChar, '/'),
            RecipeDigest = RecipeFolderDigest(recipe),
            DeploymentRoot = stack.Options.DeploymentRoot, DeploymentSite = stack.Options.DeploymentSite,
            SandboxContract = SandboxContract.Version,
            SeccompFilter = Digest.Of(SeccompFilter.Build(SeccompFilter.CurrentArchitecture())),
            BuildKey = decision.Key.ToString(),
            Sources = [.. recipe.Sources.Select(s => new SourceInput(s.NameInSandbox, s.Url?.ToString(), s.Sha256))],
            Dependencies = [.. decision.DependencyProducts.Values.Select(p => new ProductInput(p.PathInRepository, p.Root))],
            Environment = decision.Environment is { } env ? new ProductInput(env.PathInRepository, env.Root) : null,
            Site = stack.Options.Publisher ?? stack.Options.BuildSite,
            CairnVersion = CairnVersion,
            InvocationId = Guid.NewGuid().ToString(),
            StartedOn = startedAt,
            FinishedOn = time.GetUtcNow(),
            LogPath = LogPathInTree(stack.Platform, recipe.Name, recipe.Version),
            LogSha256 = Digest.Of(File.ReadAllBytes(logFile)),
            CheckScript = recipe.Check.FileName ?? "inline",
            CheckScriptSha256 = Digest.Of(Encoding.UTF8.GetBytes(check)),
            PassedTests = [.. cases.Where(c => c.Outcome == Cairn.Coordination.TestOutcome.Passed).Select(c => c.Name)],
            FailedTests = [.. cases.Where(c => c.Outcome == Cairn.Coordination.TestOutcome.Failed).Select(c => c.Name)],
        };
        return root => AttestationBundle.Write(Attester.Sign(facts, root, key));
    }

    /// <summary>sha256 of the recipe folder's listing: "MODE SHA256 PATH\n" per file, sorted by path (docs/format/provenance.md §4).</summary>
    public static Digest RecipeFolderDigest(Recipe recipe)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        var listing = new StringBuilder();
        foreach (var (relative, full) in BuildKey.RecipeFiles(recipe).OrderBy(f => f.Relative, StringComparer.Ordinal))
        {
            var executable = (File.GetUnixFileMode(full) & UnixFileMode.UserExecute) != 0;
            listing.Append(executable ? "755" : "644").Append(' ').Append(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(full)))).Append(' ').Append(relative).Append('\n');
        }

        return Digest.Of(Encoding.UTF8.GetBytes(listing.ToString()));
    }
}
