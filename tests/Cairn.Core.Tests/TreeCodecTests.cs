using Cairn.Core;

namespace Cairn.Core.Tests;

public class TreeCodecTests
{
    private static readonly Digest Hello = Digest.Of("hello\n"u8);

    [Fact]
    public void EncodingIgnoresInputOrder()
    {
        var a = TreeEntry.File("b", 6, Hello);
        var b = TreeEntry.File("a", 6, Hello, executable: true);
        Assert.Equal(TreeCodec.Encode([a, b]), TreeCodec.Encode([b, a]));
    }

    [Fact]
    public void DecodeInvertsEncode()
    {
        IReadOnlyList<TreeEntry> entries =
        [
            TreeEntry.File("hello.txt", 6, Hello),
            TreeEntry.File("run", 10, Digest.Of("#!/bin/sh\n"u8), executable: true),
            TreeEntry.Link("link", "hello.txt"),
            TreeEntry.Dir("sub", 8, Digest.Of(TreeCodec.Encode([]))),
            TreeEntry.Chunked("big", 5_000_000, Digest.Of("list"u8)),
            TreeEntry.File("ünïcødé", 6, Hello),
        ];
        var decoded = TreeCodec.Decode(TreeCodec.Encode(entries));
        Assert.Equal(entries.OrderBy(e => e.Name, StringComparer.Ordinal).Select(e => e.Name), decoded.Select(e => e.Name));
        foreach (var e in entries)
        {
            Assert.Equal(e, decoded.Single(d => d.Name == e.Name));
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("a/b")]
    [InlineData("nul\0")]
    public void RefusesNamesThatAreNotSingleComponents(string name)
    {
        var e = Assert.Throws<CairnException>(() => TreeCodec.Encode([TreeEntry.File(name, 6, Hello)]));
        Assert.Equal(ErrorCode.InvalidPath, e.Code);
    }

    [Fact]
    public void RefusesDuplicateNames()
    {
        var e = Assert.Throws<CairnException>(() => TreeCodec.Encode([TreeEntry.File("x", 6, Hello), TreeEntry.Link("x", "y")]));
        Assert.Equal(ErrorCode.TreeMalformed, e.Code);
    }

    [Fact]
    public void DecodeRejectsUnsortedTruncatedAndTrailingBytes()
    {
        var good = TreeCodec.Encode([TreeEntry.File("a", 6, Hello), TreeEntry.File("b", 6, Hello)]);
        Assert.Equal(ErrorCode.TreeMalformed, Assert.Throws<CairnException>(() => TreeCodec.Decode(good.AsSpan(0, good.Length - 1))).Code);
        Assert.Equal(ErrorCode.TreeMalformed, Assert.Throws<CairnException>(() => TreeCodec.Decode([.. good, 0])).Code);

        // Swap the two names in place: same bytes, wrong order.
        var swapped = (byte[])good.Clone();
        var firstName = Array.IndexOf(swapped, (byte)'a');
        var secondName = Array.IndexOf(swapped, (byte)'b');
        (swapped[firstName], swapped[secondName]) = (swapped[secondName], swapped[firstName]);
        Assert.Equal(ErrorCode.TreeMalformed, Assert.Throws<CairnException>(() => TreeCodec.Decode(swapped)).Code);
    }

    [Fact]
    public void ChunkListRoundTripsAndRejectsBadLengths()
    {
        var list = new List<(int, Digest)> { (1000, Hello), (2000, Digest.Of("x"u8)) };
        Assert.Equal(list, ChunkListCodec.Decode(ChunkListCodec.Encode(list)));
        var bad = ChunkListCodec.Encode([(0, Hello)]);
        Assert.Throws<CairnException>(() => ChunkListCodec.Decode(bad));
    }
}
