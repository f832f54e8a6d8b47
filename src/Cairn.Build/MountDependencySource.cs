using System.Runtime.InteropServices;
using System.Text;
using Cairn.Core;

namespace Cairn.Build;

/// <summary>
/// <c>--deps-from mount:PATH</c>: a repository mounted with <c>cairn mount</c> (PLATFORM/NAME/VERSION/… below PATH).
/// Nothing is copied: the sandbox binds the product's directory in the mount read-only at its deployment prefix, and
/// files are fetched (and verified) by the mount when the build reads them. The product's root digest, which goes
/// into the build key, is the mount's <c>user.cairn.digest</c> extended attribute of that directory, so it always
/// matches what the build sees.
/// </summary>
public sealed partial class MountDependencySource(string mountPoint, string description, IAsyncDisposable? owned = null) : IDependencySource
{
    /// <summary>Extended attribute a cairn mount gives every directory and file: its tree or content digest.</summary>
    public const string DigestAttribute = "user.cairn.digest";

    private readonly string _mountPoint = Path.GetFullPath(mountPoint);

    public string Description => description;

    public bool IsExternal => true;

    public string MountPoint => _mountPoint;

    public Task<ProductRecord?> FindAsync(string platform, string name, string version, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        if (!ProductRef.IsValidComponent(platform) || !ProductRef.IsValidComponent(name) || !ProductRef.IsValidComponent(version))
        {
            return Task.FromResult<ProductRecord?>(null);
        }

        var path = Path.Combine(_mountPoint, platform, name, version);
        if (!Directory.Exists(path)) return Task.FromResult<ProductRecord?>(null);
        var digest = ReadDigest(path);
        return Task.FromResult<ProductRecord?>(new ProductRecord(platform, name, version, digest, 0, 0, null, [], null, description, DateTimeOffset.UnixEpoch));
    }

    public Task<string> ProvideAsync(ProductRecord product, string workDirectory, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(product);
        return Task.FromResult(Path.Combine(_mountPoint, product.Platform, product.Name, product.Version));
    }

    /// <summary>Checks that PATH is a cairn mount (its root carries the digest attribute); throws CAIRN-E0633 if not.</summary>
    public void Validate()
    {
        if (!Directory.Exists(_mountPoint))
        {
            throw new CairnException(ErrorCode.DepsMountInvalid, $"--deps-from mount:{_mountPoint}: no such directory",
                "mount the repository there first (cairn mount URL PATH), or give --deps-from mount:http://SERVER to let cairn build mount it");
        }

        ReadDigest(_mountPoint);
    }

    private Digest ReadDigest(string path)
    {
        var buffer = new byte[128];
        var n = GetXAttr(path, DigestAttribute, buffer, (nuint)buffer.Length);
        if (n < 0 || !Digest.TryParse(Encoding.ASCII.GetString(buffer, 0, (int)n), out var digest))
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new CairnException(ErrorCode.DepsMountInvalid,
                $"--deps-from mount:{_mountPoint}: '{path}' has no {DigestAttribute} attribute (errno {errno}); it is not inside a cairn mount",
                "give the mount point of 'cairn mount' (see grep fuse.cairn /proc/self/mountinfo), or mount:http://SERVER");
        }

        return digest;
    }

    public async ValueTask DisposeAsync()
    {
        if (owned is not null) await owned.DisposeAsync().ConfigureAwait(false);
    }

    [LibraryImport("libc", EntryPoint = "getxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint GetXAttr(string path, string name, byte[] value, nuint size);
}
