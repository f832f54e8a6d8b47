using Cairn.Core;
using Cairn.Repository;
using Cairn.Trust;
using Cairn.Trust.Provenance;

namespace Cairn.Build.Tests.Stack;

/// <summary>The statements a real build (real bubblewrap, real tarballs) signs, stored in the repository it publishes to.</summary>
[Collection(StackCollection.Name)]
public sealed class ProvenanceBuildTests(StackFixture stack)
{
    private static ProvenanceVerifier Verifier() => new(ProvenancePolicy.OneBuilder("test", StackFixture.BuilderKey.Public));

    [Fact]
    public async Task Every_built_product_carries_signed_statements_naming_its_root_inputs_and_passed_tests()
    {
        await using var repo = await StackFixture.OpenAsync(stack.Repository);
        var head = await repo.HeadAsync(default);
        var catalog = await repo.CatalogAsync(head, default);
        Assert.Equal(3, catalog.Products.Count);
        foreach (var record in catalog.Products)
        {
            Assert.Equal($"logs/{record.PathInRepository}/attestations.intoto.jsonl", record.Attestations);
            var verified = await ProductProvenance.VerifyAsync(repo, head, catalog, record, Verifier(), default);
            Assert.Equal([InToto.BuilderId("test")], verified.Builders);
        }

        var zdep = catalog.Find(StackFixture.Platform, new ProductRef("zdep", "1.0"))!;
        var zlib = catalog.Find(StackFixture.Platform, new ProductRef("zlib", "1.2.13"))!;
        var views = await ProductProvenance.DescribeAsync(repo, head, zdep, default);
        var provenance = views.Single(v => v.PredicateType == InToto.SlsaProvenanceType);
        Assert.Equal(zdep.Root.ToString(), provenance.SubjectDigest);
        Assert.Equal(zdep.BuildKey, provenance.BuildKey);
        Assert.Contains($"cairn:product:{zlib.PathInRepository}", provenance.Dependencies!);
        Assert.Contains("cairn:recipe:zdep", provenance.Dependencies!);
        Assert.Equal([StackFixture.BuilderKey.KeyId], provenance.KeyIds);
        var tests = views.Single(v => v.PredicateType == InToto.TestResultType);
        Assert.Equal((InToto.Passed, 1), (tests.Result, tests.PassedTests));

        // The bundle is a file of the revision's tree: it is what replicate, serve, mount and export carry.
        var entry = await repo.Trees.LookupAsync(head.Root, zdep.Attestations!, default);
        Assert.NotNull(entry);
        Assert.True(entry.IsFile);

        // Sources carry their URL or name and sha256 (zlib's tarball).
        var zlibViews = await ProductProvenance.DescribeAsync(repo, head, zlib, default);
        Assert.Contains(zlibViews.Single(v => v.Dependencies is not null).Dependencies!, d => d.Contains("zlib_1.2.13", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_failed_check_signs_and_stores_nothing_and_no_statement_claims_passed_for_it()
    {
        using var copy = stack.Copy();
        StackFixture.AddRecipe(copy.Recipes, "bad", "name: bad\nversion: \"1.0\"\nbuild: {run: 'mkdir -p $SOFT_DIR; echo x > $SOFT_DIR/x'}\ncheck: {run: 'exit 3'}\n");
        await using var repo = await StackFixture.OpenAsync(copy.Repository);
        var before = await repo.HeadAsync(default);
        var result = await StackFixture.Builder(repo).BuildAsync(StackFixture.Options(copy.Recipes, copy.Repository) with { Only = ["bad"] }, null, default);
        Assert.Equal(PackageStatus.Failed, result.Packages.Single(p => p.Name == "bad").Status);

        var head = await repo.HeadAsync(default);
        Assert.Equal(before.Revision, head.Revision);
        Assert.Null(await repo.Trees.LookupAsync(head.Root, "logs/linux-x86_64/bad", default));
        var catalog = await repo.CatalogAsync(head, default);
        foreach (var record in catalog.Products)
        {
            var views = await ProductProvenance.DescribeAsync(repo, head, record, default);
            Assert.All(views, v => Assert.DoesNotContain("bad", v.Subject!, StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task A_dependency_replaced_after_the_build_makes_its_dependents_provenance_refused()
    {
        using var copy = stack.Copy();
        await using var repo = await StackFixture.OpenAsync(copy.Repository);
        var other = Directory.CreateTempSubdirectory("cairn-zlib-other-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(other, "not-zlib"), "a different zlib\n");
            await repo.PublishDirectoryAsync(new ProductRef("zlib", "1.2.13"), other, new PublishOptions { Replace = true, ReplaceReason = "test" }, null, default);
        }
        finally
        {
            Directory.Delete(other, recursive: true);
        }

        var head = await repo.HeadAsync(default);
        var catalog = await repo.CatalogAsync(head, default);
        var zdep = catalog.Find(StackFixture.Platform, new ProductRef("zdep", "1.0"))!;
        var e = await Assert.ThrowsAsync<CairnException>(() => ProductProvenance.VerifyAsync(repo, head, catalog, zdep, Verifier(), default));
        Assert.Equal(ErrorCode.ProvenanceDependencyMismatch, e.Code);
        Assert.Contains("zlib", e.Message, StringComparison.Ordinal);

        // The replaced zlib itself was published by hand: it has no statements at all.
        var zlib = catalog.Find(StackFixture.Platform, new ProductRef("zlib", "1.2.13"))!;
        Assert.Equal(ErrorCode.ProvenanceMissing, (await Assert.ThrowsAsync<CairnException>(() => ProductProvenance.VerifyAsync(repo, head, catalog, zlib, Verifier(), default))).Code);

        // A key the policy does not trust: refused as untrusted.
        using var stranger = Keys.Generate(KeyKind.Builder);
        var hello = catalog.Find(StackFixture.Platform, new ProductRef("hello", "2.10"))!;
        var untrusted = new ProvenanceVerifier(ProvenancePolicy.OneBuilder("test", stranger.Public));
        Assert.Equal(ErrorCode.ProvenanceBuilderUntrusted, (await Assert.ThrowsAsync<CairnException>(() => ProductProvenance.VerifyAsync(repo, head, catalog, hello, untrusted, default))).Code);
    }
}
