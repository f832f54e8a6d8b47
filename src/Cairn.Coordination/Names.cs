using System.Text.RegularExpressions;
using Cairn.Core;

namespace Cairn.Coordination;

/// <summary>Validation of the names and durations the store accepts, so that bad input fails with a clear message.</summary>
public static partial class Names
{
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex SiteOrChannel();

    public static void ValidateSite(string site)
    {
        ArgumentNullException.ThrowIfNull(site);
        if (!SiteOrChannel().IsMatch(site))
        {
            throw new CairnException(ErrorCode.Usage, $"'{site}' is not a site name", "use up to 64 letters, digits and . _ - (e.g. jenkins-cpt)");
        }
    }

    public static void ValidateChannel(string channel)
    {
        ArgumentNullException.ThrowIfNull(channel);
        if (!SiteOrChannel().IsMatch(channel))
        {
            throw new CairnException(ErrorCode.Usage, $"'{channel}' is not a channel name", "use up to 64 letters, digits and . _ - (e.g. testing, stable)");
        }
    }

    public static void ValidateBuildKey(string buildKey)
    {
        if (string.IsNullOrWhiteSpace(buildKey) || buildKey.Length > 256)
        {
            throw new CairnException(ErrorCode.Usage, $"'{buildKey}' is not a build key", "pass the build key cairn plan prints");
        }
    }

    public static void ValidateTtl(TimeSpan ttl)
    {
        if (ttl <= TimeSpan.Zero || ttl > TimeSpan.FromDays(7))
        {
            throw new CairnException(ErrorCode.Usage, $"a time-to-live of {ttl} is out of range", "use a positive TTL of at most 7 days, and heartbeat well within it");
        }
    }
}
