namespace DriverAudit.Scanner.Images;

/// <summary>
/// An image held in memory: tests, and dump modules copied out page by page. Missing pages are
/// tracked per page so a reader can tell "zero" from "absent".
/// </summary>
internal sealed class MemoryImageSource : IImageSource
{
    public const int PageSize = 0x1000;
    private readonly ReadOnlyMemory<byte> _bytes;
    private readonly bool[]? _missingPages;

    /// <param name="missingPages">Per 4 KiB page: true when the page is absent; null when all are present.</param>
    public MemoryImageSource(ReadOnlyMemory<byte> bytes, ImageLayout layout, ImageOrigin origin, bool[]? missingPages = null)
    {
        _bytes = bytes;
        Layout = layout;
        Origin = origin;
        _missingPages = missingPages;
    }

    public ImageLayout Layout { get; }
    public long Length => _bytes.Length;
    public ImageOrigin Origin { get; }

    public int Read(long position, Span<byte> destination)
    {
        if (position < 0 || position >= _bytes.Length || destination.IsEmpty) return 0;
        var n = (int)Math.Min(destination.Length, _bytes.Length - position);
        if (_missingPages is not null)
        {
            // Stop at the first missing page inside the range.
            for (long page = position / PageSize; page * PageSize < position + n; page++)
            {
                if (page < _missingPages.Length && _missingPages[page])
                {
                    n = (int)Math.Max(0, page * PageSize - position);
                    break;
                }
            }
        }
        _bytes.Span.Slice((int)position, n).CopyTo(destination);
        return n;
    }

    public bool IsAvailable(long position, long length)
    {
        if (position < 0 || length < 0 || position > _bytes.Length || length > _bytes.Length - position) return false;
        if (_missingPages is null || length == 0) return true;
        for (long page = position / PageSize; page * PageSize < position + length; page++)
            if (page < _missingPages.Length && _missingPages[page]) return false;
        return true;
    }

    public void Dispose() { }
}
