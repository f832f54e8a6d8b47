using System.Runtime.InteropServices;
using Cairn.Core;

namespace Cairn.Build.Coordinated;

/// <summary>What a site records about where it built, so a coherence report can explain a disagreement.</summary>
public static class SiteEnvironment
{
    /// <summary>e.g. "kernel 6.1.0-18-amd64; cpus 2; os Debian GNU/Linux 12 (bookworm); arch X64; environment host".</summary>
    public static string Describe(ProductRecord? environment)
    {
        // ProcessorCount honours the CPU affinity (taskset), which is what the sandboxed build inherits.
        var env = environment is null ? "host" : $"{environment.Ref} ({environment.Root.Abbreviated})";
        return $"kernel {Kernel()}; cpus {Environment.ProcessorCount}; os {OperatingSystemName()}; arch {RuntimeInformation.OSArchitecture}; environment {env}";
    }

    private static string Kernel()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        }
        catch (IOException)
        {
            return Environment.OSVersion.VersionString;
        }
        catch (UnauthorizedAccessException)
        {
            return Environment.OSVersion.VersionString;
        }
    }

    private static string OperatingSystemName()
    {
        foreach (var path in new[] { "/etc/os-release", "/usr/lib/os-release" })
        {
            try
            {
                foreach (var line in File.ReadLines(path))
                {
                    if (line.StartsWith("PRETTY_NAME=", StringComparison.Ordinal)) return line["PRETTY_NAME=".Length..].Trim('"');
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Try the next location.
            }
        }

        return RuntimeInformation.OSDescription;
    }
}
