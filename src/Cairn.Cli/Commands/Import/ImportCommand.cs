using System.CommandLine;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Cli.Commands.Import;

public static class ImportCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "Product tarball (.tar, .tar.gz, .tar.zst)" };
        var asProduct = new Option<string?>("--as") { Description = "Publish the whole archive as NAME/VERSION (otherwise it must be in PLATFORM/NAME/VERSION layout)" };
        var strip = new Option<int>("--strip-components") { Description = "Drop this many leading path components (with --as)" };
        var rootfs = new Option<bool>("--rootfs") { Description = "The archive is a root file system for builds (recipe 'environment:'): keep absolute symlinks (with --as)" };
        var platform = ProductArguments.Platform();
        var maxEntries = new Option<long?>("--max-entries") { Description = "Refuse archives with more entries (default 1000000)" };
        var maxSize = new Option<long?>("--max-size") { Description = "Refuse archives that unpack to more bytes (default 64 GiB)" };
        var maxRatio = new Option<double?>("--max-ratio") { Description = "Refuse archives that expand more than this factor (default 250)" };
        var replace = new Option<bool>("--replace") { Description = "Replace published products with different content (recorded)" };
        var reason = new Option<string?>("--reason") { Description = "Why products are replaced (recorded)" };
        var command = new Command("import", "Publish products from a tarball, refusing anything unsafe")
        {
            file, asProduct, strip, rootfs, platform, maxEntries, maxSize, maxRatio, replace, reason,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            var defaults = new ImportLimits();
            var options = new ImportOptions
            {
                As = ctx.Parse.GetValue(asProduct) is { } a ? ProductRef.Parse(a) : null,
                StripComponents = ctx.Parse.GetValue(strip),
                RootFileSystem = ctx.Parse.GetValue(rootfs),
                Limits = defaults with
                {
                    MaxEntries = ctx.Parse.GetValue(maxEntries) ?? defaults.MaxEntries,
                    MaxTotalBytes = ctx.Parse.GetValue(maxSize) ?? defaults.MaxTotalBytes,
                    MaxCompressionRatio = ctx.Parse.GetValue(maxRatio) ?? defaults.MaxCompressionRatio,
                },
                Publish = new PublishOptions
                {
                    Platform = ctx.Parse.GetValue(platform),
                    Replace = ctx.Parse.GetValue(replace),
                    ReplaceReason = ctx.Parse.GetValue(reason),
                },
            };
            await using var repo = await ctx.OpenWritableRepositoryAsync("import", ct);
            var results = await new Importer(repo).ImportAsync(ctx.Parse.GetValue(file)!, options, ct);
            ctx.Write(results, CliJson.Default.IReadOnlyListPublishResult, o =>
            {
                foreach (var r in results)
                {
                    o.WriteLine($"{(r.Outcome == PublishOutcome.Unchanged ? "unchanged" : "imported")} {r.Product.PathInRepository}: {r.Product.Files} files, {Units.Bytes(r.Product.Size)}, revision {r.Revision}");
                }
            });
            return 0;
        });
        return command;
    }
}
