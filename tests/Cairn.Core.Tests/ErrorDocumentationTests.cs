using System.Text.RegularExpressions;
using Cairn.Core;

namespace Cairn.Core.Tests;

/// <summary>docs/errors.md is the one place error codes are explained; it must match the code exactly.</summary>
public partial class ErrorDocumentationTests
{
    [GeneratedRegex(@"^\| (CAIRN-E\d{4}) \| (\w+) \|", RegexOptions.Multiline)]
    private static partial Regex Row();

    private static Dictionary<string, string> Documented()
    {
        var text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "docs", "errors.md"));
        return Row().Matches(text).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
    }

    [Fact]
    public void EveryCodeIsDocumentedUnderItsName()
    {
        var documented = Documented();
        foreach (var code in Enum.GetValues<ErrorCode>())
        {
            Assert.True(documented.TryGetValue(ErrorCodes.Name(code), out var name), $"{ErrorCodes.Name(code)} ({code}) is not in docs/errors.md");
            Assert.Equal(code.ToString(), name);
        }
    }

    [Fact]
    public void EveryDocumentedCodeExists()
    {
        var names = Enum.GetValues<ErrorCode>().Select(ErrorCodes.Name).ToHashSet();
        Assert.All(Documented().Keys, k => Assert.Contains(k, names));
    }

    [Fact]
    public void CodeNumbersAreStable()
    {
        // Persisted in scripts and docs: a renumbering must fail here, not in users' pipelines.
        Assert.Equal(201, (int)ErrorCode.ProductExists);
        Assert.Equal(211, (int)ErrorCode.ObjectCorrupt);
        Assert.Equal(312, (int)ErrorCode.ArchiveCompressionRatio);
        Assert.Equal(401, (int)ErrorCode.DurabilityFailure);
        Assert.Equal(500, (int)ErrorCode.SandboxUnavailable);
        Assert.Equal(604, (int)ErrorCode.RecipeCycle);
        Assert.Equal(905, (int)ErrorCode.ClaimLost);
        Assert.Equal(1003, (int)ErrorCode.TrustRollback);
        Assert.Equal(1011, (int)ErrorCode.TrustManifestMismatch);
    }

    [Theory]
    [InlineData(ErrorCode.Usage, 2)]
    [InlineData(ErrorCode.ProductExists, 3)]
    [InlineData(ErrorCode.ObjectCorrupt, 4)]
    [InlineData(ErrorCode.ArchivePathTraversal, 5)]
    [InlineData(ErrorCode.NoSpace, 6)]
    [InlineData(ErrorCode.SandboxUnavailable, 2)]
    [InlineData(ErrorCode.RecipeCycle, 5)]
    [InlineData(ErrorCode.TokenOutOfScope, 2)]
    [InlineData(ErrorCode.ClaimLost, 3)]
    [InlineData(ErrorCode.CoordinationUnavailable, 6)]
    [InlineData(ErrorCode.TrustSignatureInvalid, 4)]
    [InlineData(ErrorCode.TrustKeyRevoked, 4)]
    [InlineData(ErrorCode.TrustKeyInvalid, 2)]
    public void ExitCodesFollowTheDocumentedTable(ErrorCode code, int exit) => Assert.Equal(exit, ErrorCodes.ExitCode(code));
}
