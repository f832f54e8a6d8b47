using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace Cairn.Core;

/// <summary>NAME/VERSION within a platform; the product lives at &lt;platform&gt;/&lt;name&gt;/&lt;version&gt; in the repository tree.</summary>
public sealed partial record ProductRef(string Name, string Version)
{
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")]
    private static partial Regex Component();

    public static bool IsValidComponent(string s) => Component().IsMatch(s);

    public static ProductRef Parse(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash > 0 && slash < text.Length - 1)
        {
            var r = new ProductRef(text[..slash], text[(slash + 1)..]);
            if (IsValidComponent(r.Name) && IsValidComponent(r.Version)) return r;
        }

        throw new CairnException(ErrorCode.InvalidProductReference,
            $"'{text}' is not a product reference",
            "write NAME/VERSION, each made of letters, digits and . _ + - (e.g. zlib/1.2.13)");
    }

    public override string ToString() => $"{Name}/{Version}";
}

public static class Platforms
{
    public static string Current
    {
        get
        {
            var arch = RuntimeInformation.OSArchitecture switch
            {
                Architecture.X64 => "x86_64",
                Architecture.Arm64 => "aarch64",
                var other => other.ToString().ToLowerInvariant(),
            };
            var os = OperatingSystem.IsLinux() ? "linux" : RuntimeInformation.OSDescription.Split(' ')[0].ToLowerInvariant();
            return $"{os}-{arch}";
        }
    }

    /// <summary>Top-level directories of the repository tree that hold other things than products.</summary>
    public static IReadOnlySet<string> Reserved { get; } = new HashSet<string>(StringComparer.Ordinal) { "modules", "logs" };

    public static void Validate(string platform)
    {
        if (Reserved.Contains(platform))
        {
            throw new CairnException(ErrorCode.Usage, $"'{platform}' is reserved in the repository tree and cannot be a platform", "use a name such as linux-x86_64");
        }

        if (!ProductRef.IsValidComponent(platform))
        {
            throw new CairnException(ErrorCode.Usage, $"'{platform}' is not a platform name", "use a name such as linux-x86_64");
        }
    }
}

public sealed record TestSummary(int Passed, int Failed, int Skipped, string? Report = null);

/// <summary>Recorded when a product was replaced on purpose (publish --replace).</summary>
public sealed record Replacement(Digest PreviousRoot, DateTimeOffset At, string By, string? Reason);

/// <param name="Log">Path in the repository tree of the build log (cairn build), e.g. logs/linux-x86_64/zlib/1.2.13/build.log.</param>
/// <param name="Attestations">Path in the repository tree of the product's signed in-toto statements (docs/format/provenance.md), e.g. logs/linux-x86_64/zlib/1.2.13/attestations.intoto.jsonl.</param>
public sealed record ProductRecord(
    string Platform,
    string Name,
    string Version,
    Digest Root,
    long Size,
    long Files,
    string? BuildKey,
    IReadOnlyList<string> Dependencies,
    TestSummary? Tests,
    string PublishedBy,
    DateTimeOffset PublishedAt,
    IReadOnlyList<Replacement>? Replaced = null,
    string? Log = null,
    string? Attestations = null)
{
    [JsonIgnore]
    public ProductRef Ref => new(Name, Version);

    [JsonIgnore]
    public string PathInRepository => $"{Platform}/{Name}/{Version}";
}

public sealed record Catalog(int Format, IReadOnlyList<ProductRecord> Products)
{
    public static Catalog Empty { get; } = new(1, []);

    public ProductRecord? Find(string platform, ProductRef product) =>
        Products.FirstOrDefault(p => p.Platform == platform && p.Name == product.Name && p.Version == product.Version);

    public Catalog With(ProductRecord record)
    {
        var list = Products.Where(p => !(p.Platform == record.Platform && p.Name == record.Name && p.Version == record.Version))
            .Append(record)
            .OrderBy(p => p.Platform, StringComparer.Ordinal)
            .ThenBy(p => p.Name, StringComparer.Ordinal)
            .ThenBy(p => p.Version, StringComparer.Ordinal)
            .ToList();
        return this with { Products = list };
    }
}

/// <summary>One revision of the repository: the root of the whole tree plus the catalog of products.</summary>
/// <param name="Packs">
/// Names of every pack in the repository when the revision was written (docs/format/repository.md §6), so a
/// client of a static web server, which cannot list directories, knows which indexes to fetch. Null in
/// revisions written before the field existed.
/// </param>
public sealed record Manifest(
    int Format,
    string Repository,
    long Revision,
    long? Parent,
    DateTimeOffset Timestamp,
    Digest Root,
    long RootSize,
    Digest Catalog,
    IReadOnlyDictionary<string, long> Tags,
    string Message,
    IReadOnlyList<string>? Packs = null);

public sealed record RepositoryConfig(int Format, string Name, string Platform, DateTimeOffset Created);

