using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
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

    public static Digest Compute(RecipeGraph graph, Recipe recipe, BuildKeyInputs inputs)
    {
        var buffer = new KeyBuffer();
        try
        {
            Write(buffer, graph, recipe, inputs);
            return Digest.Of(buffer.Written);
        }
        finally
        {
            buffer.Return();
        }
    }

    /// <summary>The canonical byte string whose SHA-256 is the key.</summary>
    public static byte[] Encode(RecipeGraph graph, Recipe recipe, BuildKeyInputs inputs)
    {
        var buffer = new KeyBuffer();
        try
        {
            Write(buffer, graph, recipe, inputs);
            return buffer.Written.ToArray();
        }
        finally
        {
            buffer.Return();
        }
    }

    // Fields go straight into one pooled buffer, hashed once: `cairn plan` encodes every transitive dependency of
    // every recipe (hundreds of thousands of fields for 2,000 dense recipes), so no strings or arrays per field.
    private static void Write(KeyBuffer buffer, RecipeGraph graph, Recipe recipe, BuildKeyInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(inputs);
        buffer.Append(Magic);
        buffer.Field("format"u8, FormatVersion.ToString(CultureInfo.InvariantCulture));
        buffer.Field("sandbox"u8, inputs.SandboxContractVersion.ToString(CultureInfo.InvariantCulture));
        buffer.Field("platform"u8, inputs.Platform.ToString());
        buffer.Field("deployment"u8, inputs.Deployment);
        buffer.Field("name"u8, recipe.Name);
        buffer.Field("version"u8, recipe.Version);

        foreach (var (relative, full) in RecipeFiles(recipe))
        {
            var executable = (File.GetUnixFileMode(full) & UnixFileMode.UserExecute) != 0;
            buffer.Field("file"u8, relative);
            buffer.Field("mode"u8, executable ? "755"u8 : "644"u8);
            buffer.Field("data"u8, File.ReadAllBytes(full));
        }

        foreach (var source in recipe.Sources)
        {
            buffer.Field("source"u8, source.Sha256);
        }

        foreach (var dep in graph.TransitiveDependenciesByName(recipe.Name))
        {
            if (!inputs.DependencyProducts.TryGetValue(dep.Name, out var product))
            {
                throw new CairnException(ErrorCode.DependencyProductMissing,
                    $"{recipe.Id} needs the product of {dep.Id} for its build key, and there is none yet",
                    $"build {dep.Name} first");
            }

            buffer.DependencyField(dep.Name, dep.Version);
            buffer.Field("product"u8, product);
        }

        if (inputs.BuildEnvironment is { } environment) buffer.Field("environment"u8, environment);
        else buffer.Field("environment"u8, "host"u8);
    }

    /// <summary>A growable byte buffer from the shared pool, with the key's field encoding (docs/format/build-key.md).</summary>
    private sealed class KeyBuffer
    {
        private byte[] _bytes = ArrayPool<byte>.Shared.Rent(16 * 1024);
        private int _length;

        public ReadOnlySpan<byte> Written => _bytes.AsSpan(0, _length);

        public void Append(ReadOnlySpan<byte> data) => data.CopyTo(Reserve(data.Length));

        public void Field(ReadOnlySpan<byte> tag, ReadOnlySpan<byte> value)
        {
            Header(tag, value.Length);
            Append(value);
        }

        public void Field(ReadOnlySpan<byte> tag, string value)
        {
            var length = Encoding.UTF8.GetByteCount(value);
            Header(tag, length);
            Encoding.UTF8.GetBytes(value, Reserve(length));
        }

        /// <summary>A digest's value is its lowercase hex.</summary>
        public void Field(ReadOnlySpan<byte> tag, Digest value)
        {
            Header(tag, 2 * Digest.Length);
            Span<byte> raw = stackalloc byte[Digest.Length];
            value.WriteTo(raw);
            Span<char> hex = stackalloc char[2 * Digest.Length];
            Convert.TryToHexStringLower(raw, hex, out _);
            var span = Reserve(hex.Length);
            for (var i = 0; i < hex.Length; i++) span[i] = (byte)hex[i];
        }

        /// <summary>The "dep" field: NAME/VERSION (<see cref="Recipe.Id"/>) without building the string.</summary>
        public void DependencyField(string name, string version)
        {
            var nameLength = Encoding.UTF8.GetByteCount(name);
            var length = nameLength + 1 + Encoding.UTF8.GetByteCount(version);
            Header("dep"u8, length);
            var span = Reserve(length);
            Encoding.UTF8.GetBytes(name, span);
            span[nameLength] = (byte)'/';
            Encoding.UTF8.GetBytes(version, span[(nameLength + 1)..]);
        }

        public void Return()
        {
            ArrayPool<byte>.Shared.Return(_bytes);
            _bytes = [];
        }

        private void Header(ReadOnlySpan<byte> tag, int length)
        {
            var span = Reserve(tag.Length + 1 + 8);
            tag.CopyTo(span);
            span[tag.Length] = 0;
            BinaryPrimitives.WriteUInt64BigEndian(span[(tag.Length + 1)..], (ulong)length);
        }

        private Span<byte> Reserve(int count)
        {
            if (_length + count > _bytes.Length)
            {
                var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_bytes.Length * 2, _length + count));
                _bytes.AsSpan(0, _length).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(_bytes);
                _bytes = bigger;
            }

            var span = _bytes.AsSpan(_length, count);
            _length += count;
            return span;
        }
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

    /// <summary>SHA-256 of a file, streamed.</summary>
    public static Digest HashFile(string path)
    {
        using var stream = File.OpenRead(path);
        return Digest.FromBytes(SHA256.HashData(stream));
    }
}
