namespace Cairn.Build;

/// <summary>
/// The library folders of an installed product: lib/, and lib64/ and Debian's lib/&lt;multiarch&gt;/ (e.g.
/// lib/x86_64-linux-gnu) when the product has them. CMake's GNUInstallDirs and some autotools builds install into
/// the latter, so dependants' search paths and the modulefiles must name them too.
/// </summary>
public static class LibraryFolders
{
    /// <summary>Folders relative to the prefix, in search order: lib, lib64 (if present), lib/*-linux-gnu* (if present).</summary>
    public static IReadOnlyList<string> Of(string hostPrefix)
    {
        ArgumentNullException.ThrowIfNull(hostPrefix);
        var result = new List<string> { "lib" };
        if (Directory.Exists(Path.Combine(hostPrefix, "lib64"))) result.Add("lib64");
        var lib = Path.Combine(hostPrefix, "lib");
        if (Directory.Exists(lib))
        {
            foreach (var dir in Directory.GetDirectories(lib).Select(Path.GetFileName).Order(StringComparer.Ordinal))
            {
                if (IsMultiarch(dir!)) result.Add($"lib/{dir}");
            }
        }

        return result;
    }

    /// <summary>A Debian multiarch tuple: x86_64-linux-gnu, aarch64-linux-gnu, arm-linux-gnueabihf, i386-linux-gnu…</summary>
    public static bool IsMultiarch(string folderName) =>
        folderName.Contains("-linux-gnu", StringComparison.Ordinal) && !folderName.StartsWith('.');
}
