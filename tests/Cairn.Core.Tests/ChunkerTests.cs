using Cairn.Core;

namespace Cairn.Core.Tests;

public class ChunkerTests
{
    private static byte[] RandomBytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    [Fact]
    public void ChunksRespectMinimumAndMaximumAndCoverTheInput()
    {
        var data = RandomBytes(12 << 20, 1);
        var chunks = Chunker.Split(data);
        Assert.Equal(data.Length, chunks.Sum(c => c.Length));
        Assert.All(chunks.SkipLast(1), c => Assert.InRange(c.Length, Chunker.MinSize, Chunker.MaxSize));
        var average = chunks.Average(c => c.Length);
        Assert.InRange(average, Chunker.AverageSize / 2, Chunker.AverageSize * 2);
    }

    [Fact]
    public void AnInsertionChangesOnlyNearbyChunks()
    {
        var original = RandomBytes(16 << 20, 2);
        var edited = original[..(8 << 20)].Concat("an inserted sentence"u8.ToArray()).Concat(original[(8 << 20)..]).ToArray();
        var before = Chunker.Split(original).Select(c => Digest.Of(original.AsSpan(c.Offset, c.Length))).ToHashSet();
        var after = Chunker.Split(edited).Select(c => Digest.Of(edited.AsSpan(c.Offset, c.Length))).ToList();
        var changed = after.Count(d => !before.Contains(d));
        Assert.InRange(changed, 1, 2);
    }

    [Fact]
    public void ZerosAreCutAtTheMaximum()
    {
        var chunks = Chunker.Split(new byte[5 << 20]);
        Assert.Equal([Chunker.MaxSize, Chunker.MaxSize, (5 << 20) - (2 * Chunker.MaxSize)], chunks.Select(c => c.Length));
    }
}
