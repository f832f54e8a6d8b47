namespace Cairn.Sandbox;

/// <summary>
/// What every sandboxed command can rely on. Bump <see cref="Version"/> whenever anything here or in the mounts
/// changes what a build could observe: it goes into every build key, so all products are rebuilt.
/// </summary>
public static class SandboxContract
{
    /// <summary>2: the seccomp filter (<see cref="SeccompFilter"/>, docs/adr/0009-seccomp.md). 1: the first contract.</summary>
    public const int Version = 2;

    public const string HostName = "cairn";

    public const string Home = "/home/cairn";

    public const string DefaultPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

    /// <summary>1980-01-01T00:00:00Z.</summary>
    public const long DefaultSourceDateEpoch = 315532800;

    /// <summary>Set in every sandbox and not overridable (SOURCE_DATE_EPOCH comes from the spec).</summary>
    public static IReadOnlyDictionary<string, string> FixedEnvironment { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["HOME"] = Home,
        ["TZ"] = "UTC",
        ["LC_ALL"] = "C",
        ["LANG"] = "C",
        ["TMPDIR"] = "/tmp",
        ["USER"] = "root",
        ["LOGNAME"] = "root",
        ["SHELL"] = "/bin/sh",
    };

    public static bool IsReserved(string name) =>
        FixedEnvironment.ContainsKey(name) || name == "SOURCE_DATE_EPOCH";
}
