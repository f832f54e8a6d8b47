using Cairn.Core;

namespace Cairn.Build.Tests.Stack;

/// <summary>Build-key format 2: the deployment path (CVMFS_DIR/SITE) is baked into products, so it is in the key.</summary>
[Collection(StackCollection.Name)]
public sealed class DeploymentKeyTests(StackFixture stack)
{
    [Fact]
    public async Task Another_deployment_root_or_site_rebuilds_and_the_same_one_is_up_to_date()
    {
        using var copy = stack.Copy();
        await using var repo = await StackFixture.OpenAsync(copy.Repository);
        var same = StackFixture.Options(copy.Recipes, copy.Repository);
        Assert.All((await StackFixture.Builder(repo).PlanAsync(same, default)).Packages, p => Assert.Equal(PlanAction.UpToDate, p.Action));

        var otherRoot = same with { DeploymentRoot = "/cvmfs/elsewhere.test" };
        var plan = await StackFixture.Builder(repo).PlanAsync(otherRoot, default);
        Assert.Equal(
            [("hello", PlanAction.Build), ("zlib", PlanAction.Build), ("zdep", PlanAction.After)],
            plan.Packages.Select(p => (p.Name, p.Action)));
        Assert.All(plan.Packages.Take(2), p => Assert.Contains("build key changed", p.Reason, StringComparison.Ordinal));
        var otherSite = same with { DeploymentSite = "other" };
        Assert.Equal(PlanAction.Build, (await StackFixture.Builder(repo).PlanAsync(otherSite, default)).Packages[0].Action);

        // Rebuilding hello for the other root replaces it; then that root is up to date and the first one is not.
        var helloOnly = otherRoot with { Only = ["hello"] };
        var built = await StackFixture.Builder(repo).BuildAsync(helloOnly, null, default);
        Assert.True(built.Succeeded, StackFixture.Describe(built));
        Assert.Equal(PackageStatus.Built, Assert.Single(built.Packages).Status);
        Assert.Equal(PlanAction.UpToDate, Assert.Single((await StackFixture.Builder(repo).PlanAsync(helloOnly, default)).Packages).Action);
        Assert.Equal(PlanAction.Build, Assert.Single((await StackFixture.Builder(repo).PlanAsync(same with { Only = ["hello"] }, default)).Packages).Action);
    }

    [Theory]
    [InlineData("/cvmfs/cairn", "a/b")]
    [InlineData("/cvmfs/cairn", "")]
    [InlineData("/cvmfs/cairn", "..")]
    [InlineData("cvmfs/cairn", "generic")]
    public async Task An_ambiguous_deployment_path_is_refused(string root, string site)
    {
        await using var repo = await StackFixture.OpenAsync(stack.Repository);
        var options = StackFixture.Options(stack.Recipes, stack.Repository) with { DeploymentRoot = root, DeploymentSite = site };
        var e = await Assert.ThrowsAsync<CairnException>(() => StackFixture.Builder(repo).PlanAsync(options, default));
        Assert.Equal(ErrorCode.DeploymentPathInvalid, e.Code);
    }
}
