using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;
using Cairn.Build;
using Cairn.Build.Coordinated;
using Cairn.Coordination;
using Cairn.Core;
using Cairn.Gateway.Client;
using Cairn.Repository;
using Cairn.Repository.Http;

namespace Cairn.Cli.Commands.Build;

/// <summary>
/// <c>cairn build --gateway URL --site NAME --token-file F</c>: the site reads the repository the gateway serves
/// (read-only, through a local client cache), builds in a local work directory, and publishes only through the
/// gateway's API (docs/coordination.md, "Wiring a site's CI").
/// </summary>
public sealed partial class GatewaySite
{
    public Option<string?> Gateway { get; } = new("--gateway") { Description = "Build as a site of this gateway (http(s)://HOST:PORT): claim jobs there, read the repository it serves and publish through it; replaces --repo" };

    public Option<string?> TokenFile { get; } = new("--token-file") { Description = "With --gateway: the file holding this site's token (cairn_<id>_<secret>), e.g. a CI secret file" };

    public Option<string> Channel { get; } = new("--channel") { Description = "With --gateway: the channel each commit goes to", DefaultValueFactory = _ => ChannelPolicy.Testing };

    public Option<string> ClaimTtl { get; } = new("--claim-ttl") { Description = "With --gateway: how long a claim lives without a heartbeat (heartbeats every third of it), e.g. 60s, 5m", DefaultValueFactory = _ => "60s" };

    public Option<string> PollMax { get; } = new("--poll-max") { Description = "With --gateway: the longest wait between asks while another site builds a job (back-off from a tenth of it)", DefaultValueFactory = _ => "15s" };

    public Option<string?> Work { get; } = new("--work") { Description = "With --gateway: the site's local work directory (builds, staging, caches); default ~/.cache/cairn/site/NAME" };

    public Option<string[]> Labels { get; } = new("--label") { Description = "With --gateway: a capability label this site declares (repeatable), e.g. gpu", AllowMultipleArgumentsPerToken = true };

