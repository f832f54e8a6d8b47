using System.Runtime.InteropServices;
using System.Text;
using Cairn.Core;
using Cairn.Repository;

namespace Cairn.Fuse;

#pragma warning disable CA1051 // wire structs mirror the kernel's fuse.h

[StructLayout(LayoutKind.Sequential)]
internal struct FuseGetXAttrIn
{
    public uint Size;
    public uint Padding;
}

[StructLayout(LayoutKind.Sequential)]
internal struct FuseGetXAttrOut
{
    public uint Size;
    public uint Padding;
}

#pragma warning restore CA1051

/// <summary>
/// Read-only extended attributes: every directory and file carries <c>user.cairn.digest</c>, its tree or content
/// digest, so that a build taking dependencies from a mount (<c>--deps-from mount:PATH</c>) puts exactly the product
/// it sees into the build key, and people can check a file against the repository with <c>getfattr</c>.
/// </summary>
internal sealed partial class FuseDispatcher
{
    public const string DigestAttribute = "user.cairn.digest";

    private static readonly byte[] AttributeList = Encoding.ASCII.GetBytes(DigestAttribute + "\0");

    private void GetXAttr(ulong unique, ulong ino, ReadOnlySpan<byte> body)
    {
        var request = FuseWire.Read<FuseGetXAttrIn>(body);
        var name = FuseWire.ReadName(body[Marshal.SizeOf<FuseGetXAttrIn>()..]);
        var node = NodeOrReply(unique, ino);
        if (node is null) return;
        if (name != DigestAttribute || node.Entry.Kind == EntryKind.Symlink)
        {
            ReplyError(unique, Native.ENODATA);
            return;
        }

        ReplyValue(unique, request.Size, Encoding.ASCII.GetBytes(node.Entry.Digest.ToString()));
    }

    private void ListXAttr(ulong unique, ulong ino, FuseGetXAttrIn request)
    {
        var node = NodeOrReply(unique, ino);
        if (node is null) return;
        ReplyValue(unique, request.Size, node.Entry.Kind == EntryKind.Symlink ? [] : AttributeList);
    }

    /// <summary>Size 0 asks only for the length; a smaller buffer than the value gets ERANGE (getxattr(2)).</summary>
    private void ReplyValue(ulong unique, uint size, byte[] value)
    {
        if (size == 0)
        {
            SendStruct(unique, new FuseGetXAttrOut { Size = (uint)value.Length });
            return;
        }

        if (value.Length > size)
        {
            ReplyError(unique, Native.ERANGE);
            return;
        }

        var buffer = new byte[FuseWire.OutHeaderSize + value.Length];
        value.CopyTo(buffer.AsSpan(FuseWire.OutHeaderSize));
        sink.Send(buffer.AsSpan(0, FuseWire.Header(buffer, unique, value.Length)));
    }
}
