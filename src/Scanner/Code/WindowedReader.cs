using System.Buffers;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// Small reads at (mostly) ascending RVAs served from one larger read: a pass over thousands of referenced addresses
/// costs one read per window instead of one section lookup and cached-block copy per address. Only for images whose
/// reads do not depend on where they start (<see cref="CodeImage.PositionIndependent"/>): there a slice of the window
/// is what <see cref="PeImage.ReadRva"/> of the slice returns, and a read stops at the same first unreadable byte
/// wherever it started, so a window that does not cover a request is simply read again from the request.
/// </summary>
internal sealed class WindowedReader : IDisposable
{
    private const int WindowBytes = 16 << 10;
    private readonly PeImage _image;
    private byte[]? _buffer;
    private uint _start;
    private int _have = -1;

    public WindowedReader(PeImage image) => _image = image;

    /// <summary>As <see cref="PeImage.ReadRva"/>: the bytes at <paramref name="rva"/>, and how many there are.</summary>
    public int Read(uint rva, Span<byte> destination)
    {
        if (destination.Length > WindowBytes) return _image.ReadRva(rva, destination);
        if (_have < 0 || rva < _start || (ulong)rva + (uint)destination.Length > (ulong)_start + (uint)_have)
        {
            _buffer ??= ArrayPool<byte>.Shared.Rent(WindowBytes);
            _start = rva;
            _have = _image.ReadRva(rva, _buffer.AsSpan(0, WindowBytes));
        }
        var offset = (int)(rva - _start);
        var n = Math.Min(destination.Length, _have - offset);
        _buffer!.AsSpan(offset, n).CopyTo(destination);
        return n;
    }

    public void Dispose()
    {
        if (_buffer is not null) ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = null;
    }
}
