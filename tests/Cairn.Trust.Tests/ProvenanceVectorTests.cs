using System.Text;
using Cairn.Core;
using Cairn.Trust.Provenance;
using NSec.Cryptography;

namespace Cairn.Trust.Tests;

/// <summary>docs/format/provenance.md §8: the vector printed there is what Cairn computes, byte for byte.</summary>
public sealed class ProvenanceVectorTests
{
    private static Dictionary<string, string> Vector()
    {
        var text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "docs", "provenance.md"));
        var block = text[text.IndexOf("## 8. Test vector", StringComparison.Ordinal)..];
        block = block[(block.IndexOf("```text\n", StringComparison.Ordinal) + 8)..];
        block = block[..block.IndexOf("```", StringComparison.Ordinal)];
        return block.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => (Name: l[..l.IndexOf('=', StringComparison.Ordinal)].Trim(), Value: l[(l.IndexOf('=', StringComparison.Ordinal) + 2)..]))
            .ToDictionary(p => p.Name, p => p.Value);
    }

    [Fact]
    public void TheDocumentedVectorIsWhatCairnWrites()
    {
        var v = Vector();
        using var key = Keys.FromSeed(Convert.FromHexString(v["seed"]), KeyKind.Builder);
        Assert.Equal(v["public key"], Convert.ToHexStringLower(key.Public.Export(KeyBlobFormat.RawPublicKey)));

        var facts = ProvenanceTests.Facts() with
        {
            Name = "hello", Version = "2.10", RecipePath = "hello", CheckScript = "check.sh",
            CheckScriptSha256 = Digest.Parse(v["check sha256"]), PassedTests = ["hello check"], FailedTests = [],
        };
        Assert.Equal(v["subject"], facts.Subject);
        var payload = CairnJson.Serialize(Attester.TestResult(facts, Digest.Parse(v["cairnTree"])), ProvenanceJson.Default.TestResultStatement);
        Assert.Equal(v["payload"], Encoding.UTF8.GetString(payload));

        var pae = Dsse.PreAuthEncoding(v["payload type"], payload);
        Assert.Equal(int.Parse(v["PAE length"], System.Globalization.CultureInfo.InvariantCulture), pae.Length);
        Assert.StartsWith(v["PAE prefix"] + "{", Encoding.UTF8.GetString(pae), StringComparison.Ordinal);

        var envelope = Dsse.Sign(v["payload type"], payload, key);
        Assert.Equal(v["signature"], envelope.Signatures[0].Sig);
        Assert.Equal(key.KeyId, envelope.Signatures[0].KeyId);
        Assert.True(Dsse.IsSignedBy(envelope, key.Public));
    }
}
