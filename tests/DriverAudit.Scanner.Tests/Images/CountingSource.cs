using DriverAudit.Scanner.Images;

namespace DriverAudit.Scanner.Tests.Images;

/// <summary>An in-memory file image that counts the bytes read from it, for tests of what a computation reads.</summary>
internal sealed class CountingSource(byte[] bytes) : IImageSource
{
    private readonly MemoryImageSource _inner = new(bytes, ImageLayout.File, new ImageOrigin("counting"));
    public long BytesRead { get; private set; }
    public ImageLayout Layout => _inner.Layout;
    public long Length => _inner.Length;
    public ImageOrigin Origin => _inner.Origin;
    public bool IsAvailable(long position, long length) => _inner.IsAvailable(position, length);
    public void Dispose() { }

    public int Read(long position, Span<byte> destination)
    {
        var n = _inner.Read(position, destination);
        BytesRead += n;
        return n;
    }
}
