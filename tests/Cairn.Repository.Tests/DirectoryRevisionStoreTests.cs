namespace Cairn.Repository.Tests;

/// <summary>The suite against the directory backend.</summary>
public sealed class DirectoryRevisionStoreConformanceTests : RevisionStoreConformance, IDisposable
{
    private readonly TempDirectory _dir = new();

    private string Root => _dir.Sub("repo");

    protected override async Task<WritableRepository> InitAsync(IManifestSigner? signer = null) =>
        await FileSystem.DirectoryRepository.InitAsync(Root, "conformance", "linux-x86_64", TimeProvider.System, null, default, signer);

    protected override Task<WritableRepository> ReopenAsync(IManifestSigner? signer = null) =>
        FileSystem.DirectoryRepository.OpenAsync(Root, TimeProvider.System, null, TimeSpan.FromMinutes(1), default, signer);

    protected override Task WriteRawAsync(string path, byte[] bytes) => File.WriteAllBytesAsync(Path.Combine(Root, path), bytes);

    protected override async Task<byte[]?> ReadRawAsync(string path) =>
        File.Exists(Path.Combine(Root, path)) ? await File.ReadAllBytesAsync(Path.Combine(Root, path)) : null;

    public void Dispose() => _dir.Dispose();
}
