using System.CommandLine;
using System.Text;
using Cairn.Coordination;
using Cairn.Core;
using Cairn.Gateway;
using Cairn.Repository;
using Cairn.Repository.Backends;
using Cairn.Cli.Commands.Serve;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Cairn.Cli.Commands.Gateway;

/// <summary>
/// cairn gateway: the one service through which sites publish (docs/coordination.md, "The gateway"), and the
/// operator's subcommands that work on its coordination database directly (sites, tokens, channel policies).
/// </summary>
public static class GatewayCommand
{
    private static readonly Option<string?> Store = new("--store")
    {
        Description = "The repository the gateway publishes into: a directory or s3://BUCKET/PREFIX?endpoint=URL (default: --repo / $CAIRN_REPO)",
        Recursive = true,
    };

    private static readonly Option<string?> Db = new("--db")
    {
        Description = "Coordination database: sqlite:FILE or postgres://USER:PASSWORD@HOST:PORT/DATABASE[?schema=S] (default: sqlite:STORE/gateway.db)",
        Recursive = true,
    };

    public static Command Create()
    {
        var listen = new Option<string>("--listen")
        {
            Description = "Address to listen on (http://ADDRESS:PORT; port 0 picks a free one)",
            DefaultValueFactory = _ => "http://127.0.0.1:8090",
        };
        var maxObject = new Option<int>("--max-object-size") { Description = "Largest object a site may upload, in bytes", DefaultValueFactory = _ => new GatewayOptions().MaxObjectSize };
        var leaseTtl = new Option<int>("--lease-ttl") { Description = "Seconds a commit's lease lives (a gateway killed mid-commit blocks that product this long)", DefaultValueFactory = _ => 300 };
        var leaseWait = new Option<int>("--lease-wait") { Description = "Seconds a commit waits for a lease another commit holds", DefaultValueFactory = _ => 120 };
        var operatorToken = OperatorToken.TokenFileOption();
        var basePath = OperatorToken.BasePathOption();
        var requireToken = OperatorToken.RequireTokenOption();
        var requireSiteKeys = new Option<bool>("--require-site-keys") { Description = "Refuse commits from sites without a registered key (cairn gateway site add --key); otherwise their statements are stored unchecked" };
        var command = new Command("gateway", "Run the gateway through which CI sites claim jobs and publish (signed) into the repository")
        {
            Store, Db, listen, maxObject, leaseTtl, leaseWait, basePath, operatorToken, requireToken, requireSiteKeys,
            SiteCommand(), TokenCommand(), PolicyCommand(),
        };
        command.SetHandler(async (ctx, ct) =>
        {
            var storePath = StorePath(ctx);
            var storeLocation = StoreLocation(ctx);
            var gatewayOptions = new GatewayOptions
            {
                MaxObjectSize = Positive(ctx.Parse.GetValue(maxObject), "--max-object-size"),
                LeaseTtl = TimeSpan.FromSeconds(Positive(ctx.Parse.GetValue(leaseTtl), "--lease-ttl")),
                LeaseWait = TimeSpan.FromSeconds(Positive(ctx.Parse.GetValue(leaseWait), "--lease-wait")),
                RequireSiteKeys = ctx.Parse.GetValue(requireSiteKeys),
            };
            var verbose = ctx.Parse.GetValue(GlobalOptions.Verbose);
            using var loggers = LoggerFactory.Create(b => b
                .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; })
                .AddFilter((_, level) => level >= (verbose ? LogLevel.Information : LogLevel.Warning)));
            var log = loggers.CreateLogger("cairn.gateway");
            await using var store = await OpenDatabaseAsync(ctx, ct);
            await using var repository = await RepositoryOpener.OpenWritableAsync(storeLocation, ctx.OpenSettings(), ct);
            await using var service = new GatewayService(store, repository, gatewayOptions, log);
            var app = GatewayHost.Build(new GatewayHostOptions
            {
                Service = service,
                RepositoryDirectory = (storeLocation as DirectoryLocation)?.Path,
                Listen = ctx.Parse.GetValue(listen)!,
                BasePath = OperatorToken.BasePath(ctx.Parse.GetValue(basePath)),
                OperatorToken = await OperatorToken.ReadAsync(ctx.Parse.GetValue(operatorToken), ct),
                RequireSignIn = OperatorToken.RequireSignIn(ctx.Parse.GetValue(requireToken), ctx.Parse.GetValue(operatorToken)),
            }, WebHostRunner.Logging(verbose));
            await WebHostRunner.RunAsync(ctx, app, ctx.Parse.GetValue(listen)!, addresses => $"gateway for {storePath} on {addresses}", ct);

            return 0;
        });
        return command;
    }

    private static int Positive(int value, string option) =>
        value > 0 ? value : throw new CairnException(ErrorCode.Usage, $"{option} must be positive", $"e.g. {option} 60");

    private static string StorePath(CliContext ctx) => ctx.Parse.GetValue(Store) ?? ctx.RepositoryPath;

    /// <summary>The repository the gateway writes: a directory or an s3:// bucket, never an http(s) server.</summary>
    private static WritableLocation StoreLocation(CliContext ctx) =>
        RepositoryLocation.Parse(StorePath(ctx)) as WritableLocation
        ?? throw new CairnException(ErrorCode.Usage, "the gateway writes its store: it must be a directory or s3:// URL, not an http(s) server", "pass --store DIR");

    private static async Task<ICoordinationStore> OpenDatabaseAsync(CliContext ctx, CancellationToken ct)
    {
        var url = ctx.Parse.GetValue(Db);
        if (url is null)
        {
            url = StoreLocation(ctx) is DirectoryLocation directory
                ? "sqlite:" + Path.Combine(directory.FullPath, "gateway.db")
                : throw new CairnException(ErrorCode.Usage, "an s3:// store needs --db", "pass --db sqlite:FILE or --db postgres://…");
        }

        return await CoordinationDatabase.OpenAsync(url, ctx.Time, ctx.Logger, ct);
    }

    // ---- operator subcommands: they work on the database directly, with or without a running gateway

    private static Command SiteCommand()
    {
        var name = new Argument<string>("name") { Description = "The site's name (letters, digits, . _ -), e.g. jenkins-cpt" };
        var platform = new Option<string>("--platform") { Description = "The platform it builds, e.g. linux-x86_64", Required = true };
        var environment = new Option<string?>("--environment") { Description = "The build environment product it has (NAME/VERSION)" };
        var labels = new Option<string[]>("--label") { Description = "A label (repeatable), e.g. gpu", Arity = ArgumentArity.ZeroOrMore };
        var key = new Option<string?>("--key") { Description = "The site's public key file (cairn key generate --builder -o SITE.key; give SITE.key.pub): its build statements must be signed by it" };
        var add = new Command("add", "Register a site (or update its capabilities)") { name, platform, environment, labels, key };
        add.SetHandler(async (ctx, ct) =>
        {
            var publicKey = ctx.Parse.GetValue(key) is { } keyFile ? Cairn.Trust.Keys.Encode(Cairn.Trust.Keys.ReadPublic(keyFile)) : null;
            await using var store = await OpenDatabaseAsync(ctx, ct);
            var site = await store.RegisterSiteAsync(ctx.Parse.GetValue(name)!,
                new SiteCapabilities(ctx.Parse.GetValue(platform)!, ctx.Parse.GetValue(environment), ctx.Parse.GetValue(labels) ?? []), ct);
            if (publicKey is not null) site = await store.SetSiteKeyAsync(site.Name, publicKey, ct);
            ctx.Write(site, CliJson.Default.Site, o => o.WriteLine($"site {site.Name}: platform {site.Capabilities.Platform}, environment {site.Capabilities.Environment ?? "none"}, labels [{string.Join(", ", site.Capabilities.Labels)}]{(site.PublicKey is null ? "" : $", key {Cairn.Trust.Keys.Fingerprint(Cairn.Trust.Keys.DecodePublic(site.PublicKey)!)}")}"));
            return 0;
        });

        var list = new Command("list", "List the registered sites");
        list.SetHandler(async (ctx, ct) =>
        {
            await using var store = await OpenDatabaseAsync(ctx, ct);
            var sites = await store.ListSitesAsync(ct);
            ctx.Write(sites, CliJson.Default.IReadOnlyListSite, o =>
            {
                foreach (var s in sites) o.WriteLine($"{s.Name}\t{s.Capabilities.Platform}\t{s.Capabilities.Environment ?? "-"}\t{string.Join(",", s.Capabilities.Labels)}");
            });
            return 0;
        });
        return new Command("site", "Register the CI sites that may build and publish") { add, list };
    }

    private static Command TokenCommand() =>
        new("token", "Issue, list and revoke site tokens") { TokenIssueCommand(), TokenRevokeCommand(), TokenListCommand() };

    private static Command TokenIssueCommand()
    {
        var site = new Argument<string>("site") { Description = "The registered site the token proves" };
        var paths = new Option<string[]>("--path") { Description = "Repository path prefix the token may publish under (repeatable; default: / = everything)", Arity = ArgumentArity.ZeroOrMore };
        var channels = new Option<string[]>("--channel") { Description = "Channel it may publish to (repeatable; default: * = any)", Arity = ArgumentArity.ZeroOrMore };
        var output = new Option<string?>("--out") { Description = "Write the token to this file (mode 0600) instead of printing it" };
        var issue = new Command("issue", "Issue a site token; its secret is shown once (or written to --out) and only its hash is kept") { site, paths, channels, output };
        issue.SetHandler(async (ctx, ct) =>
        {
            var scope = new TokenScope(
                ctx.Parse.GetValue(paths) is { Length: > 0 } p ? p : ["/"],
                ctx.Parse.GetValue(channels) is { Length: > 0 } c ? c : ["*"]);
            foreach (var prefix in scope.PathPrefixes) RepositoryPaths.Normalize(prefix);
            foreach (var channel in scope.Channels.Where(c => c != "*")) Names.ValidateChannel(channel);
            await using var store = await OpenDatabaseAsync(ctx, ct);
            var out_ = ctx.Parse.GetValue(output);
            if (out_ is not null && File.Exists(out_))
            {
                throw new CairnException(ErrorCode.Usage, $"'{out_}' exists", "tokens are never written over an existing file: choose another");
            }

            var token = await store.IssueTokenAsync(ctx.Parse.GetValue(site)!, scope, ct);
            if (out_ is not null)
            {
                WriteSecretFile(out_, token.Secret);
                ctx.Write(new TokenFileOutput(token.TokenId, token.Site, token.Scope, out_), CliJson.Default.TokenFileOutput,
                    o => o.WriteLine($"token {token.TokenId} for site {token.Site} ({token.Scope}) written to {out_} (0600)"));
            }
            else
            {
                ctx.Write(new TokenSecretOutput(token.TokenId, token.Site, token.Scope, token.Secret), CliJson.Default.TokenSecretOutput,
                    o =>
                    {
                        o.WriteLine(token.Secret);
                        ctx.Error.WriteLine($"token {token.TokenId} for site {token.Site} ({token.Scope}); the secret above is shown only once");
                    });
            }

            return 0;
        });
        return issue;
    }

    /// <summary>A new file only its owner can read; never over an existing one.</summary>
    private static void WriteSecretFile(string path, string secret)
    {
        using var f = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        f.Write(Encoding.ASCII.GetBytes(secret + "\n"));
    }

    private static Command TokenRevokeCommand()
    {
        var id = new Argument<string>("token-id") { Description = "The token's id (cairn gateway token list SITE shows them)" };
        var revoke = new Command("revoke", "Revoke a token from now on") { id };
        revoke.SetHandler(async (ctx, ct) =>
        {
            await using var store = await OpenDatabaseAsync(ctx, ct);
            var tokenId = ctx.Parse.GetValue(id)!;
            if (!await store.RevokeTokenAsync(tokenId, ct))
            {
                throw new CairnException(ErrorCode.Usage, $"no live token {tokenId}", "cairn gateway token list SITE shows the tokens and whether they are revoked");
            }

            ctx.Write(new TokenRevokedOutput(tokenId, Revoked: true), CliJson.Default.TokenRevokedOutput, o => o.WriteLine($"token {tokenId} revoked"));
            return 0;
        });
        return revoke;
    }

    private static Command TokenListCommand()
    {
        var listSite = new Argument<string>("site") { Description = "The site whose tokens to list" };
        var list = new Command("list", "List a site's tokens (never their secrets)") { listSite };
        list.SetHandler(async (ctx, ct) =>
        {
            await using var store = await OpenDatabaseAsync(ctx, ct);
            var tokens = await store.ListTokensAsync(ctx.Parse.GetValue(listSite)!, ct);
            ctx.Write(tokens, CliJson.Default.IReadOnlyListTokenInfo, o =>
            {
                foreach (var t in tokens)
                {
                    o.WriteLine($"{t.TokenId}\t{t.CreatedAt:u}\t{(t.RevokedAt is { } r ? $"revoked {r:u}" : "live")}\t{t.Scope}");
                }
            });
            return 0;
        });
        return list;
    }

    private static Command PolicyCommand()
    {
        var channel = new Argument<string>("channel") { Description = "The channel, e.g. stable" };
        var k = new Argument<int>("k") { Description = "How many sites must agree (same output root, every check passing) before a build is promoted to it" };
        var set = new Command("set", "Set how many agreeing sites a channel needs") { channel, k };
        set.SetHandler(async (ctx, ct) =>
        {
            await using var store = await OpenDatabaseAsync(ctx, ct);
            var policy = new ChannelPolicy(ctx.Parse.GetValue(channel)!, ctx.Parse.GetValue(k));
            await store.SetChannelPolicyAsync(policy, ct);
            ctx.Write(policy, CliJson.Default.ChannelPolicy, o => o.WriteLine($"channel {policy.Channel}: {policy.RequiredAgreeingSites} agreeing site(s)"));
            return 0;
        });
        return new Command("policy", "Channel promotion policies") { set };
    }
}

/// <summary>cairn gateway token issue --out FILE --json: the secret is in the file, not the output.</summary>
public sealed record TokenFileOutput(string TokenId, string Site, TokenScope Scope, string File);

/// <summary>cairn gateway token issue --json: the secret, shown once.</summary>
public sealed record TokenSecretOutput(string TokenId, string Site, TokenScope Scope, string Token);

/// <summary>cairn gateway token revoke --json.</summary>
public sealed record TokenRevokedOutput(string TokenId, bool Revoked);
