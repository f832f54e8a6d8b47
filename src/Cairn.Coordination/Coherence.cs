using Cairn.Core;

namespace Cairn.Coordination;

/// <summary>
/// Computes agreement across sites from their results, and what a channel's policy makes of it. Pure functions,
/// so every backend reports the same thing for the same results.
/// </summary>
public static class Coherence
{
    public static CoherenceReport Compute(string buildKey, IReadOnlyList<BuildResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        if (results.Count == 0)
        {
            return new CoherenceReport(buildKey, CoherenceStatus.NoResults, null, [], [], [], []);
        }

        var ordered = results.OrderBy(r => r.RecordedAt).ThenBy(r => r.Site, StringComparer.Ordinal).ToList();

        // The reference is the output root most passing sites agree on (the earliest reported wins a tie), or,
        // when nothing passes, the most common root, so a uniform failure is not reported as a disagreement.
        var pool = ordered.Any(r => r.Passing) ? ordered.Where(r => r.Passing).ToList() : ordered;
        var reference = pool
            .GroupBy(r => r.OutputRoot)
            .OrderByDescending(g => g.Count())
            .ThenBy(g => ordered.IndexOf(g.First()))
            .First();
        Digest? referenceRoot = reference.Key;
        var agreeing = reference.Where(r => r.Passing).Select(r => r.Site).ToList();

        var testDifferences = DifferingTests(ordered);
        var rootsDiffer = ordered.Select(r => r.OutputRoot).Distinct().Count() > 1;
        var checksDiffer = ordered.Any(r => r.Passing) && ordered.Any(r => !r.Passing);

        CoherenceStatus status;
        if (rootsDiffer || checksDiffer || testDifferences.Count > 0)
        {
            status = CoherenceStatus.Disagreement;
        }
        else
        {
            status = ordered[0].Passing ? CoherenceStatus.Agreement : CoherenceStatus.Failing;
        }

        var disagreements = new List<SiteDisagreement>();
        if (status == CoherenceStatus.Disagreement)
        {
            var referenceSites = string.Join(", ", reference.Select(r => r.Site));
            foreach (var r in ordered)
            {
                var reasons = new List<string>();
                if (r.OutputRoot is null)
                {
                    reasons.Add("the build produced no output");
                }
                else if (r.OutputRoot != referenceRoot)
                {
                    reasons.Add($"output root {r.OutputRoot} differs from {referenceRoot?.ToString() ?? "none"} (sites {referenceSites})");
                }

                if (r.Checks.Failed > 0)
                {
                    var failedTests = (r.Checks.Tests ?? []).Where(t => t.Outcome == TestOutcome.Failed).Select(t => t.Name).ToList();
                    reasons.Add(failedTests.Count > 0
                        ? $"{r.Checks.Failed} check(s) failed: {string.Join(", ", failedTests)}"
                        : $"{r.Checks.Failed} check(s) failed");
                }

                var differing = testDifferences.Where(d => d.BySite.TryGetValue(r.Site, out var o) && o != TestOutcome.Skipped && o != Majority(d)).Select(d => d.Test).ToList();
                if (differing.Count > 0 && r.Checks.Failed == 0)
                {
                    reasons.Add($"test outcome differs: {string.Join(", ", differing)}");
                }

                if (reasons.Count > 0)
                {
                    disagreements.Add(new SiteDisagreement(r.Site, r.OutputRoot, referenceRoot, string.Join("; ", reasons), r.Environment));
                }
            }
        }

        return new CoherenceReport(buildKey, status, referenceRoot, agreeing, disagreements, testDifferences, ordered);
    }

    /// <summary>
    /// Whether the build key may go to the channel: never in disagreement, never when failing, and only when at
    /// least the policy's number of sites agree on the output root with every check passing.
    /// </summary>
    public static PromotionDecision Evaluate(CoherenceReport report, ChannelPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(policy);
        var agreeing = report.AgreeingSites.Count;
        PromotionDecision Decide(bool allowed, string reason) =>
            new(report.BuildKey, policy.Channel, allowed, agreeing, policy.RequiredAgreeingSites, report.ReferenceRoot, reason);

        return report.Status switch
        {
            CoherenceStatus.NoResults => Decide(false, "no site has reported a result"),
            CoherenceStatus.Failing => Decide(false, "the build or its checks fail on every site that built it"),
            CoherenceStatus.Disagreement => Decide(false,
                "the sites disagree: " + string.Join("; ", report.Disagreements.Select(d => $"{d.Site}: {d.Reason}"))),
            _ when agreeing < policy.RequiredAgreeingSites => Decide(false,
                $"{agreeing} of the {policy.RequiredAgreeingSites} agreeing sites channel {policy.Channel} needs ({string.Join(", ", report.AgreeingSites)})"),
            _ => Decide(true, $"{agreeing} site(s) agree ({string.Join(", ", report.AgreeingSites)}); channel {policy.Channel} needs {policy.RequiredAgreeingSites}"),
        };
    }

    /// <summary>Default policies when a channel has none stored: testing after one passing site, stable after two.</summary>
    public static ChannelPolicy? DefaultPolicy(string channel) => channel switch
    {
        ChannelPolicy.Testing => new ChannelPolicy(ChannelPolicy.Testing, 1),
        ChannelPolicy.Stable => new ChannelPolicy(ChannelPolicy.Stable, 2),
        _ => null,
    };

    private static List<TestDifference> DifferingTests(IReadOnlyList<BuildResult> results)
    {
        var byTest = new SortedDictionary<string, Dictionary<string, TestOutcome>>(StringComparer.Ordinal);
        foreach (var r in results)
        {
            foreach (var t in r.Checks.Tests ?? [])
            {
                if (!byTest.TryGetValue(t.Name, out var sites))
                {
                    byTest[t.Name] = sites = new Dictionary<string, TestOutcome>(StringComparer.Ordinal);
                }

                sites[r.Site] = t.Outcome;
            }
        }

        // Skipped is not a difference: a test skipped on one site (no GPU there) neither passes nor fails.
        return [.. byTest
            .Where(kv => kv.Value.Values.Where(o => o != TestOutcome.Skipped).Distinct().Count() > 1)
            .Select(kv => new TestDifference(kv.Key, kv.Value))];
    }

    private static TestOutcome Majority(TestDifference d) =>
        d.BySite.Values.Where(o => o != TestOutcome.Skipped).GroupBy(o => o).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
}
