using Cairn.Core;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Repository.IO;

/// <summary>Write-to-temp, fsync, rename, fsync-directory: a crash never leaves a half file under its real name.</summary>
public static class DurableFile
{
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> content, string tempDirectory)
    {
        var temp = Path.Combine(tempDirectory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                try
                {
                    RandomAccess.Write(handle, content, 0);
                }
                catch (IOException e)
                {
                    throw Native.WriteError(e, temp);
                }

                Native.Fsync(handle, temp);
            }

            File.Move(temp, path, overwrite: true);
            Native.FsyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    public static void Commit(SafeFileHandle handle, string temp, string final)
    {
        Native.Fsync(handle, temp);
        handle.Dispose();
        File.Move(temp, final, overwrite: true);
        Native.FsyncDirectory(Path.GetDirectoryName(Path.GetFullPath(final))!);
    }

    public static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: leftovers in tmp/ are removed by gc.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
