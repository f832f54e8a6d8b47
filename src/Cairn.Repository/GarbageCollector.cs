using Cairn.Core;
using Cairn.Core.Transparency;

namespace Cairn.Repository;

public sealed record GcResult(IReadOnlyList<long> RevisionsRemoved, long RevisionsKept, RetainResult Objects, bool DryRun);

/// <summary>
/// Removes revisions outside the policy (keep the newest N and every tagged one) and then every object none of
/// the kept revisions reaches. Holds the objects lock exclusively, so a publish running at the same time either
/// finished before (and is kept) or waits (and its objects are written after the sweep).
/// </summary>
public sealed class GarbageCollector(WritableRepository repository)
{
    public async Task<GcResult> CollectAsync(int keepRevisions, bool dryRun, CancellationToken ct)
    {
        if (keepRevisions < 1)
        {
            throw new CairnException(ErrorCode.Usage, "--keep must be at least 1", "the head revision is always kept");
        }

        await using var objectsLock = await repository.Store.LockObjectsAsync(exclusive: true, ct).ConfigureAwait(false);
        await using var commitLock = await repository.Store.LockCommitAsync(ct).ConfigureAwait(false);
        // The store was opened before the locks: without this, packs committed meanwhile look unreferenced and are swept.
        await repository.Objects.RefreshAsync(ct).ConfigureAwait(false);
        var head = await repository.HeadAsync(ct).ConfigureAwait(false);
        var all = new List<Manifest>();
        await foreach (var m in repository.Revisions.ListRevisionsAsync(ct).ConfigureAwait(false)) all.Add(m);
        var tagged = head.Tags.Values.ToHashSet();
        var newest = all.Select(m => m.Revision).OrderDescending().Take(keepRevisions).ToHashSet();
        newest.Add(head.Revision);
        var kept = all.Where(m => newest.Contains(m.Revision) || tagged.Contains(m.Revision)).ToList();
        var removed = all.Where(m => !kept.Contains(m)).Select(m => m.Revision).ToList();

        var live = new HashSet<Digest>();
        foreach (var manifest in kept)
        {
            live.Add(manifest.Catalog);
            await MarkTreeAsync(manifest.Root, live, ct).ConfigureAwait(false);
        }

        if (!dryRun)
        {
            foreach (var rev in removed) await repository.Store.DeleteRevisionAsync(rev, ct).ConfigureAwait(false);
        }

        var result = await repository.Objects.RetainAsync(live.Contains, dryRun, ct).ConfigureAwait(false);

        // The publication log records which revisions gc removed (they stay in the log: it is append-only).
        var logged = dryRun || removed.Count == 0 ? null : new LogRecord(1, "gc", head.Revision, null, null, null,
            Shorten($"removed revisions {string.Join(", ", removed)}"), ProductRepository.DefaultPublisher, repository.Time.GetUtcNow());
        if (!dryRun && result.ObjectsDeleted > 0)
        {
            // Packs were deleted or rewritten: the head's pack list (what remote clients read, since a static web
            // server cannot list directories) is stale. A new revision with the same content records the new list.
            await PublishSession.CommitLoggedAsync(repository, head with
            {
                Revision = head.Revision + 1,
                Parent = head.Revision,
                Timestamp = repository.Time.GetUtcNow(),
                Message = $"gc: repacked ({result.ContainersRewritten} packs rewritten, {result.ObjectsDeleted} objects removed)",
                Packs = null,
            }, null, logged, ct).ConfigureAwait(false);
        }
        else if (logged is not null)
        {
            await PublishSession.AppendLogLockedAsync(repository, logged, ct).ConfigureAwait(false);
        }

        return new GcResult(removed, kept.Count, result, dryRun);
    }

    private static string Shorten(string text) => text.Length <= 2048 ? text : text[..2048] + "…";

    /// <summary>Marks every object the tree reaches; objects already marked (shared with another revision) are not walked again.</summary>
    private Task MarkTreeAsync(Digest root, HashSet<Digest> live, CancellationToken ct) =>
        Reachability.WalkAsync(repository.Objects, [TreeEntry.Dir("", -1, root)],
            o => ValueTask.FromResult(live.Add(o.Digest) ? WalkStep.Continue : WalkStep.Skip), null, ct);
}
