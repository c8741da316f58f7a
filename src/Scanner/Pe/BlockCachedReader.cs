using DriverAudit.Scanner.Images;

namespace DriverAudit.Scanner.Pe;

/// <summary>
/// Small read-through cache over an <see cref="IImageSource"/>: directory readers make many tiny reads
/// (a thunk, a name) that cluster in a few pages, and a file source would otherwise pay one system call each.
/// Two 4 KiB blocks, replaced round-robin. Preserves the source's semantics: a read stops at the end of the
/// source or at the first missing page. Not thread-safe (one image, one thread).
/// </summary>
internal sealed class BlockCachedReader
{
    private const int BlockSize = 0x1000;
    private const int BlockCount = 2;
    private readonly IImageSource _source;
    private readonly byte[]?[] _blocks = new byte[BlockCount][];
    private readonly long[] _starts = [-1, -1];
    private readonly int[] _valid = new int[BlockCount];
    private int _next;

    public BlockCachedReader(IImageSource source) => _source = source;

    public IImageSource Source => _source;

    public int Read(long position, Span<byte> destination)
    {
        if (position < 0 || destination.IsEmpty) return 0;
        if (destination.Length > BlockSize) return _source.Read(position, destination);
        var total = 0;
        while (total < destination.Length)
        {
            var pos = position + total;
            var start = pos & ~(long)(BlockSize - 1);
            var slot = GetBlock(start);
            var inBlock = (int)(pos - start);
            var avail = _valid[slot] - inBlock;
            if (avail <= 0) break;
            var n = Math.Min(avail, destination.Length - total);
            _blocks[slot].AsSpan(inBlock, n).CopyTo(destination.Slice(total));
            total += n;
            if (_valid[slot] < BlockSize) break; // block ended early: end of source or missing page
        }
        return total;
    }

    private int GetBlock(long start)
    {
        for (var i = 0; i < BlockCount; i++)
            if (_starts[i] == start) return i;
        var slot = _next;
        _next = (_next + 1) % BlockCount;
        var block = _blocks[slot] ??= new byte[BlockSize];
        _starts[slot] = start;
        _valid[slot] = _source.Read(start, block);
        return slot;
    }
}
