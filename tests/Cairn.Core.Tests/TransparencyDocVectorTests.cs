using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Cairn.Core.Transparency;

namespace Cairn.Core.Tests;

/// <summary>The vectors printed in docs/format/transparency-log.md, so the text stays normative.</summary>
public partial class TransparencyDocVectorTests
{
    [GeneratedRegex("```vector\\n(?<body>.*?)```", RegexOptions.Singleline)]
    private static partial Regex VectorBlock();

    private static readonly Dictionary<string, Dictionary<string, string>> Vectors =
        VectorBlock().Matches(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "docs", "transparency-log.md")))
            .Select(m => m.Groups["body"].Value.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(':', 2)).ToDictionary(p => p[0].Trim(), p => p[1].Trim()))
            .ToDictionary(v => v["name"]);

    [Fact]
    public void DocumentHasEveryVector() => Assert.Equal(["log-record", "note-key-id", "root-of-3", "tile-index"], Vectors.Keys.Order(StringComparer.Ordinal));

    [Fact]
    public void LogRecordIsStoredAsPrintedAndHashedAsALeaf()
    {
        var v = Vectors["log-record"];
        var bytes = Encoding.UTF8.GetBytes(v["json"]);
        // Decoding and encoding again gives the same bytes: the member order and format are the normative ones.
        Assert.Equal(v["json"], Encoding.UTF8.GetString(LogRecord.Decode(bytes, "vector").Encode()));
        Assert.Equal(v["leaf-hash"], Convert.ToHexStringLower(Merkle.LeafHash(bytes)));
    }

    [Fact]
    public void RootOfThree()
    {
        var v = Vectors["root-of-3"];
        var leaves = v["leaves"].Split(',').Select(Convert.FromHexString).Select(l => Merkle.LeafHash(l)).ToList();
        var root = Merkle.Root(leaves.Count, n => Merkle.PerfectRoot(leaves, (int)(n.Index << n.Level), 1 << n.Level));
        Assert.Equal(v["root-base64"], new Checkpoint("o", 3, root).RootBase64);
    }

    [Fact]
    public void TileIndex()
    {
        var v = Vectors["tile-index"];
        var index = long.Parse(v["index"], System.Globalization.CultureInfo.InvariantCulture);
        var groups = new List<string>();
        for (var i = index; ; i /= 1000)
        {
            groups.Insert(0, (i % 1000).ToString("D3", System.Globalization.CultureInfo.InvariantCulture));
            if (i < 1000) break;
        }

        Assert.Equal(v["path"], string.Join("/", groups.Select((g, i) => i < groups.Count - 1 ? "x" + g : g)));
    }

    [Fact]
    public void NoteKeyId()
    {
        var v = Vectors["note-key-id"];
        byte[] data = [.. Encoding.UTF8.GetBytes(v["name-of-key"]), 0x0A, .. Convert.FromBase64String(v["vkey-body"])];
        Assert.Equal(v["key-id"], Convert.ToHexStringLower(SHA256.HashData(data).AsSpan(0, 4)));
    }
}
