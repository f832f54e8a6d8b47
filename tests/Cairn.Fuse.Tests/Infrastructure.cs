using System.Collections.Concurrent;
using System.Diagnostics;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Microsoft.Extensions.Logging;

namespace Cairn.Fuse.Tests;

public sealed record ShellResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

public static class Shell
{
    public static Process Start(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("CAIRN_REPO");
        psi.Environment.Remove("CAIRN_CACHE");
        return Process.Start(psi)!;
    }

    public static async Task<ShellResult> RunAsync(string file, string[] args, TimeSpan? timeout = null)
    {
        using var p = Start(file, args);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(2));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish");
        }

        return new ShellResult(p.ExitCode, await stdout, await stderr);
    }

    /// <summary>sh -c SCRIPT; fails the test unless it exits 0 (when <paramref name="check"/>).</summary>
    public static async Task<ShellResult> ShAsync(string script, bool check = true, TimeSpan? timeout = null)
    {
        var r = await RunAsync("sh", ["-c", script], timeout);
        if (check) Assert.True(r.ExitCode == 0, $"sh -c '{script}': {r}");
        return r;
    }

    public static Process StartCairn(params string[] args) => Start(CairnUnderTest.Command[0], [.. CairnUnderTest.Command.Skip(1), .. args]);

    public static Task<ShellResult> CairnAsync(params string[] args) => CairnAsync(null, args);

    public static Task<ShellResult> CairnAsync(TimeSpan? timeout, params string[] args) =>
        RunAsync(CairnUnderTest.Command[0], [.. CairnUnderTest.Command.Skip(1), .. args], timeout);

    public static string Q(string path) => "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}

/// <summary>A logger that keeps what it was told, for asserting that faults are named in the log.</summary>
public sealed class CapturingLogger : ILogger
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Lines.Enqueue($"{logLevel}: {formatter(state, exception)}");

    public string Text => string.Join('\n', Lines);
}

/// <summary>
/// A real source tree (zlib's release tarball) plus what exercises the mount: files over 1 MiB (chunked), an
/// empty file, executables, relative, absolute and dangling symlinks, an empty directory, a non-ASCII name.
/// </summary>
public static class SourceTree
{
    /// <summary>zlib's tarball in ../shared/sources beside the checkout (found by walking up from the test binaries).</summary>
    public static string Tarball { get; } = FindTarball();

    private static string FindTarball()
    {
        const string Name = "zlib_1.2.13.dfsg.orig.tar.bz2";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Cairn.slnx"))) return Path.Combine(dir.FullName, "..", "shared", "sources", Name);
        }

        return Name;
    }

    public static async Task<string> CreateAsync(string root)
    {
        Directory.CreateDirectory(root);
        if (File.Exists(Tarball))
        {
            await Shell.ShAsync($"tar -xjf {Shell.Q(Tarball)} -C {Shell.Q(root)} --strip-components=1");
        }
        else
        {
            // Without the shared sources: a few hundred generated files of the same shape.
            for (var i = 0; i < 200; i++)
            {
                var dir = Directory.CreateDirectory(Path.Combine(root, $"d{i % 7}", $"e{i % 3}"));
                await File.WriteAllTextAsync(Path.Combine(dir.FullName, $"file{i}.c"), string.Concat(Enumerable.Repeat($"int f{i}(void) {{ return {i}; }}\n", i + 1)));
            }
        }

        var random = new Random(42);
        var big = new byte[3_500_000];
        random.NextBytes(big);
        await File.WriteAllBytesAsync(Path.Combine(root, "big.bin"), big);
        var medium = new byte[1_300_000];
        random.NextBytes(medium);
        for (var i = 0; i < medium.Length; i += 4096) medium[i] = (byte)'\n';
        Directory.CreateDirectory(Path.Combine(root, "lib"));
        await File.WriteAllBytesAsync(Path.Combine(root, "lib", "libbig.so.1.0"), medium);
        File.CreateSymbolicLink(Path.Combine(root, "lib", "libbig.so.1"), "libbig.so.1.0");
        File.CreateSymbolicLink(Path.Combine(root, "lib", "libbig.so"), "libbig.so.1");
        File.CreateSymbolicLink(Path.Combine(root, "dangling"), "does/not/exist");
        File.CreateSymbolicLink(Path.Combine(root, "absolute"), "/etc/hostname");
        Directory.CreateDirectory(Path.Combine(root, "bin"));
        await File.WriteAllTextAsync(Path.Combine(root, "bin", "hello"), "#!/bin/sh\necho hello from the mount\n");
        File.SetUnixFileMode(Path.Combine(root, "bin", "hello"), (UnixFileMode)0b111_101_101);
        await File.WriteAllBytesAsync(Path.Combine(root, "empty"), []);
        Directory.CreateDirectory(Path.Combine(root, "empty-dir"));
        await File.WriteAllTextAsync(Path.Combine(root, "naïve résumé.txt"), "unicode\n");
        // The same content twice: must not look hard-linked.
        await File.WriteAllTextAsync(Path.Combine(root, "twin-a"), "twins\n");
        await File.WriteAllTextAsync(Path.Combine(root, "lib", "twin-b"), "twins\n");
        return root;
    }
}

