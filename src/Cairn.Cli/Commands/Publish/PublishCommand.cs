using System.CommandLine;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Cli.Commands.Publish;

public static class PublishCommand
{
    public static Command Create()
    {
        var product = ProductArguments.One();
        var directory = new Argument<string>("directory") { Description = "Directory holding the product's files (its install prefix)" };
        var platform = ProductArguments.Platform();
        var buildKey = new Option<string?>("--build-key") { Description = "Build key this product was made from" };
        var deps = new Option<string[]>("--depends", "-d") { Description = "NAME/VERSION of a dependency (repeatable)", AllowMultipleArgumentsPerToken = true };
        var replace = new Option<bool>("--replace") { Description = "Replace a published product with different content (recorded)" };
        var reason = new Option<string?>("--reason") { Description = "Why the product is replaced (recorded)" };
        var command = new Command("publish", "Store a directory as product NAME/VERSION and make it part of a new revision")
        {
            product, directory, platform, buildKey, deps, replace, reason,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            var productRef = ProductArguments.Parse(ctx.Parse.GetValue(product)!);
            var dependencies = (ctx.Parse.GetValue(deps) ?? []).Select(d => ProductRef.Parse(d).ToString()).ToList();
            if (ctx.Parse.GetValue(replace) && string.IsNullOrWhiteSpace(ctx.Parse.GetValue(reason)))
            {
                throw new CairnException(ErrorCode.Usage, "--replace needs --reason", "say why the published product is being replaced; it is recorded");
            }

            await using var repo = await ctx.OpenWritableRepositoryAsync("publish", ct);
            var progress = ctx.Progress("publishing", 0);
            var result = await repo.PublishDirectoryAsync(productRef, ctx.Parse.GetValue(directory)!, new PublishOptions
            {
                Platform = ctx.Parse.GetValue(platform),
                BuildKey = ctx.Parse.GetValue(buildKey),
                Dependencies = dependencies,
                Replace = ctx.Parse.GetValue(replace),
                ReplaceReason = ctx.Parse.GetValue(reason),
            }, progress, ct);
            ctx.EndProgress(progress);
            ctx.Write(result, CliJson.Default.PublishResult, o => o.WriteLine(result.Outcome switch
            {
                PublishOutcome.Unchanged => $"{productRef} is already published with identical content (revision {result.Revision})",
                PublishOutcome.Replaced => $"replaced {productRef}: root {result.Product.Root.Abbreviated}, {result.Product.Files} files, {Units.Bytes(result.Product.Size)}, revision {result.Revision}",
                _ => $"published {productRef}: root {result.Product.Root.Abbreviated}, {result.Product.Files} files, {Units.Bytes(result.Product.Size)}, revision {result.Revision}",
            }));
            return 0;
        });
        return command;
    }
}
