using Cairn.Core;

namespace Cairn.Cli.Commands.Serve;

/// <summary>Reads the dashboard operator's secret from --operator-token-file (cairn serve and cairn gateway).</summary>
internal static class OperatorToken
{
    public static async Task<string?> ReadAsync(string? path, CancellationToken ct)
    {
        if (path is null) return null;
        string text;
        try
        {
            text = (await File.ReadAllTextAsync(path, ct)).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CairnException(ErrorCode.Usage, $"cannot read the operator token file {path}: {e.Message}", "pass a readable file, e.g. head -c 32 /dev/urandom | base64 > operator.token");
        }

        return text.Length >= 32 ? text
            : throw new CairnException(ErrorCode.Usage, $"the operator token in {path} is shorter than 32 characters",
                "write a random secret into it, e.g. head -c 32 /dev/urandom | base64 > operator.token");
    }

    /// <summary>--require-token needs the token file: a sign-in nobody can pass would lock every page.</summary>
    public static bool RequireSignIn(bool required, string? tokenFile) =>
        !required || tokenFile is not null ? required
            : throw new CairnException(ErrorCode.Usage, "--require-token needs --operator-token-file", "pass the file holding the operator's secret too");
}
