using System.Diagnostics;
using Cairn.Build.CodeRade;
using Cairn.Build.Tests.Stack;
using Cairn.Repository;
using Cairn.Repository.FileSystem;
using Cairn.Sandbox;

namespace Cairn.Build.Tests.CodeRade;

/// <summary>
/// CODE-RADE's own gsl-deploy, bzlib-deploy and freetype-deploy (tests/fixtures/code-rade, copied unchanged),
/// imported with <see cref="CodeRadeImporter"/> and built with real bubblewrap into one repository that the tests
/// share, together with two small CODE-RADE-layout packages: libfoo (installs into lib64/) and foo-user (module add
/// libfoo, then ${LIBFOO_DIR}). The tarballs come from ../shared/sources beside the checkout, reshaped the way the
/// scripts expect upstream's (see <see cref="UpstreamTarballs"/>). gsl's build and make check make this the slow
/// fixture: about 10 minutes with make -j2 on two otherwise idle cores.
/// </summary>
public sealed class CodeRadeFixture : IAsyncLifetime
{
    public const string LibFoo = """
        name: libfoo
        version: "1.0"
        layout: code-rade
        build: |
          . /etc/profile.d/modules.sh
          module load ci
          mkdir -p src && cd src
          printf 'int foo(void) { return 42; }\n' > foo.c
          printf 'int foo(void);\n' > foo.h
          cc -shared -fPIC foo.c -o libfoo.so
        check: |
          . /etc/profile.d/modules.sh
          module add ci
          cd src
          mkdir -p ${SOFT_DIR}/lib64 ${SOFT_DIR}/include
          cp libfoo.so ${SOFT_DIR}/lib64/
          cp foo.h ${SOFT_DIR}/include/
          mkdir -p ${LIBRARIES_MODULES}/${NAME}
          cat > ${LIBRARIES_MODULES}/${NAME}/${VERSION} <<MODULE_FILE
          #%Module1.0
          setenv LIBFOO_VERSION $VERSION
          setenv LIBFOO_DIR /data/ci-build/\$::env(SITE)/\$::env(OS)/\$::env(ARCH)/$NAME/$VERSION
          prepend-path LD_LIBRARY_PATH \$::env(LIBFOO_DIR)/lib64
          MODULE_FILE
          module add ${NAME}/${VERSION}
          test -f ${LIBFOO_DIR}/lib64/libfoo.so
        """;

    public const string FooUser = """
        name: foo-user
        version: "1.0"
        layout: code-rade
        dependencies: [libfoo]
        build: |
          out=${SOFT_DIR}/share/foo-user
          mkdir -p $out
          echo "$LD_LIBRARY_PATH" > $out/contract-ld-library-path
          . /etc/profile.d/modules.sh
          env | sort > $out/before.env
          module load ci
          env | sort > $out/ci.env
          module add deploy
          env | sort > $out/deploy.env
          module add libfoo
          module load gcc/${GCC_VERSION}
          printf '#include <foo.h>\n#include <stdio.h>\nint main(void) { printf("foo says %%d\\n", foo()); return 0; }\n' > main.c
          mkdir -p ${SOFT_DIR}/bin
          gcc -I${LIBFOO_DIR}/include main.c -L${LIBFOO_DIR}/lib64 -lfoo -o ${SOFT_DIR}/bin/foo-user
          echo "LIBFOO_DIR=${LIBFOO_DIR}" > $out/modules.txt
          echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH}" >> $out/modules.txt
          echo "GCC_DIR=${GCC_DIR}" >> $out/modules.txt
        check: |
          . /etc/profile.d/modules.sh
          module add ci
          module add libfoo
          ${SOFT_DIR}/bin/foo-user | grep -x "foo says 42"
        """;

    public string Root { get; } = Directory.CreateTempSubdirectory("cairn-coderade-").FullName;

    public string Recipes => Path.Combine(Root, "recipes");

    public string Repository => Path.Combine(Root, "repo");

    public StackBuildResult Build { get; private set; } = null!;

    public IReadOnlyDictionary<string, CodeRadeImportResult> Imports { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var tarballs = UpstreamTarballs.Make(Path.Combine(Root, "upstream"));
        var imports = new Dictionary<string, CodeRadeImportResult>(StringComparer.Ordinal);
        foreach (var (fixture, name, version, tarball) in new[]
        {
            ("bzlib-deploy", "bzip2", "1.0.8", tarballs.Bzip2),
            ("freetype-deploy", "freetype", "2.12.1", tarballs.Freetype),
            ("gsl-deploy", "gsl", "2.7.1", tarballs.Gsl),
        })
        {
            var dir = CopyFixture(fixture, Path.Combine(Recipes, name));
            imports[name] = CodeRadeImporter.Import(new CodeRadeImportRequest(dir, name, version, [tarball]));
        }

        // gsl's plain `make` and `make check` take about 15 minutes of CPU: let make use both cores. A recipe
        // setting (GNU make reads MAKEFLAGS), not an edit of the script.
        File.AppendAllText(Path.Combine(Recipes, "gsl", "recipe.yml"), "env:\n  MAKEFLAGS: -j2\n");

        Imports = imports;
        Directory.CreateDirectory(Path.Combine(Recipes, "sources"));
        foreach (var file in new[] { tarballs.Bzip2, tarballs.Freetype, tarballs.Gsl }) File.Copy(file, Path.Combine(Recipes, "sources", Path.GetFileName(file)));
        StackFixture.AddRecipe(Recipes, "libfoo", LibFoo);
        StackFixture.AddRecipe(Recipes, "foo-user", FooUser);
        await using var repo = await DirectoryRepository.InitAsync(Repository, "test", StackFixture.Platform, TimeProvider.System, null, default);
        Build = await StackFixture.Builder(repo).BuildAsync(
            StackFixture.Options(Recipes, Repository) with { KeepGoing = true, Limits = new SandboxLimits { WallTime = TimeSpan.FromMinutes(40) } }, null, default);
    }

