using System.Text;
using Cairn.Build.CodeRade;
using Cairn.Build.Recipes;
using Cairn.Core;

namespace Cairn.Build;

/// <summary>
/// Turns a failed phase's log into a more useful reason where the cause is recognisable: a check that wrote into
/// the read-only prefix (a CODE-RADE check-build.sh running make install), or a script that tried to download a
/// source (builds have no network). docs/errors.md lists both.
/// </summary>
public static class BuildFailureHints
{
    /// <summary>How much of the end of the phase's log is looked at.</summary>
    private const int TailBytes = 256 * 1024;

    /// <summary>The code and reason for a failed phase; <paramref name="failure"/> is what the sandbox said (e.g. "exit 2").</summary>
    /// <param name="phaseLog">The phase's part of the build log.</param>
    public static (ErrorCode Code, string Reason) Explain(Recipe recipe, BuildPhase phase, string failure, string phaseLog, string prefix)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(phaseLog);
        var what = phase.ToString().ToLowerInvariant();
        var code = phase == BuildPhase.Check ? ErrorCode.CheckFailed : ErrorCode.BuildFailed;
        var reason = $"{what}: {failure}";
        var lines = phaseLog.Split('\n');
        if (lines.FirstOrDefault(l => l.Contains(CodeRadeEnvironment.DownloadRefusedMarker, StringComparison.Ordinal)) is { } refused)
        {
            var detail = refused[(refused.IndexOf(CodeRadeEnvironment.DownloadRefusedMarker, StringComparison.Ordinal) + CodeRadeEnvironment.DownloadRefusedMarker.Length)..].Trim();
            var target = detail.Contains("-> ", StringComparison.Ordinal) ? detail[(detail.LastIndexOf("-> ", StringComparison.Ordinal) + 3)..].Trim() : detail;
            var file = target.Contains('/', StringComparison.Ordinal) ? target[(target.LastIndexOf('/') + 1)..] : target;
            return (ErrorCode.SourceDownloadRefused,
                $"{reason}; the script tried to download {file} ({detail}), but builds have no network: add it to {recipe.File} as a source " +
                $"(sources: [{{path: FILE, as: {file}, sha256: SHA256}}]) and put FILE in the recipes' sources/ or a --sources DIR");
        }

        if (phase == BuildPhase.Check && recipe.Layout == RecipeLayout.Cairn &&
            lines.Any(l => l.Contains("Read-only file system", StringComparison.Ordinal) && l.Contains(prefix, StringComparison.Ordinal)))
        {
            return (code,
                $"{reason}; hint: the check tried to write into the product's prefix {prefix}, which is read-only during the check. " +
                $"A CODE-RADE check-build.sh that runs 'make install' needs 'layout: {RecipeParser.CodeRadeLayout}' in recipe.yml " +
                "(docs/recipes.md, \"Coming from CODE-RADE\"); otherwise install in the build script and only test in the check");
        }

        return (code, reason);
    }

    /// <summary>The log from <paramref name="offset"/> on (at most its last 256 KiB).</summary>
    public static string ReadFrom(string logFile, long offset)
    {
        using var stream = new FileStream(logFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var start = Math.Max(offset, stream.Length - TailBytes);
        stream.Seek(start, SeekOrigin.Begin);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
