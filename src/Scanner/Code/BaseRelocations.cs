using System.Buffers.Binary;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// The pointers the base relocation table (data directory 5) says the image stores: blocks of { PageRVA,
/// BlockSize, u16 entries (type &lt;&lt; 12 | offset) }. Code analysis seeds functions from those that point into code.
/// </summary>
internal static class BaseRelocations
{
    private const int MaxTableBytes = 4 << 20;
    private const int HighLow = 3, Dir64 = 10;

    /// <summary>
    /// Calls <paramref name="pointer"/> with the value stored at each DIR64 site (and each HIGHLOW site when
    /// <paramref name="includeHighLow"/>). The table is read once, capped at 4 MiB; a malformed block ends the walk.
    /// </summary>
    public static void ForEachPointer(PeImage image, bool includeHighLow, Action<ulong> pointer)
    {
        var dir = image.GetDirectory(5);
        if (!dir.IsPresent) return;
        var table = new byte[(int)Math.Min(dir.Size, MaxTableBytes)];
        var size = image.ReadRva(dir.VirtualAddress, table);
        // A block's sites lie in one page (offsets 0..0xFFF, 8-byte values): one read of the page serves them all when
        // reads do not depend on where they start; a site the page read did not reach is read on its own.
        var pageReads = CodeImage.PositionIndependent(image);
        var window = pageReads ? new byte[0x1000 + 8] : [];
        Span<byte> value = stackalloc byte[8];
        for (var at = 0; at + 8 <= size;)
        {
            var page = BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(at));
            var blockSize = BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(at + 4));
            if (blockSize < 8 || blockSize > size - at) break;
            var have = pageReads ? image.ReadRva(page, window) : 0;
            for (var e = at + 8; e + 2 <= at + blockSize; e += 2)
            {
                var entry = BinaryPrimitives.ReadUInt16LittleEndian(table.AsSpan(e));
                var type = entry >> 12;
                var offset = entry & 0xFFF;
                if (type == HighLow && includeHighLow)
                {
                    if (offset + 4 <= have) pointer(BinaryPrimitives.ReadUInt32LittleEndian(window.AsSpan(offset)));
                    else if (image.ReadRva(page + (uint)offset, value[..4]) == 4) pointer(BinaryPrimitives.ReadUInt32LittleEndian(value));
                }
                else if (type == Dir64)
                {
                    if (offset + 8 <= have) pointer(BinaryPrimitives.ReadUInt64LittleEndian(window.AsSpan(offset)));
                    else if (image.ReadRva(page + (uint)offset, value) == 8) pointer(BinaryPrimitives.ReadUInt64LittleEndian(value));
                }
            }
            at += (int)blockSize;
        }
    }
}