    public Task DisposeAsync()
    {
        StackBuilder.DeleteTree(Root);
        return Task.CompletedTask;
    }

    /// <summary>A fixture repository copied into a recipes folder: the scripts as CODE-RADE has them.</summary>
    public static string CopyFixture(string fixture, string target)
    {
        var source = Path.Combine(RecipeDir.RepoRoot(), "tests", "fixtures", "code-rade", fixture);
        Directory.CreateDirectory(target);
        foreach (var file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        return target;
    }

    public PackageResult Package(string name) => Build.Packages.Single(p => p.Name == name);
}

[CollectionDefinition(Name)]
public sealed class CodeRadeCollection : ICollectionFixture<CodeRadeFixture>
{
    public const string Name = "built CODE-RADE repositories";
}

/// <summary>
/// The tarballs the CODE-RADE scripts expect, made from the Debian orig tarballs in ../shared/sources (tests never
/// download): bzlib's build.sh untars ${NAME}-${VERSION}.tar.bz2 with tar xfj (Debian's is .gz), freetype's
/// ${NAME}-${VERSION}.tar.gz with tar xzf (Debian's is .xz), and gsl's cds into ${NAME}-${VERSION}/ (Debian's
/// repack unpacks into gsl/). The contents are the Debian ones, only recompressed or renamed.
/// </summary>
public sealed record UpstreamTarballs(string Bzip2, string Freetype, string Gsl)
{
    public static string SharedSources()
    {
        var dir = Path.Combine(Path.GetDirectoryName(RecipeDir.RepoRoot())!, "shared", "sources");
        if (!File.Exists(Path.Combine(dir, "SHA256SUMS")))
        {
            throw new InvalidOperationException(
                $"the CODE-RADE tests need the upstream tarballs in {dir} (../shared/sources beside the checkout: gsl_2.7.1+dfsg.orig.tar.gz, bzip2_1.0.8.orig.tar.gz, freetype_2.12.1+dfsg.orig.tar.xz with SHA256SUMS); it is absent");
        }

        return dir;
    }

    /// <summary>
    /// Debian's gsl repack leaves out the manual's sources (GFDL), which doc/Makefile.in still lists, so `make` and
    /// `make install` stop in doc/ ("No rule to make target 'autoconf.rst'"); upstream's tarball has them. Empty
    /// files stand in for the missing ones (relative names in doc/ only), so the unchanged scripts build.
    /// </summary>
    private const string GslDocPlaceholders = """
        tr -s ' \t=\\' '\n\n\n\n' < Makefile.in | grep -E '^[A-Za-z_][A-Za-z0-9_./-]*[.](rst|png|eps|1|3|info|texi)$' | sort -u |
          while read -r f; do case "$f" in *..*) continue ;; esac; [ -e "$f" ] || { mkdir -p "$(dirname "$f")"; : > "$f"; }; done
        """;

    public static UpstreamTarballs Make(string target)
    {
        var shared = SharedSources();
        Directory.CreateDirectory(target);
        var bzip2 = Path.Combine(target, "bzip2-1.0.8.tar.bz2");
        var freetype = Path.Combine(target, "freetype-2.12.1.tar.gz");
        var gsl = Path.Combine(target, "gsl-2.7.1.tar.gz");
        Shell($"gzip -dc '{shared}/bzip2_1.0.8.orig.tar.gz' | bzip2 -9 > '{bzip2}'");
        Shell($"xz -dc '{shared}/freetype_2.12.1+dfsg.orig.tar.xz' | gzip -n > '{freetype}'");
        Shell($"""
            d=$(mktemp -d)
            tar -xzf '{shared}/gsl_2.7.1+dfsg.orig.tar.gz' -C "$d"
            mv "$d/gsl" "$d/gsl-2.7.1"
            cd "$d/gsl-2.7.1/doc"
            {GslDocPlaceholders}
            tar -czf '{gsl}' -C "$d" gsl-2.7.1
            rm -rf "$d"
            """);
        return new UpstreamTarballs(bzip2, freetype, gsl);
    }

    internal static string Shell(string script)
    {
        var psi = new ProcessStartInfo("/bin/bash", ["-ec", script]) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{script}: exit {p.ExitCode}: {error}");
        return output;
    }
}
