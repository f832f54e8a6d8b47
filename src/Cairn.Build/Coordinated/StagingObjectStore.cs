using System.Runtime.CompilerServices;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Build.Coordinated;

/// <summary>
/// A site's local object store for one product before upload: one file per object under a directory of the
/// build's work folder, so a large product is staged on disk, not in memory. Only what this build stored is in
/// it, which is exactly the set the gateway is asked about.
/// </summary>
public sealed class StagingObjectStore : IObjectStore
{
    private readonly string _root;

    public StagingObjectStore(string directory)
    {
        _root = Directory.CreateDirectory(directory).FullName;
    }

    private string PathOf(Digest digest)
    {
        var hex = digest.ToString();
        return Path.Combine(_root, hex[..2], hex[2..]);
    }

    public ValueTask<bool> ContainsAsync(Digest digest, CancellationToken ct) => ValueTask.FromResult(File.Exists(PathOf(digest)));

    public async ValueTask<byte[]> GetAsync(Digest digest, CancellationToken ct)
    {
        byte[] data;
        try
        {
            data = await File.ReadAllBytesAsync(PathOf(digest), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw ObjectCodec.Missing(digest, $"the staging store {_root}");
        }

        if (Digest.Of(data) != digest) throw ObjectCodec.Corrupt(digest, $"the staging store {_root}", "its content does not hash to its name");
        return data;
    }

    public async ValueTask PutAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct)
    {
        var path = PathOf(digest);
        if (File.Exists(path)) return;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // Write aside and rename, so a concurrent put of the same object never exposes half a file.
        var temp = $"{path}.{Guid.NewGuid():N}.tmp";
        await File.WriteAllBytesAsync(temp, content.ToArray(), ct).ConfigureAwait(false);
        File.Move(temp, path, overwrite: true);
    }

    // Staged objects only need to outlive this process until they are uploaded.
    public ValueTask FlushAsync(CancellationToken ct) => ValueTask.CompletedTask;

    public ValueTask AbortAsync(CancellationToken ct) => ValueTask.CompletedTask;

    public async IAsyncEnumerable<ObjectInfo> ListAsync([EnumeratorCancellation] CancellationToken ct)
    {
        await Task.Yield();
        foreach (var file in Directory.EnumerateFiles(_root, "*", SearchOption.AllDirectories))
        {
            ct.ThrowIfCancellationRequested();
            var name = Path.GetFileName(Path.GetDirectoryName(file)!) + Path.GetFileName(file);
            if (!Digest.TryParse(name, out var digest)) continue; // a temporary file
            var size = new FileInfo(file).Length;
            yield return new ObjectInfo(digest, size, size);
        }
    }

    public ValueTask<RetainResult> RetainAsync(Func<Digest, bool> isLive, bool dryRun, CancellationToken ct) =>
        throw new NotSupportedException("a staging store is deleted whole, never collected");

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>Deletes the staged objects.</summary>
    public void Delete()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }
}
