using Microsoft.Extensions.Time.Testing;

namespace Cairn.Build.Tests;

public sealed class BuildProgressViewTests : IDisposable
{
    private readonly RecipeDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Running_packages_are_redrawn_in_place_and_finished_ones_printed_above()
    {
        _dir.AddSimple("zlib", "1.3");
        _dir.AddSimple("hello", "2.10");
        var graph = Recipes.RecipeGraph.Load(_dir.Root);
        var time = new FakeTimeProvider();
        var output = new StringWriter();
        var view = new BuildProgressView(output, time, width: 40);

        view.Started(graph["zlib"], "not published yet");
        view.Started(graph["zlib"], "build");
        view.Started(graph["hello"], "unpack");
        time.Advance(TimeSpan.FromSeconds(65));
        Assert.EndsWith("\e[2F\r\e[J  zlib/1.3  build  1:05\n  hello/2.10  unpack  1:05\n", output.ToString(), StringComparison.Ordinal);

        view.Finished(new PackageResult { Name = "zlib", Version = "1.3", Status = PackageStatus.Built, Reason = "", Duration = TimeSpan.FromSeconds(65) });
        Assert.EndsWith("\e[2F\r\e[Jzlib/1.3: built and published in 65.0 s\n  hello/2.10  unpack  1:05\n", output.ToString(), StringComparison.Ordinal);

        view.Dispose();
        Assert.EndsWith("\e[1F\r\e[J", output.ToString(), StringComparison.Ordinal);
        var length = output.ToString().Length;
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(length, output.ToString().Length); // no redraw after the end
    }
}
