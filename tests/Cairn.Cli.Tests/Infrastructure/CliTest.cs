namespace Cairn.Cli.Tests.Infrastructure;

/// <summary>Base of the test classes: a per-test deadline, so a hung child process fails the test instead of the run.</summary>
public abstract class CliTest : IDisposable
{
    private readonly CancellationTokenSource _deadline = new(TimeSpan.FromMinutes(3));

    protected CancellationToken Ct => _deadline.Token;

    public void Dispose()
    {
        _deadline.Dispose();
        GC.SuppressFinalize(this);
    }
}
