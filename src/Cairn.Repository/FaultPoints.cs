namespace Cairn.Repository;

/// <summary>
/// Test-only crash injection: when CAIRN_FAULT_POINT names a point, the process dies there with SIGKILL-like
/// abruptness (no finally blocks, no flush). Used by the crash-consistency tests; inert otherwise.
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
    }
}
