using System.Xml;
using System.Xml.Linq;
using Cairn.Coordination;
using Cairn.Core;

namespace Cairn.Build.Coordinated;

/// <summary>The test cases of a check's JUnit reports, named so that two sites' reports can be compared case by case.</summary>
public static class JunitCases
{
    /// <summary>The check's outcome for the coherence record; without reports the check itself is the one case, named <c>NAME/VERSION check</c>.</summary>
    public static CheckOutcome Outcome(string packageId, IReadOnlyList<string> reports, bool checkPassed, string? failure)
    {
        ArgumentNullException.ThrowIfNull(reports);
        var cases = new List<TestCaseResult>();
        foreach (var report in reports) cases.AddRange(Read(report));
        if (cases.Count == 0)
        {
            cases.Add(new TestCaseResult($"{packageId} check", checkPassed ? TestOutcome.Passed : TestOutcome.Failed, checkPassed ? null : failure));
        }
        else if (!checkPassed && cases.All(c => c.Outcome != TestOutcome.Failed))
        {
            // The script failed though every reported case passed: the script is the failing test.
            cases.Add(new TestCaseResult($"{packageId} check", TestOutcome.Failed, failure));
        }

        return new CheckOutcome(cases.Count(c => c.Outcome == TestOutcome.Passed), cases.Count(c => c.Outcome == TestOutcome.Failed),
            cases.Count(c => c.Outcome == TestOutcome.Skipped), cases);
    }

    /// <summary>The outcome of a build that failed before its check ran.</summary>
    public static CheckOutcome BuildFailed(string packageId, string reason) =>
        new(0, 1, 0, [new TestCaseResult($"{packageId} build", TestOutcome.Failed, reason)]);

    /// <summary>Cases of one report as CLASSNAME.NAME (or NAME).</summary>
    public static IReadOnlyList<TestCaseResult> Read(string path)
    {
        if (new FileInfo(path).Length > TestReport.MaxReportBytes) return [];
        XDocument doc;
        try
        {
            using var reader = XmlReader.Create(path, new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null });
            doc = XDocument.Load(reader);
        }
        catch (XmlException e)
        {
            throw new CairnException(ErrorCode.TestReportInvalid, $"{path}: not a readable JUnit XML report: {e.Message}",
                "the check wrote a broken report; fix the test runner's output", e);
        }

        var result = new List<TestCaseResult>();
        foreach (var c in doc.Descendants().Where(e => e.Name.LocalName == "testcase"))
        {
            var name = (string?)c.Attribute("name") ?? "(unnamed)";
            var cls = (string?)c.Attribute("classname");
            var full = string.IsNullOrEmpty(cls) ? name : $"{cls}.{name}";
            var bad = c.Elements().FirstOrDefault(e => e.Name.LocalName is "failure" or "error");
            if (bad is not null)
            {
                result.Add(new TestCaseResult(full, TestOutcome.Failed, (string?)bad.Attribute("message") ?? bad.Value.Trim()));
            }
            else if (c.Elements().Any(e => e.Name.LocalName == "skipped"))
            {
                result.Add(new TestCaseResult(full, TestOutcome.Skipped));
            }
            else
            {
                result.Add(new TestCaseResult(full, TestOutcome.Passed));
            }
        }

        return result;
    }
}
