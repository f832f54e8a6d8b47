using Cairn.Core;

namespace Cairn.Core.Tests;

public class DigestTests
{
    [Fact]
    public void Sha256OfKnownInputMatchesTheStandardValue()
    {
        // FIPS 180-2 example "abc".
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Digest.Of("abc"u8).ToString());
    }

    [Fact]
    public void RoundTripsThroughTextAndBytes()
    {
        var d = Digest.Of("cairn"u8);
        Assert.Equal(d, Digest.Parse(d.ToString()));
        Assert.Equal(d, Digest.FromBytes(d.ToBytes()));
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD")]
    [InlineData("zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    public void RejectsAnythingButCanonicalLowercaseHex(string text) => Assert.False(Digest.TryParse(text, out _));

    [Fact]
    public void OrdersLikeItsBytes()
    {
        var digests = Enumerable.Range(0, 50).Select(i => Digest.Of(BitConverter.GetBytes(i))).ToList();
        var byStruct = digests.Order().Select(d => d.ToString()).ToList();
        var byText = digests.Select(d => d.ToString()).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(byText, byStruct);
    }
}