/// <summary>A temporary repository holding the source tree as linux-x86_64/zlib/1.2.13, and a mount point.</summary>
public sealed class MountedRepository : IAsyncDisposable
{
    public const string ProductPath = "linux-x86_64/zlib/1.2.13";

    private MountedRepository(string root)
    {
        Root = root;
    }

    public string Root { get; }

    public string Source => Path.Combine(Root, "src");

    public string RepositoryPath => Path.Combine(Root, "repo");

    public string MountPoint => Path.Combine(Root, "mnt");

    public string Product => Path.Combine(MountPoint, ProductPath);

    public CapturingLogger Log { get; } = new();

    public FuseMount? Mount { get; private set; }

    public ProductRepository? Repository { get; private set; }

    public static async Task<MountedRepository> CreateAsync(string? sourceFrom = null)
    {
        var root = Path.Combine(Path.GetTempPath(), "cairn-fuse-" + Guid.NewGuid().ToString("N")[..10]);
        var m = new MountedRepository(root);
        if (sourceFrom is null) await SourceTree.CreateAsync(m.Source);
        else await Shell.ShAsync($"cp -a {Shell.Q(sourceFrom)} {Shell.Q(m.Source)}");
        Directory.CreateDirectory(m.MountPoint);
        await using var repo = await DirectoryRepository.InitAsync(m.RepositoryPath, "test", "linux-x86_64", TimeProvider.System, null, CancellationToken.None);
        await repo.PublishDirectoryAsync(new ProductRef("zlib", "1.2.13"), m.Source, new PublishOptions(), null, CancellationToken.None);
        return m;
    }

    public async Task PublishAsync(string name, string version, string directory, bool replace = false)
    {
        await using var repo = await DirectoryRepository.OpenAsync(RepositoryPath, TimeProvider.System, null, TimeSpan.FromMinutes(1), CancellationToken.None);
        await repo.PublishDirectoryAsync(new ProductRef(name, version), directory, new PublishOptions { Replace = replace, ReplaceReason = replace ? "test" : null }, null, CancellationToken.None);
    }

    public async Task<FuseMount> MountAsync(FuseMountOptions? options = null, Func<ProductRepository, ProductRepository>? wrap = null)
    {
        var repo = await DirectoryRepository.OpenAsync(RepositoryPath, TimeProvider.System, null, TimeSpan.FromMinutes(1), CancellationToken.None);
        Repository = wrap?.Invoke(repo) ?? repo;
        Mount = await FuseMount.MountAsync(Repository, MountPoint, options ?? new FuseMountOptions { FsName = "cairn-test" }, Log, CancellationToken.None);
        return Mount;
    }

    public async ValueTask DisposeAsync()
    {
        if (Mount is not null) await Mount.DisposeAsync();
        if (MountTable.Find(MountPoint) is not null) FuseMountTestNative.Detach(MountPoint);
        if (Repository is not null) await Repository.DisposeAsync();
        try
        {
            Directory.Delete(Root, true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

internal static partial class FuseMountTestNative
{
    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "umount2", StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    private static partial int Umount2(string target, int flags);

    public static void Detach(string path) => Umount2(path, 2);
}