    public Option<string?> Environment { get; } = new("--environment") { Description = "With --gateway: the build environment product NAME/VERSION this site declares it builds in" };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Gateway, TokenFile, Channel, ClaimTtl, PollMax, Work, Labels, Environment }) command.Options.Add(option);
    }

    public bool Enabled(CliContext ctx) => ctx.Parse.GetValue(Gateway) is not null;

    [GeneratedRegex("^cairn_[0-9a-f]{16}_[A-Za-z0-9_-]+$")]
    private static partial Regex TokenShape();

    /// <summary>The site token from the file: one line, the shape the gateway issues.</summary>
    public static string ReadToken(string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw new CairnException(ErrorCode.SiteTokenFileInvalid, "--gateway needs --token-file: the file holding this site's token",
                "write the token the gateway's operator issued (cairn gateway token issue) into a private file and pass --token-file FILE");
        }

        string text;
        try
        {
            text = File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CairnException(ErrorCode.SiteTokenFileInvalid, $"cannot read the site token file '{path}': {e.Message}",
                "check the path and that this user may read it (a CI secret file)", e);
        }

        if (!TokenShape().IsMatch(text))
        {
            throw new CairnException(ErrorCode.SiteTokenFileInvalid,
                text.Length == 0 ? $"the site token file '{path}' is empty" : $"the site token file '{path}' does not hold one site token (cairn_<16 hex>_<secret>)",
                "write exactly the token the gateway's operator issued, alone on its line");
        }

        return text;
    }

    /// <summary>"60s", "5m", "500ms", "1h" or a number of seconds.</summary>
    public static TimeSpan ParseDuration(string text, string option)
    {
        var m = Regex.Match(text.Trim(), "^([0-9]+(?:\\.[0-9]+)?)(ms|s|m|h)?$");
        if (!m.Success || !double.TryParse(m.Groups[1].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n <= 0)
        {
            throw new CairnException(ErrorCode.Usage, $"{option} '{text}' is not a duration", $"e.g. {option} 60s, 5m or 500ms");
        }

        return m.Groups[2].Value switch
        {
            "ms" => TimeSpan.FromMilliseconds(n),
            "m" => TimeSpan.FromMinutes(n),
            "h" => TimeSpan.FromHours(n),
            _ => TimeSpan.FromSeconds(n),
        };
    }

    /// <summary>An opened site: the gateway client, the repository it serves, the publish target, and the options to build with.</summary>
    public sealed class Session : IAsyncDisposable
    {
        public required GatewayClient Client { get; init; }

        public required ProductRepository Reader { get; init; }

        public required GatewayPublishTarget Target { get; init; }

        public required StackOptions Options { get; init; }

        public async ValueTask DisposeAsync()
        {
            Target.Dispose();
            await Reader.DisposeAsync().ConfigureAwait(false);
            Client.Dispose();
        }
    }

    /// <summary>Authenticates, declares the site's capabilities and opens the served repository.</summary>
    public async Task<Session> OpenAsync(CliContext ctx, StackOptions options, string? explicitSite, int buildSlots, CancellationToken ct)
    {
        var parse = ctx.Parse;
        var url = parse.GetValue(Gateway)!;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var baseUrl))
        {
            throw new CairnException(ErrorCode.Usage, $"--gateway '{url}' is not a URL", "pass --gateway http(s)://HOST:PORT");
        }

        var ttl = ParseDuration(parse.GetValue(ClaimTtl)!, "--claim-ttl");
        var pollMax = ParseDuration(parse.GetValue(PollMax)!, "--poll-max");
        var client = new GatewayClient(baseUrl, ReadToken(parse.GetValue(TokenFile)), time: ctx.Time);
        ProductRepository? reader = null;
        try
        {
            var who = await client.WhoAmIAsync(ct).ConfigureAwait(false);
            // Without --site the token names the site.
            if (explicitSite is not null && !string.Equals(explicitSite, who.Site, StringComparison.Ordinal))
            {
                throw new CairnException(ErrorCode.SiteTokenFileInvalid,
                    $"the token in '{parse.GetValue(TokenFile)}' belongs to site {who.Site}, not to --site {explicitSite}",
                    "pass the token issued for this site, or --site with the token's site name");
            }

            var work = Path.GetFullPath(parse.GetValue(Work) ?? Path.Combine(HttpRepository.DefaultCacheDirectory, "site", who.Site));
            Directory.CreateDirectory(work);
            // Read like any remote repository (proxies, --trust, time-outs), with the site's own client cache.
            reader = await HttpRepository.OpenAsync(ctx.RemoteRepositoryOptions(baseUrl.AbsoluteUri) with
            {
                CacheDirectory = Path.Combine(work, "http-cache"),
            }, ctx.Time, ctx.Logger, ct).ConfigureAwait(false);
            var platform = options.Platform ?? reader.DefaultPlatform;
            await client.DeclareCapabilitiesAsync(new SiteCapabilities(platform, parse.GetValue(Environment), parse.GetValue(Labels) ?? []), ct).ConfigureAwait(false);
            var target = new GatewayPublishTarget(client, reader, who.Site, new GatewaySiteOptions
            {
                StagingDirectory = Path.Combine(work, "staging"),
                Channel = parse.GetValue(Channel)!,
                ClaimTtl = ttl,
                PollInitial = pollMax / 10,
                PollMax = pollMax,
                BuildSlots = buildSlots,
            }, ctx.Time, ctx.Logger);
            return new Session
            {
                Client = client,
                Reader = reader,
                Target = target,
                Options = options with
                {
                    PublishTarget = target,
                    // Packages waiting for other sites take no build slot: the target limits the builds to --jobs.
                    Jobs = 256,
                    BuildSite = who.Site,
                    Platform = platform,
                    BuildsDirectory = Path.Combine(work, "builds"),
                    CacheDirectory = Path.Combine(work, "objects"),
                },
            };
        }
        catch
        {
            if (reader is not null) await reader.DisposeAsync().ConfigureAwait(false);
            client.Dispose();
            throw;
        }
    }
}
