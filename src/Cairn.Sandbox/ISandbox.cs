namespace Cairn.Sandbox;

/// <summary>Runs one command in isolation. Implementations must honour every field of the spec or refuse it.</summary>
public interface ISandbox
{
    /// <summary>
    /// Runs <paramref name="spec"/> to completion, streaming stdout and stderr merged into <paramref name="log"/>.
    /// Limits end the run with a result, not an exception. Cancellation kills the whole process tree, then throws
    /// <see cref="OperationCanceledException"/>.
    /// </summary>
    Task<SandboxResult> RunAsync(SandboxSpec spec, Stream log, CancellationToken cancellationToken);
}
