using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;

namespace Cairn.Coordination.Sql;

/// <summary>One numbered schema script. Versions are applied in order and recorded in <c>schema_migrations</c>.</summary>
public sealed record Migration(int Version, string Name, string Sql)
{
    /// <summary>
    /// The scripts embedded in a backend's assembly as <c>Migrations/NNNN_name.sql</c>. Numbers must be 1, 2, 3, …
    /// without gaps, so that a missing file is noticed at start-up rather than skipped silently.
    /// </summary>
    public static IReadOnlyList<Migration> FromResources(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        var pattern = new Regex(@"\.Migrations\.(\d{4})_([A-Za-z0-9_]+)\.sql$");
        var list = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            var m = pattern.Match(resource);
            if (!m.Success) continue;
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            list.Add(new Migration(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), m.Groups[2].Value, reader.ReadToEnd()));
        }

        list.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i].Version != i + 1)
            {
                throw new InvalidOperationException($"{assembly.GetName().Name}: migration {i + 1} is missing (found {list[i].Version} {list[i].Name})");
            }
        }

        return list;
    }
}
