using System.Collections.Frozen;
using System.Security.Cryptography;

namespace Cairn.Web;

/// <summary>
/// The stylesheet, the live-refresh script and the icon, embedded in the assembly and served by Cairn itself
/// (no CDN). Each is addressed by a name carrying the first 16 hex digits of its SHA-256, so it can be cached
/// for a year as immutable: a new release changes the name, never the content behind a name.
/// </summary>
public static class DashboardAssets
{
    public sealed record Asset(string LogicalName, string FingerprintedName, string ContentType, byte[] Content, string ETag);

    private static readonly FrozenDictionary<string, Asset> ByLogicalName;
    private static readonly FrozenDictionary<string, Asset> ByFingerprintedName;

    static DashboardAssets()
    {
        var assets = new List<Asset>();
        foreach (var (name, type) in new[] { ("dashboard.css", "text/css; charset=utf-8"), ("live.js", "text/javascript; charset=utf-8"), ("favicon.svg", "image/svg+xml") })
        {
            using var stream = typeof(DashboardAssets).Assembly.GetManifestResourceStream("Cairn.Web.Assets." + name)
                ?? throw new InvalidOperationException($"the dashboard asset {name} is not embedded in Cairn.Web");
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            var content = buffer.ToArray();
            var hash = Convert.ToHexStringLower(SHA256.HashData(content))[..16];
            var dot = name.LastIndexOf('.');
            assets.Add(new Asset(name, $"{name[..dot]}.{hash}{name[dot..]}", type, content, $"\"{hash}\""));
        }

        ByLogicalName = assets.ToFrozenDictionary(a => a.LogicalName, StringComparer.Ordinal);
        ByFingerprintedName = assets.ToFrozenDictionary(a => a.FingerprintedName, StringComparer.Ordinal);
    }

    /// <summary>The fingerprinted file name of an asset (e.g. dashboard.css → dashboard.0123456789abcdef.css).</summary>
    public static string NameOf(string logicalName) => ByLogicalName[logicalName].FingerprintedName;

    public static Asset? Find(string fingerprintedName) => ByFingerprintedName.GetValueOrDefault(fingerprintedName);
}
