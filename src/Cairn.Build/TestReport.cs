using System.Xml;
using System.Xml.Linq;
using Cairn.Core;

namespace Cairn.Build;

/// <summary>
/// Test results of a check: its exit status, plus JUnit XML reports the check script may leave in
/// $WORKSPACE/junit/*.xml (docs/recipes.md). A report with failures fails the check even if the script exited 0.
/// </summary>
public static class TestReport
{
    /// <summary>Folder of the workspace where a check leaves JUnit XML files.</summary>
    public const string JunitFolder = "junit";

    /// <summary>Larger reports are refused: a runaway check should not make cairn read gigabytes of XML.</summary>
    public const long MaxReportBytes = 16L << 20;

    /// <summary>The JUnit reports the check left, sorted by name.</summary>
    public static IReadOnlyList<string> Find(string hostWorkspace)
    {
        var dir = Path.Combine(hostWorkspace, JunitFolder);
        if (!Directory.Exists(dir)) return [];
        return [.. Directory.EnumerateFiles(dir, "*.xml").Where(f => new FileInfo(f).LinkTarget is null).Order(StringComparer.Ordinal)];
    }

    /// <summary>Counts over every report; without reports the check script itself counts as one test.</summary>
    public static TestSummary Summarize(int checkExitCode, IReadOnlyList<string> reports, TimeSpan duration)
    {
        ArgumentNullException.ThrowIfNull(reports);
        var text = $"check exit {checkExitCode} in {duration.TotalSeconds:0.0} s";
        if (reports.Count == 0)
        {
            return checkExitCode == 0 ? new TestSummary(1, 0, 0, text) : new TestSummary(0, 1, 0, text);
        }

        int passed = 0, failed = 0, skipped = 0;
        foreach (var report in reports)
        {
            var (p, f, s) = Count(report);
            passed += p;
            failed += f;
            skipped += s;
        }

        if (checkExitCode != 0 && failed == 0) failed = 1;
        var names = string.Join(", ", reports.Select(r => $"{JunitFolder}/{Path.GetFileName(r)}"));
        return new TestSummary(passed, failed, skipped, $"{text}; JUnit: {names}");
    }

    /// <summary>(passed, failed, skipped) of one JUnit file: testcase elements, or the testsuite counters when it lists none.</summary>
    public static (int Passed, int Failed, int Skipped) Count(string path)
    {
        if (new FileInfo(path).Length > MaxReportBytes)
        {
            throw new CairnException(ErrorCode.TestReportInvalid, $"{path}: the JUnit report is larger than {MaxReportBytes >> 20} MiB");
        }

        XDocument doc;
        try
        {
            var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null };
            using var reader = XmlReader.Create(path, settings);
            doc = XDocument.Load(reader);
        }
        catch (XmlException e)
        {
            throw new CairnException(ErrorCode.TestReportInvalid, $"{path}: not a readable JUnit XML report: {e.Message}",
                "the check wrote a broken report; fix the test runner's output", e);
        }

        var cases = doc.Descendants().Where(e => e.Name.LocalName == "testcase").ToList();
        if (cases.Count > 0)
        {
            int p = 0, f = 0, s = 0;
            foreach (var c in cases)
            {
                var children = c.Elements().Select(e => e.Name.LocalName).ToList();
                if (children.Contains("failure") || children.Contains("error")) f++;
                else if (children.Contains("skipped")) s++;
                else p++;
            }

            return (p, f, s);
        }

        // Some runners only write counters.
        int Sum(string attribute) => doc.Descendants().Where(e => e.Name.LocalName == "testsuite")
            .Sum(e => int.TryParse((string?)e.Attribute(attribute), out var n) ? n : 0);
        var tests = Sum("tests");
        var failures = Sum("failures") + Sum("errors");
        var skips = Sum("skipped") + Sum("disabled");
        return (Math.Max(0, tests - failures - skips), failures, skips);
    }
}
