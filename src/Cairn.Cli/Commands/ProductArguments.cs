using System.CommandLine;
using Cairn.Core;

namespace Cairn.Cli.Commands;

/// <summary>Arguments and options several commands share, defined once.</summary>
public static class ProductArguments
{
    public static Argument<string> One() => new("product") { Description = "NAME/VERSION" };

    public static Argument<string[]> Many() => new("products") { Description = "NAME/VERSION ...", Arity = ArgumentArity.OneOrMore };

    public static Option<string?> Platform() => new("--platform") { Description = "Platform (default: the repository's)" };

    public static Option<long?> Revision() => new("--revision", "-r") { Description = "Read this revision instead of the head" };

    public static Option<string?> Cache() => new("--cache")
    {
        Description = "Cache directory: for a local repository the unpacked-file cache (default: $CAIRN_CACHE or REPO/cache); "
            + "for an http(s) repository the client cache of verified objects (default: $CAIRN_CACHE or ~/.cache/cairn; size limit $CAIRN_CACHE_SIZE, default 10G)",
    };

    public static ProductRef Parse(string text) => ProductRef.Parse(text);
}
