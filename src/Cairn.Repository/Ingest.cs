using System.Buffers;
using Cairn.Core;

namespace Cairn.Repository;

/// <summary>Turns file content and directory listings into stored objects. Thread-safe; shared by publish and import.</summary>
public sealed class Ingest(IObjectStore store)
{
    private long _files;
    private long _bytes;

    public long Files => Interlocked.Read(ref _files);

    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Reads exactly <paramref name="length"/> bytes from <paramref name="source"/> and stores them, chunked when large.</summary>
    public async ValueTask<TreeEntry> AddFileAsync(string name, Stream source, long length, bool executable, CancellationToken ct)
    {
        Interlocked.Increment(ref _files);
        if (length <= Chunker.Threshold)
        {
            var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Max(length, 1));
            try
            {
                var memory = buffer.AsMemory(0, (int)length);
                await ReadExactlyAsync(source, memory, name, ct).ConfigureAwait(false);
                var digest = Digest.Of(memory.Span);
                await store.PutAsync(digest, memory, ct).ConfigureAwait(false);
                Interlocked.Add(ref _bytes, length);
                return TreeEntry.File(name, length, digest, executable);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        var chunks = new List<(int, Digest)>();
        var window = ArrayPool<byte>.Shared.Rent(2 * Chunker.MaxSize);
        try
        {
            int start = 0, end = 0;
            long remaining = length;
            while (true)
            {
                if (end - start < Chunker.MaxSize && remaining > 0)
                {
                    // Slide the unconsumed tail to the front and refill, so a chunk is always cut with MaxSize of lookahead.
                    Buffer.BlockCopy(window, start, window, 0, end - start);
                    end -= start;
                    start = 0;
                    var want = (int)Math.Min(window.Length - end, remaining);
                    await ReadExactlyAsync(source, window.AsMemory(end, want), name, ct).ConfigureAwait(false);
                    end += want;
                    remaining -= want;
                }

                if (start == end) break;
                var len = Chunker.NextBoundary(window.AsSpan(start, end - start));
                var chunk = window.AsMemory(start, len);
                var digest = Digest.Of(chunk.Span);
                await store.PutAsync(digest, chunk, ct).ConfigureAwait(false);
                chunks.Add((len, digest));
                start += len;
                Interlocked.Add(ref _bytes, len);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(window);
        }

        var list = ChunkListCodec.Encode(chunks);
        var listDigest = Digest.Of(list);
        await store.PutAsync(listDigest, list, ct).ConfigureAwait(false);
        return TreeEntry.Chunked(name, length, listDigest, executable);
    }

    public async ValueTask<TreeEntry> AddDirectoryAsync(string name, IReadOnlyList<TreeEntry> entries, CancellationToken ct)
    {
        var encoded = TreeCodec.Encode(entries);
        var digest = Digest.Of(encoded);
        await store.PutAsync(digest, encoded, ct).ConfigureAwait(false);
        return TreeEntry.Dir(name, encoded.Length, digest);
    }

    private static async ValueTask ReadExactlyAsync(Stream source, Memory<byte> buffer, string name, CancellationToken ct)
    {
        try
        {
            if (source is FileStream { IsAsync: false })
            {
                // A synchronous file handle: ReadAsync would only queue the same pread to the thread pool, a
                // hop per read that cost more than reading a small file (publish runs one task per core anyway).
                ct.ThrowIfCancellationRequested();
                source.ReadExactly(buffer.Span);
            }
            else
            {
                await source.ReadExactlyAsync(buffer, ct).ConfigureAwait(false);
            }
        }
        catch (EndOfStreamException e)
        {
            throw new CairnException(ErrorCode.IoError, $"'{name}' changed size while it was being read", "do not modify a tree while publishing it", e);
        }
    }
}
