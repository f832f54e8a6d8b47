using Cairn.Core;

namespace Cairn.Repository;

/// <summary>What gc does with one pack: nothing (no dead object), delete it, or rewrite its live objects into a new pack first.</summary>
public sealed record PackRetention(string Pack, IReadOnlyList<(Digest Digest, PackLocation Location)> Live, IReadOnlyList<(Digest Digest, PackLocation Location)> Dead)
{
    public bool Untouched => Dead.Count == 0;

    /// <summary>True when live objects must be copied into a new pack before this one is deleted.</summary>
    public bool NeedsRewrite => Dead.Count > 0 && Live.Count > 0;
}

/// <summary>
/// Decides, pack by pack, which objects gc keeps — for the directory and S3 pack stores alike — and adds up what it
/// kept and removed. An object is live when the repository still reaches it and the store's index points at this
/// pack for it: an object stored in two packs (two publishers racing) is kept once.
/// </summary>
public sealed class RetentionPlanner(Func<Digest, bool> isLive, Func<Digest, string?> indexedPack, bool dryRun)
{
    private long _kept, _deleted, _bytes, _rewritten;

    public PackRetention Plan(string pack, IEnumerable<(Digest Digest, PackLocation Location)> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var seen = new HashSet<Digest>();
        var live = new List<(Digest, PackLocation)>();
        var dead = new List<(Digest, PackLocation)>();
        foreach (var (digest, location) in entries)
        {
            var canonical = string.Equals(indexedPack(digest), pack, StringComparison.Ordinal);
            (canonical && isLive(digest) && seen.Add(digest) ? live : dead).Add((digest, location));
        }

        var plan = new PackRetention(pack, live, dead);
        _kept += live.Count;
        _deleted += dead.Count;
        _bytes += dead.Sum(o => (long)o.Item2.StoredSize + PackEncoder.RecordHeaderSize);
        if (plan.NeedsRewrite && !dryRun) _rewritten++;
        return plan;
    }

    public RetainResult Result => new(_kept, _deleted, _bytes, _rewritten);
}
