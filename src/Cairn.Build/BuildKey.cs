using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Cairn.Build.Recipes;
using Cairn.Core;
using Cairn.Sandbox;

namespace Cairn.Build;

/// <summary>Everything outside the recipe folder that a build key covers.</summary>
/// <param name="Platform">e.g. debian12/x86_64</param>
/// <param name="Deployment">CVMFS_DIR/SITE exactly as the build sees them (<see cref="DeploymentLayout.Deployment"/>): baked into products.</param>
/// <param name="DependencyProducts">The published product root digest of every (transitive) dependency, by name.</param>
/// <param name="BuildEnvironment">The digest of the build environment product; null: the host's /usr.</param>
public sealed record BuildKeyInputs(
    Platform Platform,
    string Deployment,
    IReadOnlyDictionary<string, Digest> DependencyProducts,
    Digest? BuildEnvironment = null,
    int SandboxContractVersion = SandboxContract.Version);

/// <summary>
/// The digest over every input of a build, normative in docs/format/build-key.md. Same key: same build, so a
/// published product with this key is up to date.
/// </summary>
public static class BuildKey
{
    public const int FormatVersion = 2;

    private static readonly byte[] Magic = "cairn-build-key\n"u8.ToArray();

    public static Digest Compute(RecipeGraph graph, Recipe recipe, BuildKeyInputs inputs) =>
        Digest.Of(Encode(graph, recipe, inputs));

    /// <summary>The canonical byte string whose SHA-256 is the key.</summary>
    public static byte[] Encode(RecipeGraph graph, Recipe recipe, BuildKeyInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(inputs);
        using var buffer = new MemoryStream();
        buffer.Write(Magic);
        Field(buffer, "format", FormatVersion.ToString());
        Field(buffer, "sandbox", inputs.SandboxContractVersion.ToString());
        Field(buffer, "platform", inputs.Platform.ToString());
        Field(buffer, "deployment", inputs.Deployment);
        Field(buffer, "name", recipe.Name);
        Field(buffer, "version", recipe.Version);

        foreach (var (relative, full) in RecipeFiles(recipe))
        {
            var executable = (File.GetUnixFileMode(full) & UnixFileMode.UserExecute) != 0;
            Field(buffer, "file", relative);
            Field(buffer, "mode", executable ? "755" : "644");
            Field(buffer, "data", File.ReadAllBytes(full));
        }

        foreach (var source in recipe.Sources)
        {
            Field(buffer, "source", source.Sha256.ToString());
        }

        foreach (var dep in graph.TransitiveDependencies(recipe.Name).OrderBy(d => d.Name, StringComparer.Ordinal))
        {
            if (!inputs.DependencyProducts.TryGetValue(dep.Name, out var product))
            {
                throw new CairnException(ErrorCode.DependencyProductMissing,
                    $"{recipe.Id} needs the product of {dep.Id} for its build key, and there is none yet",
                    $"build {dep.Name} first");
            }

            Field(buffer, "dep", dep.Id);
            Field(buffer, "product", product.ToString());
        }

        Field(buffer, "environment", inputs.BuildEnvironment?.ToString() ?? "host");
        return buffer.ToArray();
    }

    /// <summary>Regular files of the recipe folder, '/'-separated relative paths in ordinal UTF-8 byte order.</summary>
    internal static List<(string Relative, string Full)> RecipeFiles(Recipe recipe)
    {
        var files = new List<(string, string)>();
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = false };
        foreach (var entry in new DirectoryInfo(recipe.Directory).EnumerateFileSystemInfos("*", options))
        {
            if (entry.LinkTarget is not null)
            {
                throw new CairnException(ErrorCode.RecipeInvalid,
                    $"{entry.FullName}: recipe folders may not hold symbolic links (their target is outside the build key)");
            }

            if (entry is FileInfo)
            {
                files.Add((Path.GetRelativePath(recipe.Directory, entry.FullName).Replace(Path.DirectorySeparatorChar, '/'), entry.FullName));
            }
        }

        // Ordinal UTF-16 order differs from UTF-8 byte order only beyond the BMP; compare bytes to be exact.
        files.Sort((a, b) => Encoding.UTF8.GetBytes(a.Item1).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(b.Item1)));
        return files;
    }

    private static void Field(Stream s, string tag, string value) => Field(s, tag, Encoding.UTF8.GetBytes(value));

    private static void Field(Stream s, string tag, byte[] value)
    {
        s.Write(Encoding.ASCII.GetBytes(tag));
        s.WriteByte(0);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)value.Length);
        s.Write(length);
        s.Write(value);
    }

    /// <summary>SHA-256 of a file, streamed.</summary>
    public static Digest HashFile(string path)
    {
        using var stream = File.OpenRead(path);
        return Digest.FromBytes(SHA256.HashData(stream));
    }
}
