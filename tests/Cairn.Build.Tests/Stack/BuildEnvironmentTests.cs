using System.Diagnostics;
using System.Formats.Tar;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;

namespace Cairn.Build.Tests.Stack;

/// <summary>
/// Recipes that name a build environment: a root file system imported from a tarball (<c>cairn import --rootfs</c>)
/// replaces the host's /usr, /etc, /var in the sandbox, gives the platform, and is part of the build key.
/// </summary>
public sealed class BuildEnvironmentTests : IDisposable
{
    private const string ProbeRecipe = """
        name: probe
        version: "1.0"
        environment: tinyos
        build: |
          mkdir -p "$SOFT_DIR/share"
          echo "$OS $ARCH" > "$SOFT_DIR/share/platform"
          sh --help 2>&1 | head -n 1 > "$SOFT_DIR/share/shell"
          cat /etc/tinyos-motd > "$SOFT_DIR/share/motd"
          # Nothing of the host: not its compiler, not its /etc.
          test ! -e /usr/bin/gcc
          test ! -e /etc/debian_version
        check: |
          grep -q BusyBox "$SOFT_DIR/share/shell"
        """;

    private readonly string _root = Directory.CreateTempSubdirectory("cairn-buildenv-").FullName;

    private string Repository => Path.Combine(_root, "repo");

    public void Dispose() => StackBuilder.DeleteTree(_root);

    [Fact]
    public async Task A_build_runs_inside_its_environment_and_the_environment_is_part_of_the_key()
    {
        var ct = CancellationToken.None;
        var recipes = Directory.CreateDirectory(Path.Combine(_root, "recipes")).FullName;
        StackFixture.AddRecipe(recipes, "probe", ProbeRecipe);
        await using var repo = await DirectoryRepository.InitAsync(Repository, "test", StackFixture.Platform, TimeProvider.System, null, ct);
        var tarball = await BusyboxRootAsync("motd one", ct);

        // Absolute symlinks (bin/sh -> /usr/bin/busybox) are refused in products, kept in root file systems.
        var refused = await Assert.ThrowsAsync<CairnException>(() =>
            new Importer(repo).ImportAsync(tarball, new ImportOptions { As = new ProductRef("tinyos", "1") }, ct));
        Assert.Equal(ErrorCode.ArchiveSymlinkEscape, refused.Code);
        await ImportEnvironmentAsync(repo, tarball, replace: false, ct);

        var options = StackFixture.Options(recipes, Repository);
        var first = await StackFixture.Builder(repo).BuildAsync(options, null, ct);
        Assert.True(first.Succeeded, StackFixture.Describe(first));
        var catalog = await StackFixture.CatalogAsync(repo);
        var probe = catalog.Find(StackFixture.Platform, new ProductRef("probe", "1.0"))!;
        Assert.Equal($"tinyos7 {Platform.Detect().Arch}\n", await ReadAsync(repo, probe.Root, "share/platform", ct));
        Assert.Equal("motd one\n", await ReadAsync(repo, probe.Root, "share/motd", ct));
        var log = await ReadAsync(repo, (await repo.HeadAsync(ct)).Root, probe.Log!, ct);
        Assert.Contains("== build environment tinyos/1:", log, StringComparison.Ordinal);
        Assert.Contains("/cvmfs/cairn.test/test/tinyos7/", log, StringComparison.Ordinal);

        // The same environment: up to date. A changed environment (same name and version): the probe rebuilds.
        var same = await StackFixture.Builder(repo).PlanAsync(options, ct);
        Assert.Equal(PlanAction.UpToDate, Assert.Single(same.Packages, p => p.Name == "probe").Action);
        await ImportEnvironmentAsync(repo, await BusyboxRootAsync("motd two", ct), replace: true, ct);
        var changed = Assert.Single((await StackFixture.Builder(repo).PlanAsync(options, ct)).Packages, p => p.Name == "probe");
        Assert.Equal(PlanAction.Build, changed.Action);
        Assert.NotEqual(probe.BuildKey, changed.BuildKey);

        var second = await StackFixture.Builder(repo).BuildAsync(options, null, ct);
        Assert.True(second.Succeeded, StackFixture.Describe(second));
        var rebuilt = (await StackFixture.CatalogAsync(repo)).Find(StackFixture.Platform, new ProductRef("probe", "1.0"))!;
        Assert.Equal("motd two\n", await ReadAsync(repo, rebuilt.Root, "share/motd", ct));
        Assert.Equal(changed.BuildKey, rebuilt.BuildKey);
    }

