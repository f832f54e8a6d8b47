using Cairn.Build;
using Cairn.Core;
using Cairn.Fuse;
using Cairn.Repository;
using Cairn.Repository.Http;
using Microsoft.Extensions.Logging;

namespace Cairn.Cli.Commands.Build;

/// <summary>Opens the dependency source named by <c>--deps-from</c> (docs/recipes.md, "Where dependencies come from").</summary>
internal static class DependencySourceFactory
{
    /// <summary>Null for <c>repo</c>: dependencies come from the repository being built into.</summary>
    public static async Task<IDependencySource?> OpenAsync(CliContext ctx, DependencySourceSpec spec, StackOptions options, CancellationToken ct)
    {
        switch (spec.Kind)
        {
            case DependencySourceKind.Http:
            {
                var remote = await HttpRepository.OpenAsync(ctx.RemoteRepositoryOptions(spec.Location), ctx.Time, ctx.Logger, ct);
                return new RepositoryDependencySource(remote, options.CacheDirectory, spec.ToString(), external: true, owned: remote);
            }

            case DependencySourceKind.Tarballs:
                return new TarballDependencySource(spec.Location, Path.Combine(options.BuildsDirectory, StackBuilder.WorkFolder, $"deps-tarballs-{Guid.NewGuid():N}"), ctx.Time, ctx.Logger);
            case DependencySourceKind.Mount when RepositoryLocation.Parse(spec.Location) is HttpLocation:
                return await MountRemoteAsync(ctx, spec, ct);
            case DependencySourceKind.Mount:
            {
                var source = new MountDependencySource(spec.Location, spec.ToString());
                source.Validate();
                return source;
            }

            default:
                return null;
        }
    }

    /// <summary>mount:http://…: cairn mounts the repository itself for the duration of the build, then unmounts it.</summary>
    private static async Task<IDependencySource> MountRemoteAsync(CliContext ctx, DependencySourceSpec spec, CancellationToken ct)
    {
        var remote = await HttpRepository.OpenAsync(ctx.RemoteRepositoryOptions(spec.Location), ctx.Time, ctx.Logger, ct);
        var mountPoint = Directory.CreateTempSubdirectory("cairn-deps-mount-").FullName;
        FuseMount mount;
        try
        {
            mount = await FuseMount.MountAsync(remote, mountPoint, new FuseMountOptions { FsName = "cairn:" + spec.Location }, ctx.Logger, ct);
        }
        catch
        {
            await remote.DisposeAsync();
            Directory.Delete(mountPoint);
            throw;
        }

        ctx.Logger.LogInformation("mounted {Source} revision {Revision} at {MountPoint} for the build's dependencies", spec.Location, mount.Revision.Revision, mountPoint);
        var source = new MountDependencySource(mountPoint, spec.ToString(), new OwnedMount(mount, remote, mountPoint));
        source.Validate();
        return source;
    }

    private sealed class OwnedMount(FuseMount mount, ProductRepository remote, string mountPoint) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await mount.DisposeAsync();
            await remote.DisposeAsync();
            try
            {
                Directory.Delete(mountPoint);
            }
            catch (IOException)
            {
                // Still busy (a reader keeps the detached mount): the empty directory in /tmp is harmless.
            }
        }
    }
}
