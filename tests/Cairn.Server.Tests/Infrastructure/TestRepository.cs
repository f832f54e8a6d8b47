using System.Security.Cryptography;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;

namespace Cairn.Server.Tests.Infrastructure;

/// <summary>A repository with two products (small files, an executable, a symlink, an empty directory, chunked large files).</summary>
public static class TestRepository
{
    public static async Task CreateAsync(string path, string work)
    {
        await using var repo = await DirectoryRepository.InitAsync(path, "dist-test", "linux-x86_64", TimeProvider.System, null, default);
        var hello = Path.Combine(work, "hello");
        Directory.CreateDirectory(Path.Combine(hello, "bin"));
        Directory.CreateDirectory(Path.Combine(hello, "share", "empty"));
        File.WriteAllText(Path.Combine(hello, "README"), "hello, distribution\n");
        File.WriteAllText(Path.Combine(hello, "bin", "hello"), "#!/bin/sh\necho hello\n");
        File.SetUnixFileMode(Path.Combine(hello, "bin", "hello"), (UnixFileMode)0x1ED);
        File.WriteAllBytes(Path.Combine(hello, "bin", "big"), Random(3_000_000, 1));
        File.CreateSymbolicLink(Path.Combine(hello, "link"), "README");
        await repo.PublishDirectoryAsync(new ProductRef("hello", "1.0"), hello, new PublishOptions { PublishedBy = "test" }, null, default);

        var data = Path.Combine(work, "data");
        Directory.CreateDirectory(Path.Combine(data, "many"));
        for (var i = 0; i < 150; i++) File.WriteAllText(Path.Combine(data, "many", $"f{i:D3}.txt"), $"file {i}\n" + new string('x', i * 13));
        File.WriteAllBytes(Path.Combine(data, "blob.bin"), Random(1_500_000, 2));
        await repo.PublishDirectoryAsync(new ProductRef("data", "2.0"), data, new PublishOptions { PublishedBy = "test", Dependencies = ["hello/1.0"] }, null, default);
    }

    public static byte[] Random(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Every entry below a directory: path, kind, mode bits that matter, and content hash or link target.</summary>
    public static List<string> Describe(string root)
    {
        var result = new List<string>();
        foreach (var entry in new DirectoryInfo(root).EnumerateFileSystemInfos("*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(root, entry.FullName);
            if (entry.LinkTarget is { } target) result.Add($"{rel} -> {target}");
            else if (entry is DirectoryInfo) result.Add($"{rel}/");
            else
            {
                var exec = (File.GetUnixFileMode(entry.FullName) & UnixFileMode.UserExecute) != 0;
                result.Add($"{rel} {(exec ? "x" : "-")} {Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(entry.FullName)))}");
            }
        }

        result.Sort(StringComparer.Ordinal);
        return result;
    }

    /// <summary>Checks that every object file in a client cache hashes to its name and no temporary is left.</summary>
    public static int AssertCacheSound(string cache)
    {
        var objects = Directory.Exists(Path.Combine(cache, "objects"))
            ? Directory.GetFiles(Path.Combine(cache, "objects"), "*", SearchOption.AllDirectories)
            : [];
        foreach (var file in objects)
        {
            Assert.Equal(Path.GetFileName(file), Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file))));
        }

        Assert.Empty(Directory.Exists(Path.Combine(cache, "tmp")) ? Directory.GetFiles(Path.Combine(cache, "tmp")) : []);
        return objects.Length;
    }

    public static long CacheBytes(string cache) =>
        new[] { "objects", "indexes" }.Select(d => Path.Combine(cache, d)).Where(Directory.Exists)
            .SelectMany(d => Directory.GetFiles(d, "*", SearchOption.AllDirectories)).Sum(f => new FileInfo(f).Length);

    /// <summary>Flips one byte inside the stored bytes of an object in the repository's largest pack.</summary>
    public static Digest CorruptLargestObject(string repository)
    {
        var pack = Directory.GetFiles(Path.Combine(repository, "packs"), "*.pack").OrderByDescending(f => new FileInfo(f).Length).First();
        var idx = File.ReadAllBytes(Path.ChangeExtension(pack, ".idx"));
        var count = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(idx.AsSpan(4));
        var (best, offset, stored) = (default(Digest), 0L, 0);
        for (var i = 0; i < count; i++)
        {
            var e = idx.AsSpan(8 + (i * 49), 49);
            var s = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(e[40..]);
            if (s > stored) (best, offset, stored) = (Digest.FromBytes(e[..32]), (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(e[32..]), s);
        }

        using var handle = File.OpenHandle(pack, FileMode.Open, FileAccess.ReadWrite);
        var b = new byte[1];
        RandomAccess.Read(handle, b, offset + (stored / 2));
        b[0] ^= 0x5A;
        RandomAccess.Write(handle, b, offset + (stored / 2));
        return best;
    }

    public static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(dir.Replace(from, to, StringComparison.Ordinal));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories)) File.Copy(file, file.Replace(from, to, StringComparison.Ordinal));
    }
}
