using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Cairn.Core;

namespace Cairn.Core.Tests;

/// <summary>Checks the code against the test vectors printed in docs/format/repository.md, so the text stays normative.</summary>
public partial class FormatVectorTests
{
    [GeneratedRegex("```vector\\n(?<body>.*?)```", RegexOptions.Singleline)]
    private static partial Regex VectorBlock();

    private static readonly Dictionary<string, Dictionary<string, string>> Vectors = LoadVectors();

    private static Dictionary<string, Dictionary<string, string>> LoadVectors()
    {
        var text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "docs", "repository.md"));
        var result = new Dictionary<string, Dictionary<string, string>>();
        foreach (Match m in VectorBlock().Matches(text))
        {
            var fields = m.Groups["body"].Value.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(line => line.Split(':', 2)).ToDictionary(p => p[0].Trim(), p => p[1].Trim());
            result[fields["name"]] = fields;
        }

        return result;
    }

    private static readonly byte[] EmptyTree = TreeCodec.Encode([]);

    private static void Check(string name, byte[] bytes)
    {
        var vector = Vectors[name];
        if (vector.TryGetValue("hex", out var hex)) Assert.Equal(hex, Convert.ToHexStringLower(bytes));
        Assert.Equal(vector["sha256"], Digest.Of(bytes).ToString());
    }

    [Fact]
    public void DocumentHasEveryVector() =>
        Assert.Equal(["chunk-lengths", "chunk-list", "empty-tree", "example-tree", "file-a", "file-b", "pack", "pack-index"], Vectors.Keys.Order(StringComparer.Ordinal));

    [Fact]
    public void FileContent()
    {
        Check("file-a", "hello\n"u8.ToArray());
        Check("file-b", "#!/bin/sh\n"u8.ToArray());
    }

    [Fact]
    public void EmptyTreeVector() => Check("empty-tree", EmptyTree);

    [Fact]
    public void ExampleTreeVector() => Check("example-tree", TreeCodec.Encode(
    [
        TreeEntry.File("hello.txt", 6, Digest.Of("hello\n"u8)),
        TreeEntry.File("run", 10, Digest.Of("#!/bin/sh\n"u8), executable: true),
        TreeEntry.Link("link", "hello.txt"),
        TreeEntry.Dir("sub", EmptyTree.Length, Digest.Of(EmptyTree)),
    ]));

    [Fact]
    public void ChunkListVector() => Check("chunk-list", ChunkListCodec.Encode([(6, Digest.Of("hello\n"u8))]));

    [Fact]
    public void ChunkBoundaryVector()
    {
        var stream = new byte[8 << 20];
        var input = new byte[14];
        "cairn-test"u8.CopyTo(input);
        for (var k = 0; k < stream.Length / 32; k++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(input.AsSpan(10), (uint)k);
            SHA256.HashData(input, stream.AsSpan(k * 32, 32));
        }

        Assert.Equal(Vectors["chunk-lengths"]["lengths"], string.Join(',', Chunker.Split(stream).Select(c => c.Length)));
    }
}
