namespace Cairn.Testing;

/// <summary>
/// The cairn the tests start as a process. CAIRN_TEST_CLI names it: a native executable (scripts/test.sh builds the
/// Native AOT cairn that ships and points the tests at it) or a cairn.dll (e.g. an older commit's build, to see a
/// test catch its bug). Unset, it is the cairn.dll copied beside the tests, run by the dotnet running the tests.
/// </summary>
public static class CairnUnderTest
{
    public static IReadOnlyList<string> Command { get; } = Resolve();

    /// <summary>The command line that runs cairn with <paramref name="args"/>.</summary>
    public static string[] With(params string[] args) => [.. Command, .. args];

    /// <summary>The command for sh -c scripts, each word single-quoted.</summary>
    public static string ShellWords => string.Join(' ', Command.Select(w => "'" + w.Replace("'", "'\\''", StringComparison.Ordinal) + "'"));

    private static string[] Resolve()
    {
        var named = Environment.GetEnvironmentVariable("CAIRN_TEST_CLI");
        var path = named is { Length: > 0 } ? Path.GetFullPath(named) : Path.Combine(AppContext.BaseDirectory, "cairn.dll");
        if (!path.EndsWith(".dll", StringComparison.Ordinal)) return [path];
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet";
        return [dotnet, path];
    }
}
