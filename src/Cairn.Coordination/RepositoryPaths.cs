using Cairn.Core;

namespace Cairn.Coordination;

/// <summary>Repository tree paths as leases and token scopes use them: relative, '/'-separated, compared by component.</summary>
public static class RepositoryPaths
{
    /// <summary>Strips leading and trailing '/'; "/" and "" become "" (the whole tree). Refuses "." and ".." components.</summary>
    public static string Normalize(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var trimmed = path.Trim('/');
        if (trimmed.Length == 0) return "";
        var parts = trimmed.Split('/');
        foreach (var part in parts)
        {
            if (part.Length == 0 || part is "." or ".." || part.Contains('\0', StringComparison.Ordinal))
            {
                throw new CairnException(ErrorCode.InvalidPath, $"'{path}' is not a repository path",
                    "write PLATFORM/NAME/VERSION or a prefix of it, without empty, '.' or '..' components");
            }
        }

        return trimmed;
    }

    /// <summary><paramref name="path"/> equals <paramref name="prefix"/> or lies below it (both normalised).</summary>
    public static bool IsWithin(string path, string prefix) =>
        prefix.Length == 0
        || string.Equals(path, prefix, StringComparison.Ordinal)
        || (path.Length > prefix.Length && path.StartsWith(prefix, StringComparison.Ordinal) && path[prefix.Length] == '/');

    /// <summary>Two subtrees overlap when one contains the other.</summary>
    public static bool Overlap(string a, string b) => IsWithin(a, b) || IsWithin(b, a);
}
