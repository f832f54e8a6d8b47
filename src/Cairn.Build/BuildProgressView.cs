using System.Text;
using Cairn.Build.Recipes;

namespace Cairn.Build;

/// <summary>
/// The live progress of 'cairn build' on a terminal: a block at the bottom listing the running packages with their
/// phase and elapsed time, redrawn in place every second, and one line per finished package printed above it.
/// Only for a terminal (it writes ANSI cursor movements); elsewhere the CLI prints plain lines.
/// </summary>
public sealed class BuildProgressView : IBuildMonitor, IDisposable
{
    private static readonly string[] Phases = ["unpack", "build", "check", "publish"];

    private readonly TextWriter _out;
    private readonly TimeProvider _time;
    private readonly int _width;
    private readonly Lock _gate = new();
    private readonly List<Running> _running = [];
    private readonly ITimer _timer;
    private int _drawn;
    private bool _disposed;

    private sealed class Running(string id, long started)
    {
        public string Id { get; } = id;

        public long Started { get; } = started;

        public string Phase { get; set; } = "starting";
    }

    /// <param name="terminal">The terminal's writer (stderr).</param>
    /// <param name="width">Columns: longer lines are cut, so that each takes exactly one row and redrawing stays exact.</param>
    public BuildProgressView(TextWriter terminal, TimeProvider time, int width, TimeSpan? interval = null)
    {
        _out = terminal;
        _time = time;
        _width = Math.Max(20, width);
        var every = interval ?? TimeSpan.FromSeconds(1);
        _timer = time.CreateTimer(_ => Redraw(), null, every, every);
    }

    /// <summary>The terminal's width in columns, or 80 when it cannot be read.</summary>
    public static int ConsoleWidth()
    {
        try
        {
            return Console.WindowWidth > 0 ? Console.WindowWidth : 80;
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or PlatformNotSupportedException)
        {
            return 80;
        }
    }

    public void Started(Recipe recipe, string what)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        lock (_gate)
        {
            var running = _running.Find(r => r.Id == recipe.Id);
            if (running is null) _running.Add(running = new Running(recipe.Id, _time.GetTimestamp()));
            if (Phases.Contains(what)) running.Phase = what;
            DrawLocked(null);
        }
    }

    public void Finished(PackageResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        lock (_gate)
        {
            _running.RemoveAll(r => r.Id == result.Id);
            var line = result.Status switch
            {
                PackageStatus.UpToDate => null,
                PackageStatus.Built => $"{result.Id}: built and published in {result.Duration.TotalSeconds:0.0} s",
                PackageStatus.Failed => $"{result.Id}: FAILED ({result.Reason}){(result.LogFile is null ? "" : $"; log: {result.LogFile}")}",
                _ => $"{result.Id}: {result.Reason}",
            };
            DrawLocked(line);
        }
    }

    public Stream? LiveLog(Recipe recipe) => null;

    private void Redraw()
    {
        lock (_gate) DrawLocked(null);
    }

    /// <summary>Erases the block, prints <paramref name="finished"/> (whole, it scrolls up), draws the block again.</summary>
    private void DrawLocked(string? finished)
    {
        if (_disposed) return;
        var sb = new StringBuilder();
        if (_drawn > 0) sb.Append($"\e[{_drawn}F");
        sb.Append("\r\e[J");
        if (finished is not null) sb.Append(finished).Append('\n');
        foreach (var r in _running)
        {
            var elapsed = _time.GetElapsedTime(r.Started);
            var line = $"  {r.Id}  {r.Phase}  {(int)elapsed.TotalMinutes}:{elapsed.Seconds:00}";
            sb.Append(line.Length < _width ? line : line[..(_width - 1)]).Append('\n');
        }

        _drawn = _running.Count;
        _out.Write(sb.ToString());
        _out.Flush();
    }

    /// <summary>Stops redrawing and erases the block (the summary follows).</summary>
    public void Dispose()
    {
        _timer.Dispose();
        lock (_gate)
        {
            if (_disposed) return;
            if (_drawn > 0) _out.Write($"\e[{_drawn}F\r\e[J");
            _out.Flush();
            _disposed = true;
        }
    }
}
