using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;

namespace DriverAudit.Scanner.Dumps;

/// <summary>
/// The dump file mapped read-only; every read is bounds-checked against the file length. Nothing is
/// copied up front, so a multi-GB dump costs address space, not memory.
/// </summary>
internal sealed unsafe class MappedDumpFile : IDisposable
{
    private readonly MemoryMappedFile _mapping;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;
    private volatile bool _disposed;

    private MappedDumpFile(MemoryMappedFile mapping, MemoryMappedViewAccessor view, long length)
    {
        _mapping = mapping;
        _view = view;
        Length = length;
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + view.PointerOffset;
    }

    public long Length { get; }

    /// <summary>Maps <paramref name="path"/>; IO exceptions propagate. Returns null for an empty file (cannot be mapped).</summary>
    public static MappedDumpFile? Open(string path, out long length)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.RandomAccess);
        MemoryMappedFile? mapping = null;
        try
        {
            length = stream.Length;
            if (length == 0)
            {
                stream.Dispose();
                return null;
            }
            mapping = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            var view = mapping.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            return new MappedDumpFile(mapping, view, length);
        }
        catch
        {
            if (mapping is not null) mapping.Dispose();
            else stream.Dispose();
            throw;
        }
    }

    public bool Contains(long offset, long count) =>
        offset >= 0 && count >= 0 && offset <= Length && count <= Length - offset;

    /// <summary>Copies up to destination.Length bytes at <paramref name="offset"/>; returns the count copied.</summary>
    public int Read(long offset, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (offset < 0 || offset >= Length || destination.IsEmpty) return 0;
        var n = (int)Math.Min(destination.Length, Length - offset);
        new ReadOnlySpan<byte>(_base + offset, n).CopyTo(destination);
        return n;
    }

    public bool TryReadUInt32(long offset, out uint value)
    {
        Span<byte> b = stackalloc byte[4];
        if (Read(offset, b) != 4) { value = 0; return false; }
        value = BinaryPrimitives.ReadUInt32LittleEndian(b);
        return true;
    }

    public bool TryReadUInt64(long offset, out ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        if (Read(offset, b) != 8) { value = 0; return false; }
        value = BinaryPrimitives.ReadUInt64LittleEndian(b);
        return true;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_base != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _base = null;
        }
        _view.Dispose();
        _mapping.Dispose();
    }
}
