using System.Text;

namespace Cairn.Cli.Tests.Infrastructure;

/// <summary>
/// Byte-for-byte tree comparison: names, kinds, symlink targets and the owner-execute bit here; content by
/// diff(1), which reads both trees once and compares link targets instead of following them.
/// </summary>
public static class TreeAssert
{
    public static async Task EqualAsync(string expected, string actual, CancellationToken ct)
    {
        var problems = new StringBuilder();
        var files = 0;
        Compare(expected, actual, "", problems, ref files);
        Assert.True(problems.Length == 0, $"trees differ ({expected} vs {actual}):\n{problems}");
        Assert.True(files > 0, $"{expected} holds no files; the comparison proves nothing");
        Tools.Require("diff");
        var diff = await Exec.RunAsync(["diff", "-r", "--no-dereference", expected, actual], ct);
        Assert.True(diff.ExitCode == 0, diff.ToString());
    }

    private static void Compare(string a, string b, string rel, StringBuilder problems, ref int files)
    {
        var left = Entries(a);
        var right = Entries(b);
        foreach (var name in left.Keys.Union(right.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            var path = rel + name;
            if (problems.Length > 4000) return;
            if (!left.TryGetValue(name, out var l)) { problems.AppendLine($"extra: {path}"); continue; }
            if (!right.TryGetValue(name, out var r)) { problems.AppendLine($"missing: {path}"); continue; }
            var lt = Kind(l);
            var rt = Kind(r);
            if (lt != rt) { problems.AppendLine($"kind: {path} is {lt} vs {rt}"); continue; }
            switch (lt)
            {
                case "symlink":
                    if (l.LinkTarget != r.LinkTarget) problems.AppendLine($"target: {path} -> {l.LinkTarget} vs {r.LinkTarget}");
                    break;
                case "dir":
                    Compare(l.FullName, r.FullName, path + "/", problems, ref files);
                    break;
                default:
                    files++;
                    var lx = (File.GetUnixFileMode(l.FullName) & UnixFileMode.UserExecute) != 0;
                    var rx = (File.GetUnixFileMode(r.FullName) & UnixFileMode.UserExecute) != 0;
                    if (lx != rx) problems.AppendLine($"exec bit: {path} {lx} vs {rx}");
                    if (l is FileInfo lf && r is FileInfo rf && lf.Length != rf.Length) problems.AppendLine($"size: {path} {lf.Length} vs {rf.Length}");
                    break;
            }
        }
    }

    private static Dictionary<string, FileSystemInfo> Entries(string dir) =>
        new DirectoryInfo(dir).EnumerateFileSystemInfos().ToDictionary(i => i.Name, StringComparer.Ordinal);

    private static string Kind(FileSystemInfo i) =>
        i.LinkTarget is not null ? "symlink" : i is DirectoryInfo ? "dir" : "file";
}
