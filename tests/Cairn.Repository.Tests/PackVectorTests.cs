using System.Buffers.Binary;
using System.Text.RegularExpressions;
using Cairn.Core;

namespace Cairn.Repository.Tests;

/// <summary>The pack and index vectors of docs/format/repository.md §11, against the one pack encoder and index codec.</summary>
public partial class PackVectorTests
{
    [GeneratedRegex("```vector\\nname: (?<name>pack(-index)?)\\nhex: (?<hex>[0-9a-f]+)\\nsha256: (?<sha>[0-9a-f]+)\\n```")]
    private static partial Regex PackVector();

    private static readonly Dictionary<string, (byte[] Bytes, string Sha256)> Vectors =
        PackVector().Matches(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "docs", "repository.md")))
            .ToDictionary(m => m.Groups["name"].Value, m => (Convert.FromHexString(m.Groups["hex"].Value), m.Groups["sha"].Value));

    private static readonly byte[] FileA = "hello\n"u8.ToArray();
    private static readonly byte[] FileB = "#!/bin/sh\n"u8.ToArray();

    [Fact]
    public void EncoderWritesThePackAndIndexOfTheVectors()
    {
        var pack = new MemoryStream();
        using var encoder = new PackEncoder((bytes, offset) =>
        {
            Assert.Equal(pack.Length, offset);
            pack.Write(bytes);
        });
        Assert.Equal(45, encoder.Append(Digest.Of(FileA), Codec.Raw, FileA, FileA.Length));
        Assert.Equal(92, encoder.Append(Digest.Of(FileB), Codec.Raw, FileB, FileB.Length));
        var (name, index) = encoder.Finish();

        Assert.Equal(Convert.ToHexStringLower(Vectors["pack"].Bytes), Convert.ToHexStringLower(pack.ToArray()));
        Assert.Equal(Vectors["pack"].Sha256, name);
        Assert.Equal(Convert.ToHexStringLower(Vectors["pack-index"].Bytes), Convert.ToHexStringLower(index));
        Assert.Equal(Vectors["pack-index"].Sha256, Digest.Of(index).ToString());
    }

    [Fact]
    public void TheVectorsReadBackAsTheirObjects()
    {
        var (pack, name) = Vectors["pack"];
        var entries = PackIndexCodec.Parse(Vectors["pack-index"].Bytes, name, "vector", "fix the vector");
        Assert.Equal([Digest.Of(FileA), Digest.Of(FileB)], entries.Select(e => e.Digest));
        foreach (var (digest, location) in entries)
        {
            // The record header before the stored bytes repeats what the index says.
            var header = pack.AsSpan((int)location.Offset - PackEncoder.RecordHeaderSize, PackEncoder.RecordHeaderSize);
            Assert.Equal(digest, Digest.FromBytes(header[..32]));
            Assert.Equal((byte)location.Codec, header[32]);
            Assert.Equal((uint)location.StoredSize, BinaryPrimitives.ReadUInt32BigEndian(header[33..]));
            var content = ObjectCodec.Decode(location.Codec, pack.AsSpan((int)location.Offset, location.StoredSize).ToArray(), location.Size, digest, "vector");
            Assert.Equal(digest, Digest.Of(content));
        }

        Assert.Equal("hello\n"u8.ToArray(), ObjectCodec.Decode(Codec.Raw, pack.AsSpan((int)entries[0].Location.Offset, 6).ToArray(), 6, Digest.Of(FileA), "vector"));
    }

    [Fact]
    public void AnIndexWithOneByteChangedIsRefused()
    {
        var index = Vectors["pack-index"].Bytes.ToArray();
        index[50] ^= 1;
        Assert.Equal(ErrorCode.PackMalformed, Assert.Throws<CairnException>(() => PackIndexCodec.Parse(index, "p", "vector", "hint")).Code);
    }
}
