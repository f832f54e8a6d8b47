using System.Runtime.InteropServices;
using System.Text;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.FileSystem;

namespace Cairn.Fuse.Tests;

/// <summary>The FUSE message layer without a kernel: encoded requests in, replies decoded byte by byte.</summary>
public sealed class ProtocolTests : IAsyncLifetime
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "cairn-fuse-proto-" + Guid.NewGuid().ToString("N")[..8]);
    private WritableRepository _repo = null!;
    private CairnFileSystem _fs = null!;
    private FuseDispatcher _dispatcher = null!;
    private readonly ListSink _sink = new();
    private ulong _unique = 100;
    private readonly byte[] _big = new byte[2_500_000];

    private sealed class ListSink : IFuseReplySink
    {
        public List<byte[]> Replies { get; } = [];

        public void Send(ReadOnlySpan<byte> reply)
        {
            lock (Replies) Replies.Add(reply.ToArray());
        }
    }

    public async Task InitializeAsync()
    {
        var src = Directory.CreateDirectory(Path.Combine(_root, "src")).FullName;
        await File.WriteAllTextAsync(Path.Combine(src, "hello.txt"), "hello\n");
        Directory.CreateDirectory(Path.Combine(src, "sub", "deeper"));
        await File.WriteAllTextAsync(Path.Combine(src, "sub", "run"), "#!/bin/sh\n");
        File.SetUnixFileMode(Path.Combine(src, "sub", "run"), (UnixFileMode)0b111_101_101);
        File.CreateSymbolicLink(Path.Combine(src, "link"), "hello.txt");
        new Random(7).NextBytes(_big);
        await File.WriteAllBytesAsync(Path.Combine(src, "big"), _big);
        _repo = await DirectoryRepository.InitAsync(Path.Combine(_root, "repo"), "t", "linux-x86_64", TimeProvider.System, null, CancellationToken.None);
        await _repo.PublishDirectoryAsync(new ProductRef("p", "1"), src, new PublishOptions(), null, CancellationToken.None);
        var options = new FuseMountOptions { CacheTimeout = TimeSpan.FromSeconds(3600) };
        _fs = await CairnFileSystem.OpenAsync(_repo, options, new CapturingLogger(), CancellationToken.None);
        _dispatcher = new FuseDispatcher(_fs, _sink, options, new CapturingLogger());
    }

    public async Task DisposeAsync()
    {
        _fs.Dispose();
        await _repo.DisposeAsync();
        Directory.Delete(_root, true);
    }

    [Fact]
    public void StructuresHaveTheKernelsSizes()
    {
        // Sizes from linux/fuse.h; a wrong layout would corrupt every reply.
        Assert.Equal(40, Marshal.SizeOf<FuseInHeader>());
        Assert.Equal(16, Marshal.SizeOf<FuseOutHeader>());
        Assert.Equal(88, Marshal.SizeOf<FuseAttr>());
        Assert.Equal(128, Marshal.SizeOf<FuseEntryOut>());
        Assert.Equal(104, Marshal.SizeOf<FuseAttrOut>());
        Assert.Equal(64, Marshal.SizeOf<FuseInitOut>());
        Assert.Equal(16, Marshal.SizeOf<FuseOpenOut>());
        Assert.Equal(40, Marshal.SizeOf<FuseReadIn>());
        Assert.Equal(24, Marshal.SizeOf<FuseReleaseIn>());
        Assert.Equal(80, Marshal.SizeOf<FuseKStatFs>());
        Assert.Equal(16, Marshal.SizeOf<FuseForgetOne>());
        Assert.Equal(24, Marshal.SizeOf<FuseDirentHeader>());
    }

    [Fact]
    public void ErrorReplyIsAHeaderWithNegativeErrno()
    {
        var buffer = new byte[16];
        Assert.Equal(16, FuseWire.Error(buffer, 0x1122334455667788, Native.EROFS));
        Assert.Equal("10000000" + "e2ffffff" + "8877665544332211", Convert.ToHexStringLower(buffer));
    }

    [Fact]
    public void DirentsArePaddedToEightBytes()
    {
        var buffer = new byte[64];
        var n = FuseWire.Dirent(buffer, 5, 3, FuseConstants.DT_REG, "abc"u8);
        Assert.Equal(32, n);
        Assert.Equal(5UL, BitConverter.ToUInt64(buffer, 0));
        Assert.Equal(3UL, BitConverter.ToUInt64(buffer, 8));
        Assert.Equal(3u, BitConverter.ToUInt32(buffer, 16));
        Assert.Equal(8u, BitConverter.ToUInt32(buffer, 20));
        Assert.Equal("abc\0\0\0\0\0", Encoding.ASCII.GetString(buffer, 24, 8));
        Assert.Equal(0, FuseWire.Dirent(buffer.AsSpan(0, 31), 5, 3, FuseConstants.DT_REG, "abc"u8));
    }

    private byte[] Request(FuseOpcode opcode, ulong nodeId, ReadOnlySpan<byte> body)
    {
        var unique = ++_unique;
        var request = new byte[40 + body.Length];
        var header = new FuseInHeader { Len = (uint)request.Length, Opcode = opcode, Unique = unique, NodeId = nodeId };
        MemoryMarshal.Write(request, in header);
        body.CopyTo(request.AsSpan(40));
        _sink.Replies.Clear();
        _dispatcher.Dispatch(request);
        return request;
    }

    private static byte[] Body<T>(T value) where T : unmanaged
    {
        var bytes = new byte[Marshal.SizeOf<T>()];
        MemoryMarshal.Write(bytes, in value);
        return bytes;
    }

    /// <summary>Dispatches and waits for the one reply (async requests answer from another thread).</summary>
    private async Task<(int Error, byte[] Body)> CallAsync(FuseOpcode opcode, ulong nodeId, byte[] body)
    {
        Request(opcode, nodeId, body);
        for (var i = 0; i < 500 && _sink.Replies.Count == 0; i++) await Task.Delay(10);
        byte[] reply;
        lock (_sink.Replies)
        {
            reply = Assert.Single(_sink.Replies);
        }

        var header = MemoryMarshal.Read<FuseOutHeader>(reply);
        Assert.Equal(_unique, header.Unique);
        Assert.Equal((uint)reply.Length, header.Len);
        return (-header.Error, reply[16..]);
    }

    private static byte[] Name(string name) => Encoding.UTF8.GetBytes(name + "\0");

    private async Task InitAsync(uint kernelFlags = 0xFFFFFFFF)
    {
        var (error, body) = await CallAsync(FuseOpcode.Init, 0, Body(new FuseInitIn { Major = 7, Minor = 45, MaxReadahead = 1 << 20, Flags = kernelFlags }));
        Assert.Equal(0, error);
        var init = MemoryMarshal.Read<FuseInitOut>(body);
        Assert.Equal(7u, init.Major);
        Assert.Equal(FuseConstants.KernelMinorVersion, init.Minor);
        Assert.Equal(256, init.MaxPages);
        Assert.NotEqual(0u, init.Flags & FuseConstants.FUSE_CACHE_SYMLINKS);
        Assert.Equal(0u, init.Flags & ~(FuseConstants.FUSE_NO_OPEN_SUPPORT | FuseConstants.FUSE_ASYNC_READ | FuseConstants.FUSE_PARALLEL_DIROPS | FuseConstants.FUSE_MAX_PAGES | FuseConstants.FUSE_CACHE_SYMLINKS));
    }

    private async Task<FuseEntryOut> LookupAsync(ulong parent, string name)
    {
        var (error, body) = await CallAsync(FuseOpcode.Lookup, parent, Name(name));
        Assert.Equal(0, error);
        return MemoryMarshal.Read<FuseEntryOut>(body);
    }

    private async Task<ulong> WalkAsync(string path)
    {
        var ino = FuseConstants.RootId;
        foreach (var part in path.Split('/')) ino = (await LookupAsync(ino, part)).NodeId;
        return ino;
    }

    [Fact]
    public async Task InitNegotiatesOurMinorAndOnlyTheFlagsWeUse() => await InitAsync();

    [Fact]
    public async Task InitRefusesAnOldKernel()
    {
        var (error, _) = await CallAsync(FuseOpcode.Init, 0, Body(new FuseInitIn { Major = 7, Minor = 20, MaxReadahead = 65536 }));
        Assert.Equal(Native.EPROTO, error);
        await Assert.ThrowsAsync<CairnException>(() => _dispatcher.Initialized);
    }

    [Fact]
    public async Task LookupGivesStableInodesAttributesAndLongTimeouts()
    {
        await InitAsync();
        var product = await WalkAsync("linux-x86_64/p/1");
        var hello = await LookupAsync(product, "hello.txt");
        Assert.Equal(6UL, hello.Attr.Size);
        Assert.Equal(FuseConstants.S_IFREG | 0x124u, hello.Attr.Mode); // 0444
        Assert.Equal(0x8000u, hello.Attr.Mode & 0xF000);
        Assert.Equal(3600UL, hello.EntryValid);
        Assert.Equal(3600UL, hello.AttrValid);
        Assert.Equal(hello.NodeId, (await LookupAsync(product, "hello.txt")).NodeId);
        var sub = await LookupAsync(product, "sub");
        Assert.Equal(FuseConstants.S_IFDIR | 0x16Du, sub.Attr.Mode); // 0555
        Assert.Equal(3u, sub.Attr.NLink); // 2 + one subdirectory
        var run = await LookupAsync(sub.NodeId, "run");
        Assert.Equal(FuseConstants.S_IFREG | 0x16Du, run.Attr.Mode); // 0555
        var link = await LookupAsync(product, "link");
        Assert.Equal(FuseConstants.S_IFLNK, link.Attr.Mode & 0xF000);
        var big = await LookupAsync(product, "big");
        Assert.Equal((ulong)_big.Length, big.Attr.Size);
        Assert.Equal(((ulong)_big.Length + 511) / 512, big.Attr.Blocks);

        // The same identity computed anew (another mount of the revision) gives the same number.
        var entry = (await _fs.LookupAsync(_fs.Find(product)!, "hello.txt", CancellationToken.None))!;
        Assert.Equal(hello.NodeId, CairnFileSystem.InodeOf("linux-x86_64/p/1/hello.txt", entry.Entry));

        var (getattrError, attrBody) = await CallAsync(FuseOpcode.GetAttr, hello.NodeId, new byte[16]);
        Assert.Equal(0, getattrError);
        Assert.Equal(hello.NodeId, MemoryMarshal.Read<FuseAttrOut>(attrBody).Attr.Ino);
    }

    [Fact]
    public async Task MissingNamesAreCachedNegativeEntries()
    {
        await InitAsync();
        var entry = await LookupAsync(FuseConstants.RootId, "no-such-platform");
        Assert.Equal(0UL, entry.NodeId);
        Assert.Equal(3600UL, entry.EntryValid);
    }

    [Fact]
    public async Task ForgetDropsTheNodeOnceTheKernelsCountReachesZero()
    {
        await InitAsync();
        var product = await WalkAsync("linux-x86_64/p/1");
        var hello = await LookupAsync(product, "hello.txt");
        await LookupAsync(product, "hello.txt");
        var before = _fs.NodeCount;
        Request(FuseOpcode.Forget, hello.NodeId, Body(new FuseForgetIn { NLookup = 1 }));
        Assert.Empty(_sink.Replies); // FORGET has no reply
        Assert.NotNull(_fs.Find(hello.NodeId));
        var batch = new byte[8 + 16];
        MemoryMarshal.Write(batch, new FuseBatchForgetIn { Count = 1 });
        MemoryMarshal.Write(batch.AsSpan(8), new FuseForgetOne { NodeId = hello.NodeId, NLookup = 1 });
        Request(FuseOpcode.BatchForget, 0, batch);
        Assert.Empty(_sink.Replies);
        Assert.Null(_fs.Find(hello.NodeId));
        Assert.Equal(before - 1, _fs.NodeCount);
        Assert.Equal(hello.NodeId, (await LookupAsync(product, "hello.txt")).NodeId);
    }

    [Fact]
    public async Task WithZeroMessageOpensReadsNameTheInode()
    {
        await InitAsync();
        var product = await WalkAsync("linux-x86_64/p/1");
        var hello = await LookupAsync(product, "hello.txt");
        Assert.Equal(Native.ENOSYS, (await CallAsync(FuseOpcode.Open, hello.NodeId, Body(new FuseOpenIn { Flags = 0 }))).Error);
        var (e, data) = await CallAsync(FuseOpcode.Read, hello.NodeId, Body(new FuseReadIn { Fh = 0, Offset = 1, Size = 100 }));
        Assert.Equal(0, e);
        Assert.Equal("ello\n", Encoding.ASCII.GetString(data));
        Assert.Equal(Native.EBADF, (await CallAsync(FuseOpcode.Read, product, Body(new FuseReadIn { Fh = 0, Size = 100 }))).Error);
    }

    [Fact]
    public async Task OpenReadKeepsTheCacheAndReadsAnyRangeOfAChunkedFile()
    {
        await InitAsync(~FuseConstants.FUSE_NO_OPEN_SUPPORT);
        var product = await WalkAsync("linux-x86_64/p/1");
        var big = await LookupAsync(product, "big");
        var (error, body) = await CallAsync(FuseOpcode.Open, big.NodeId, Body(new FuseOpenIn { Flags = 0 }));
        Assert.Equal(0, error);
        var open = MemoryMarshal.Read<FuseOpenOut>(body);
        Assert.Equal(FuseConstants.FOPEN_KEEP_CACHE, open.OpenFlags & FuseConstants.FOPEN_KEEP_CACHE);
        foreach (var (offset, size) in new[] { (0L, 4096), (1_048_000L, 131072), (2_400_000L, 200_000), (2_499_999L, 10), (3_000_000L, 10) })
        {
            var (e, data) = await CallAsync(FuseOpcode.Read, big.NodeId, Body(new FuseReadIn { Fh = open.Fh, Offset = (ulong)offset, Size = (uint)size }));
            Assert.Equal(0, e);
            var expected = _big.AsSpan((int)Math.Min(offset, _big.Length), (int)Math.Max(0, Math.Min(size, _big.Length - offset)));
            Assert.True(expected.SequenceEqual(data), $"read at {offset}");
        }

        Assert.Equal(0, (await CallAsync(FuseOpcode.Release, big.NodeId, Body(new FuseReleaseIn { Fh = open.Fh }))).Error);
        Assert.Equal(Native.EBADF, (await CallAsync(FuseOpcode.Read, big.NodeId, Body(new FuseReadIn { Fh = open.Fh, Size = 10 }))).Error);
    }

    [Fact]
    public async Task ReadDirListsDotsAndEntriesAcrossSmallBuffers()
    {
        await InitAsync();
        var product = await WalkAsync("linux-x86_64/p/1");
        var (error, body) = await CallAsync(FuseOpcode.OpenDir, product, Body(new FuseOpenIn()));
        Assert.Equal(0, error);
        var fh = MemoryMarshal.Read<FuseOpenOut>(body).Fh;
        var names = new List<string>();
        ulong offset = 0;
        while (true)
        {
            // 40 bytes: room for exactly one entry per reply.
            var (e, data) = await CallAsync(FuseOpcode.ReadDir, product, Body(new FuseReadIn { Fh = fh, Offset = offset, Size = 40 }));
            Assert.Equal(0, e);
            if (data.Length == 0) break;
            var d = MemoryMarshal.Read<FuseDirentHeader>(data);
            names.Add(Encoding.UTF8.GetString(data, 24, (int)d.NameLen));
            offset = d.Off;
        }

        Assert.Equal([".", "..", "big", "hello.txt", "link", "sub"], names);
    }

    [Fact]
    public async Task ReadLinkReturnsTheTarget()
    {
        await InitAsync();
        var link = await LookupAsync(await WalkAsync("linux-x86_64/p/1"), "link");
        var (error, body) = await CallAsync(FuseOpcode.ReadLink, link.NodeId, []);
        Assert.Equal(0, error);
        Assert.Equal("hello.txt", Encoding.UTF8.GetString(body));
    }

    [Theory]
    [InlineData((uint)FuseOpcode.MkDir, Native.EROFS)]
    [InlineData((uint)FuseOpcode.Create, Native.EROFS)]
    [InlineData((uint)FuseOpcode.Write, Native.EROFS)]
    [InlineData((uint)FuseOpcode.SetAttr, Native.EROFS)]
    [InlineData((uint)FuseOpcode.Unlink, Native.EROFS)]
    [InlineData((uint)FuseOpcode.Rename, Native.EROFS)]
    [InlineData((uint)FuseOpcode.SetXAttr, Native.EROFS)]
    [InlineData((uint)FuseOpcode.Flush, Native.ENOSYS)]
    [InlineData(4242u, Native.ENOSYS)]
    public async Task WritesAreRefusedAndTheRestAnswered(uint opcode, int errno)
    {
        await InitAsync();
        Assert.Equal(errno, (await CallAsync((FuseOpcode)opcode, FuseConstants.RootId, new byte[64])).Error);
    }

    [Fact]
    public async Task TheDigestAttributeNamesTreesAndContentsAndNothingElse()
    {
        await InitAsync();
        static byte[] XAttr(uint size, string? name = null)
        {
            var head = Body(new FuseGetXAttrIn { Size = size });
            return name is null ? head : [.. head, .. Name(name)];
        }

        var product = await WalkAsync("linux-x86_64/p/1");
        var catalog = await _repo.CatalogAsync(await _repo.HeadAsync(default), default);
        var record = catalog.Find("linux-x86_64", new ProductRef("p", "1"))!;
        var (error, body) = await CallAsync(FuseOpcode.GetXAttr, product, XAttr(128, "user.cairn.digest"));
        Assert.Equal(0, error);
        Assert.Equal(record.Root.ToString(), Encoding.ASCII.GetString(body));

        var hello = await LookupAsync(product, "hello.txt");
        (error, body) = await CallAsync(FuseOpcode.GetXAttr, hello.NodeId, XAttr(128, "user.cairn.digest"));
        Assert.Equal(0, error);
        Assert.Equal(Digest.Of("hello\n"u8).ToString(), Encoding.ASCII.GetString(body));

        // Size 0 asks for the length; too small a buffer is ERANGE; other names and symlinks have none.
        (error, body) = await CallAsync(FuseOpcode.GetXAttr, hello.NodeId, XAttr(0, "user.cairn.digest"));
        Assert.Equal(0, error);
        Assert.Equal((uint)Digest.Of("hello\n"u8).ToString().Length, MemoryMarshal.Read<FuseGetXAttrOut>(body).Size);
        Assert.Equal(Native.ERANGE, (await CallAsync(FuseOpcode.GetXAttr, hello.NodeId, XAttr(8, "user.cairn.digest"))).Error);
        Assert.Equal(Native.ENODATA, (await CallAsync(FuseOpcode.GetXAttr, hello.NodeId, XAttr(128, "user.other"))).Error);
        var link = await LookupAsync(product, "link");
        Assert.Equal(Native.ENODATA, (await CallAsync(FuseOpcode.GetXAttr, link.NodeId, XAttr(128, "user.cairn.digest"))).Error);

        (error, body) = await CallAsync(FuseOpcode.ListXAttr, hello.NodeId, XAttr(256));
        Assert.Equal(0, error);
        Assert.Equal("user.cairn.digest\0", Encoding.ASCII.GetString(body));
    }

    [Fact]
    public async Task OpenForWritingIsReadOnlyFileSystem()
    {
        await InitAsync(~FuseConstants.FUSE_NO_OPEN_SUPPORT);
        var hello = await LookupAsync(await WalkAsync("linux-x86_64/p/1"), "hello.txt");
        Assert.Equal(Native.EROFS, (await CallAsync(FuseOpcode.Open, hello.NodeId, Body(new FuseOpenIn { Flags = 2 }))).Error);
        Assert.Equal(Native.EROFS, (await CallAsync(FuseOpcode.Access, hello.NodeId, Body(new FuseAccessIn { Mask = 2 }))).Error);
        Assert.Equal(0, (await CallAsync(FuseOpcode.Access, hello.NodeId, Body(new FuseAccessIn { Mask = 4 }))).Error);
    }

    [Fact]
    public async Task StatFsReportsTheRevisionsSize()
    {
        await InitAsync();
        var (error, body) = await CallAsync(FuseOpcode.StatFs, FuseConstants.RootId, []);
        Assert.Equal(0, error);
        var st = MemoryMarshal.Read<FuseKStatFs>(body);
        Assert.Equal(4096u, st.BSize);
        Assert.Equal(255u, st.NameLen);
        Assert.Equal(3UL, st.Files); // regular files, as the catalog counts them
        Assert.True(st.Blocks * 4096 >= (ulong)_big.Length);
    }

    [Fact]
    public async Task ATruncatedRequestIsAnsweredWithEio()
    {
        await InitAsync();
        Assert.Equal(Native.EIO, (await CallAsync(FuseOpcode.Read, FuseConstants.RootId, new byte[8])).Error);
    }

    [Fact]
    public async Task UnknownInodeIsEnoent()
    {
        await InitAsync();
        Assert.Equal(Native.ENOENT, (await CallAsync(FuseOpcode.GetAttr, 0xDEADBEEF, new byte[16])).Error);
    }
}
