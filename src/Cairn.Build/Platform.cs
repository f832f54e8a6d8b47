using System.Runtime.InteropServices;
using Cairn.Core;

namespace Cairn.Build;

/// <summary>What a product is built for: CODE-RADE's OS and ARCH, e.g. debian12 and x86_64.</summary>
public sealed record Platform(string Os, string Arch)
{
    /// <summary>"os/arch"; this text goes into build keys.</summary>
    public override string ToString() => $"{Os}/{Arch}";

    /// <summary>From the os-release of a root file system ("/" for the host) and the machine's architecture.</summary>
    public static Platform Detect(string root = "/")
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var candidate in new[] { "etc/os-release", "usr/lib/os-release" })
        {
            var path = Path.Combine(root, candidate);
            if (!File.Exists(path)) continue;
            foreach (var line in File.ReadAllLines(path))
            {
                var eq = line.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0) fields[line[..eq]] = line[(eq + 1)..].Trim('"', '\'');
            }

            break;
        }

        var os = fields.GetValueOrDefault("ID", "linux") + fields.GetValueOrDefault("VERSION_ID", "").Split('.')[0];
        var arch = RuntimeInformation.OSArchitecture switch
        {
            Architecture.X64 => "x86_64",
            Architecture.Arm64 => "aarch64",
            Architecture.Ppc64le => "ppc64le",
            Architecture.RiscV64 => "riscv64",
            var a => a.ToString().ToLowerInvariant(),
        };
        return new Platform(os, arch);
    }
}

/// <summary>
/// Where products live once deployed, CODE-RADE style: REPO_DIR = CVMFS_DIR/SITE/OS/ARCH and each package at
/// REPO_DIR/NAME/VERSION. Builds see their prefix and their dependencies at exactly these paths.
/// </summary>
public sealed record DeploymentLayout(string CvmfsDir, string Site, Platform Platform)
{
    public string RepoDir => $"{CvmfsDir.TrimEnd('/')}/{Site}/{Platform.Os}/{Platform.Arch}";

    public string PrefixOf(string name, string version) => $"{RepoDir}/{name}/{version}";

    /// <summary>CVMFS_DIR/SITE exactly as builds see them: the build key's <c>deployment</c> field (docs/format/build-key.md).</summary>
    public string Deployment => $"{CvmfsDir}/{Site}";

    /// <summary>
    /// The root must be absolute and the site one path component, so that <see cref="Deployment"/> names exactly one
    /// (CVMFS_DIR, SITE) pair.
    /// </summary>
    public static void Validate(string cvmfsDir, string site)
    {
        ArgumentNullException.ThrowIfNull(cvmfsDir);
        ArgumentNullException.ThrowIfNull(site);
        if (!cvmfsDir.StartsWith('/') || cvmfsDir.Contains('\0', StringComparison.Ordinal))
        {
            throw new CairnException(ErrorCode.DeploymentPathInvalid, $"the deployment root '{cvmfsDir}' is not an absolute path",
                "e.g. --deployment-root /cvmfs/cairn.example.org");
        }

        if (site.Length == 0 || site is "." or ".." || site.Contains('/', StringComparison.Ordinal) || site.Contains('\0', StringComparison.Ordinal))
        {
            throw new CairnException(ErrorCode.DeploymentPathInvalid, $"the deployment site '{site}' is not one path component",
                "give a plain name, e.g. --deployment-site generic");
        }
    }
}
