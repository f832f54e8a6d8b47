using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Cairn.Core;

namespace Cairn.Repository.S3;

/// <summary>The few S3 requests Cairn makes (keys relative to the repository prefix), with S3 failures turned into coded errors.</summary>
public sealed class S3Calls(IAmazonS3 s3, S3Location location) : IDisposable
{
    public static S3Calls Open(string url) => Open(S3Location.Parse(url));

    public static S3Calls Open(S3Location location) => new(location.CreateClient(), location);

    public IAmazonS3 Client => s3;

    public void Dispose() => s3.Dispose();

    public S3Location Location => location;

    public async Task<T> RunAsync<T>(string what, string key, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception e) when (e is AmazonServiceException or HttpRequestException or IOException && e is not CairnException)
        {
            throw Unavailable(what, key, e);
        }
    }

    public static CairnException Unavailable(string what, string key, Exception e) =>
        new(ErrorCode.StorageUnavailable, $"S3 {what} of '{key}' failed: {e.Message}",
            "check the endpoint, bucket and credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the URL's user info); retry");

    /// <summary>The object's bytes and ETag, or null when it does not exist.</summary>
    public async Task<(byte[] Bytes, string ETag)?> GetAsync(string relative, CancellationToken ct)
    {
        var key = location.Key(relative);
        try
        {
            using var response = await s3.GetObjectAsync(new GetObjectRequest { BucketName = location.Bucket, Key = key }, ct).ConfigureAwait(false);
            using var buffer = new MemoryStream();
            await response.ResponseStream.CopyToAsync(buffer, ct).ConfigureAwait(false);
            return (buffer.ToArray(), response.ETag);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        catch (Exception e) when (e is AmazonServiceException or HttpRequestException or IOException)
        {
            throw Unavailable("GET", key, e);
        }
    }

    public async Task<byte[]> GetRangeAsync(string relative, long offset, int length, CancellationToken ct)
    {
        var key = location.Key(relative);
        if (length == 0) return [];
        return await RunAsync("GET", key, async () =>
        {
            using var response = await s3.GetObjectAsync(new GetObjectRequest
            {
                BucketName = location.Bucket, Key = key, ByteRange = new ByteRange(offset, offset + length - 1),
            }, ct).ConfigureAwait(false);
            var bytes = new byte[length];
            await response.ResponseStream.ReadAtLeastAsync(bytes, length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
            return bytes;
        }).ConfigureAwait(false);
    }

    /// <summary>PUT; with <paramref name="ifNoneMatch"/> only if the key is absent, with <paramref name="ifMatch"/> only if unchanged. False on 412.</summary>
    public async Task<bool> PutAsync(string relative, ReadOnlyMemory<byte> bytes, CancellationToken ct, bool ifNoneMatch = false, string? ifMatch = null)
    {
        var key = location.Key(relative);
        var request = new PutObjectRequest
        {
            BucketName = location.Bucket, Key = key, InputStream = new MemoryStream(bytes.ToArray(), writable: false),
            UseChunkEncoding = false, AutoCloseStream = true,
        };
        if (ifNoneMatch) request.IfNoneMatch = "*";
        if (ifMatch is not null) request.IfMatch = ifMatch;
        try
        {
            await s3.PutObjectAsync(request, ct).ConfigureAwait(false);
            return true;
        }
        catch (AmazonS3Exception e) when (e.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.Conflict)
        {
            return false;
        }
        catch (Exception e) when (e is AmazonServiceException or HttpRequestException or IOException)
        {
            throw Unavailable("PUT", key, e);
        }
    }

    /// <summary>
    /// A multipart upload, parts in parallel. Payloads are signed whole (no aws-chunked encoding): S3-compatible
    /// servers such as s3rver store the chunk framing as content otherwise. The SDK's TransferUtility cannot turn it off.
    /// </summary>
    public async Task PutMultipartAsync(string relative, byte[] bytes, int partSize, CancellationToken ct)
    {
        var key = location.Key(relative);
        var upload = await RunAsync("multipart upload", key, () => s3.InitiateMultipartUploadAsync(
            new InitiateMultipartUploadRequest { BucketName = location.Bucket, Key = key }, ct)).ConfigureAwait(false);
        try
        {
            var parts = (bytes.Length + partSize - 1) / partSize;
            var etags = new PartETag[parts];
            await Parallel.ForEachAsync(Enumerable.Range(0, parts), new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = ct }, async (i, c) =>
            {
                var offset = i * partSize;
                var length = Math.Min(partSize, bytes.Length - offset);
                var response = await RunAsync("part upload", key, () => s3.UploadPartAsync(new UploadPartRequest
                {
                    BucketName = location.Bucket, Key = key, UploadId = upload.UploadId, PartNumber = i + 1, PartSize = length,
                    InputStream = new MemoryStream(bytes, offset, length, writable: false), UseChunkEncoding = false,
                }, c)).ConfigureAwait(false);
                etags[i] = new PartETag(i + 1, response.ETag);
            }).ConfigureAwait(false);
            await RunAsync("multipart completion", key, () => s3.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
            {
                BucketName = location.Bucket, Key = key, UploadId = upload.UploadId, PartETags = [.. etags],
            }, ct)).ConfigureAwait(false);
        }
        catch
        {
            // Parts of an abandoned upload are billed until aborted.
            try
            {
                await s3.AbortMultipartUploadAsync(location.Bucket, key, upload.UploadId, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AmazonServiceException or HttpRequestException or IOException)
            {
            }

            throw;
        }
    }

    public Task DeleteAsync(string relative, CancellationToken ct)
    {
        var key = location.Key(relative);
        return RunAsync("DELETE", key, () => s3.DeleteObjectAsync(location.Bucket, key, ct));
    }

    /// <summary>Keys under a folder, relative to the repository prefix.</summary>
    public async Task<List<string>> ListAsync(string relativeFolder, CancellationToken ct)
    {
        var prefix = location.Key(relativeFolder);
        var result = new List<string>();
        string? token = null;
        do
        {
            var response = await RunAsync("LIST", prefix, () => s3.ListObjectsV2Async(new ListObjectsV2Request
            {
                BucketName = location.Bucket, Prefix = prefix, ContinuationToken = token,
            }, ct)).ConfigureAwait(false);
            foreach (var o in response.S3Objects ?? []) result.Add(o.Key[location.Prefix.Length..]);
            token = response.IsTruncated == true ? response.NextContinuationToken : null;
        }
        while (token is not null);

        return result;
    }
}
