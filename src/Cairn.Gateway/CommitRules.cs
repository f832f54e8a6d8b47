using Cairn.Coordination;
using Cairn.Coordination.Gateway;
using Cairn.Core;

namespace Cairn.Gateway;

/// <summary>What a commit must be before anything is locked: product paths, its root, result and extra files.</summary>
internal static class CommitRules
{
    public static string ProductPath(string platform, ProductRef product) => $"{platform}/{product.Name}/{product.Version}";

    public static List<(string Path, TreeEntry Entry)> Validate(ProductCommit commit, string productPath)
    {
        if (commit.Root.Kind != EntryKind.Directory)
        {
            throw Invalid($"the root of {productPath} is a {commit.Root.Kind}, not a directory", "commit the product's directory entry as Root");
        }

        if (!string.Equals(commit.Result.BuildKey, commit.BuildKey, StringComparison.Ordinal))
        {
            throw Invalid($"the commit is for build key {commit.BuildKey} but its result for {commit.Result.BuildKey}", "report the result of the job being committed");
        }

        if (!string.Equals(RepositoryPaths.Normalize(commit.Result.Product), productPath, StringComparison.Ordinal))
        {
            throw Invalid($"the commit is for {productPath} but its result for {commit.Result.Product}", "report the result of the product being committed");
        }

        if (commit.Result.OutputRoot is { } reported && reported != commit.Root.Digest)
        {
            throw Invalid($"the result's output root {reported} is not the committed root {commit.Root.Digest}", "report the root that is committed");
        }

        var extras = new List<(string, TreeEntry)>();
        foreach (var extra in commit.Extras)
        {
            var path = RepositoryPaths.Normalize(extra.Path);
            var first = path.Split('/')[0];
            if (!path.Contains('/', StringComparison.Ordinal) || string.Equals(first, commit.Platform, StringComparison.Ordinal))
            {
                throw Invalid($"extra file '{extra.Path}' is not a path outside the platform directories", "place extra files under modules/ or logs/");
            }

            if (extra.Entry.Kind == EntryKind.Directory)
            {
                throw Invalid($"extra '{extra.Path}' is a directory", "commit extra files one by one");
            }

            extras.Add((path, extra.Entry));
        }

        return extras;
    }

    private static CairnException Invalid(string message, string hint) => new(ErrorCode.GatewayCommitInvalid, message, hint);

    public static (string Platform, ProductRef Product) ParseProductPath(string productPath)
    {
        var parts = RepositoryPaths.Normalize(productPath ?? "").Split('/');
        if (parts.Length != 3 || !ProductRef.IsValidComponent(parts[1]) || !ProductRef.IsValidComponent(parts[2]))
        {
            throw new CairnException(ErrorCode.Usage, $"'{productPath}' is not a product path", "write PLATFORM/NAME/VERSION, e.g. linux-x86_64/zlib/1.3.1");
        }

        Platforms.Validate(parts[0]);
        return (parts[0], new ProductRef(parts[1], parts[2]));
    }
}
