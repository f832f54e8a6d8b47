namespace Cairn.Testing;

/// <summary>
/// Names the helper a test's assertions live in when scripts/check-test-assertions.py cannot follow the call (a
/// helper in src/, a delegate): the check then requires the test to call it. docs/contributing.md, "Writing tests".
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
public sealed class AssertsThroughAttribute(string helper) : Attribute
{
    public string Helper { get; } = helper;
}