    /// <summary>
    /// A real Debian root file system made by debootstrap (scripts/make-rootfs.sh, cached across runs in
    /// /var/tmp/cairn-test-rootfs): the build sees Debian's package database and none of the host's tools.
    /// </summary>
    [Fact]
    public async Task A_debootstrap_root_file_system_imported_from_its_tarball_is_a_build_environment()
    {
        var ct = CancellationToken.None;
        var tarball = await DebootstrapTarballAsync(ct);
        var recipes = Directory.CreateDirectory(Path.Combine(_root, "recipes")).FullName;
        StackFixture.AddRecipe(recipes, "debprobe", """
            name: debprobe
            version: "1.0"
            environment: debian-12
            build: |
              mkdir -p "$SOFT_DIR/share"
              . /etc/os-release
              echo "$ID $VERSION_CODENAME" > "$SOFT_DIR/share/os"
              dpkg-query -W -f='${Status}\n' libc6 > "$SOFT_DIR/share/libc6"
              # minbase has no compiler; the host has one (build-essential): it must not be visible.
              if command -v cc gcc; then exit 1; fi
              echo "$OS" > "$SOFT_DIR/share/platform"
            check: |
              grep -qx "install ok installed" "$SOFT_DIR/share/libc6"
            """);
        await using var repo = await DirectoryRepository.InitAsync(Repository, "test", StackFixture.Platform, TimeProvider.System, null, ct);
        var imported = Assert.Single(await new Importer(repo).ImportAsync(tarball, new ImportOptions
        {
            As = new ProductRef("debian-12", "minbase"),
            RootFileSystem = true,
        }, ct));
        Assert.True(imported.Product.Files > 1000, $"{imported.Product.Files} files");

        var result = await StackFixture.Builder(repo).BuildAsync(StackFixture.Options(recipes, Repository), null, ct);
        Assert.True(result.Succeeded, StackFixture.Describe(result));
        var product = (await StackFixture.CatalogAsync(repo)).Find(StackFixture.Platform, new ProductRef("debprobe", "1.0"))!;
        Assert.Equal("debian bookworm\n", await ReadAsync(repo, product.Root, "share/os", ct));
        Assert.Equal("debian12\n", await ReadAsync(repo, product.Root, "share/platform", ct));
    }

    private static async Task ImportEnvironmentAsync(WritableRepository repo, string tarball, bool replace, CancellationToken ct) =>
        await new Importer(repo).ImportAsync(tarball, new ImportOptions
        {
            As = new ProductRef("tinyos", "1"),
            RootFileSystem = true,
            Publish = new PublishOptions { Replace = replace, ReplaceReason = replace ? "test: a changed environment" : null },
        }, ct);

    /// <summary>
    /// A root file system of one static busybox (Debian's busybox-static) and its applets, with its own os-release.
    /// bash is a wrapper around busybox sh, since build scripts run under /bin/bash.
    /// </summary>
    private async Task<string> BusyboxRootAsync(string motd, CancellationToken ct)
    {
        const string Busybox = "/bin/busybox";
        Assert.True(File.Exists(Busybox), "busybox-static is missing: run scripts/install-deps.sh");
        var root = Path.Combine(_root, "rootfs-" + Guid.NewGuid().ToString("N"));
        var bin = Directory.CreateDirectory(Path.Combine(root, "usr", "bin")).FullName;
        File.Copy(Busybox, Path.Combine(bin, "busybox"));
        foreach (var applet in await RunAsync(Busybox, "--list", ct))
        {
            if (applet is "busybox" or "bash" || File.Exists(Path.Combine(bin, applet))) continue;
            File.CreateSymbolicLink(Path.Combine(bin, applet), "/usr/bin/busybox");
        }

        File.WriteAllText(Path.Combine(bin, "bash"), "#!/usr/bin/busybox sh\nexec /usr/bin/busybox sh \"$@\"\n");
        File.SetUnixFileMode(Path.Combine(bin, "bash"), (UnixFileMode)0b111_101_101);
        File.CreateSymbolicLink(Path.Combine(root, "bin"), "usr/bin");
        File.CreateSymbolicLink(Path.Combine(root, "sbin"), "usr/bin");
        var etc = Directory.CreateDirectory(Path.Combine(root, "etc")).FullName;
        File.WriteAllText(Path.Combine(etc, "os-release"), "ID=tinyos\nVERSION_ID=7.1\nPRETTY_NAME=\"tiny test OS\"\n");
        File.WriteAllText(Path.Combine(etc, "tinyos-motd"), motd + "\n");
        File.WriteAllText(Path.Combine(etc, "passwd"), "root:x:0:0::/root:/bin/sh\n");
        var tarball = root + ".tar";
        await TarFile.CreateFromDirectoryAsync(root, tarball, includeBaseDirectory: false, ct);
        return tarball;
    }

    private static async Task<string> DebootstrapTarballAsync(CancellationToken ct)
    {
        var cache = Directory.CreateDirectory("/var/tmp/cairn-test-rootfs").FullName;
        var tarball = Path.Combine(cache, "bookworm-minbase.tar.zst");
        if (File.Exists(tarball)) return tarball;
        var script = Path.Combine(RecipeDir.RepoRoot(), "scripts", "make-rootfs.sh");
        var output = await RunAsync("/bin/bash", ct, script, tarball);
        Assert.True(File.Exists(tarball), "scripts/make-rootfs.sh made no tarball:\n" + string.Join("\n", output));
        return tarball;
    }

    private static Task<List<string>> RunAsync(string program, string argument, CancellationToken ct) => RunAsync(program, ct, argument);

    private static async Task<List<string>> RunAsync(string program, CancellationToken ct, params string[] arguments)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync(ct);
        var stdout = await process.StandardOutput.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        var lines = (stdout + await stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', arguments)} exited {process.ExitCode}:\n{string.Join("\n", lines)}");
        return lines;
    }

    private static async Task<string> ReadAsync(WritableRepository repo, Digest root, string path, CancellationToken ct)
    {
        var entry = await repo.Trees.LookupAsync(root, path, ct) ?? throw new InvalidOperationException($"{path} is not in {root.Abbreviated}");
        using var buffer = new MemoryStream();
        await repo.Trees.CopyContentAsync(entry, buffer, ct);
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
