using System.Text;

namespace Cairn.Build;

/// <summary>Writes to a file and, optionally, to a live view. The live view never slows or fails the build.</summary>
internal sealed class TeeStream(Stream file, Stream? live) : Stream
{
    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => file.Length;

    public override long Position { get => file.Position; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        file.Write(buffer);
        try
        {
            live?.Write(buffer);
        }
        catch (IOException)
        {
            // A closed terminal must not fail the build.
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override void Flush()
    {
        file.Flush();
        live?.Flush();
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public void WriteLine(string text) => Write(Encoding.UTF8.GetBytes(text + "\n"));
}

/// <summary>
/// Turns a byte stream into whole lines written to <paramref name="writer"/> as "prefix | line", so the output of
/// parallel builds stays readable. Writers share <paramref name="gate"/>.
/// </summary>
public sealed class LinePrefixStream(TextWriter writer, string prefix, Lock gate) : Stream
{
    private readonly MemoryStream _pending = new();

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            var newline = buffer.IndexOf((byte)'\n');
            if (newline < 0)
            {
                _pending.Write(buffer);
                return;
            }

            _pending.Write(buffer[..newline]);
            Emit();
            buffer = buffer[(newline + 1)..];
        }
    }

    private void Emit()
    {
        var line = Encoding.UTF8.GetString(_pending.GetBuffer(), 0, (int)_pending.Length);
        _pending.SetLength(0);
        lock (gate)
        {
            writer.WriteLine($"{prefix} | {line}");
        }
    }

    public override void Flush()
    {
        lock (gate) writer.Flush();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && _pending.Length > 0) Emit();
        base.Dispose(disposing);
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
