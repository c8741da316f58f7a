namespace DriverAudit.Scanner.Dumps;

/// <summary>
/// Locates the bitmap of a bitmap or summary dump: the 'FDMP'/'SDMP' SUMMARY_DUMP block right after the
/// header (docs/crash-dumps.md §2), or, for old type-2 summary dumps, the legacy 32-bit-field layout.
/// </summary>
internal readonly record struct BitmapBlock(long BitmapOffset, ulong BitCount, long FirstPageOffset, ulong Pages)
{
    private const uint Fdmp = 0x504D4446;
    private const uint Sdmp = 0x504D4453;
    private const uint Dump = 0x504D5544;

    public static BitmapBlock? TryLocate(MappedDumpFile file, DumpHeader header, out DumpOpenError error, out string message)
    {
        long at = header.HeaderSize;
        error = DumpOpenError.None;
        message = "";
        if (!file.Contains(at, 0x38))
        {
            error = DumpOpenError.Truncated;
            message = $"The file ends inside the bitmap block header at 0x{at:X}.";
            return null;
        }
        file.TryReadUInt32(at, out var signature);
        file.TryReadUInt32(at + 4, out var valid);
        if ((signature != Fdmp && signature != Sdmp) || valid != Dump)
        {
            error = DumpOpenError.Corrupt;
            message = $"Dump type {header.RawDumpType} needs an 'FDMP' or 'SDMP' bitmap block at 0x{at:X}; it is not there.";
            return null;
        }
        file.TryReadUInt64(at + 0x20, out var firstPage);
        file.TryReadUInt64(at + 0x28, out var pages);
        file.TryReadUInt64(at + 0x30, out var bits);
        var modern = new BitmapBlock(at + 0x38, bits, (long)Math.Min(firstPage, long.MaxValue), pages);
        if (header.DumpType != DumpType.Summary || modern.Plausible(file)) return modern;

        // Legacy SUMMARY_DUMP (unverified layout, spec §1c): u32 HeaderSize, BitmapSize, Pages.
        file.TryReadUInt32(at + 0x0C, out var legacyFirst);
        file.TryReadUInt32(at + 0x10, out var legacyBits);
        file.TryReadUInt32(at + 0x14, out var legacyPages);
        var legacy = new BitmapBlock(at + (header.Is64 ? 0x28 : 0x20), legacyBits, legacyFirst, legacyPages);
        return legacy.Plausible(file) ? legacy : modern;
    }

    private bool Plausible(MappedDumpFile file) =>
        BitCount != 0 && BitCount <= (ulong)file.Length * 8 && FirstPageOffset >= BitmapOffset + (long)((BitCount + 7) / 8);
}
