namespace Cairn.Repository;

/// <summary>
/// Test-only crash injection: when CAIRN_FAULT_POINT names a point, the process dies there with SIGKILL-like
/// abruptness (no finally blocks, no flush). Used by the crash-consistency tests; inert otherwise. NAME:stop
/// stops the process there instead (SIGSTOP, until a SIGCONT): a barrier that lets a test prove another command
/// ran while this one stood exactly at that point.
/// </summary>
public static class FaultPoints
{
    private static readonly string? Armed = Environment.GetEnvironmentVariable("CAIRN_FAULT_POINT");

    public static void Hit(string point)
    {
        if (Armed is not null && string.Equals(Armed, point, StringComparison.Ordinal))
        {
            // SIGKILL ourselves: no finally blocks, no flushing, exactly like a crash.
            System.Diagnostics.Process.GetCurrentProcess().Kill();
        }

        if (Armed is not null && Armed.Length == point.Length + ":stop".Length && Armed.StartsWith(point, StringComparison.Ordinal) && Armed.EndsWith(":stop", StringComparison.Ordinal))
        {
            // The whole process stops while kill runs; waiting for kill returns once the test sends SIGCONT.
            using var stop = System.Diagnostics.Process.Start("kill", ["-STOP", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            stop.WaitForExit();
        }
    }
}
