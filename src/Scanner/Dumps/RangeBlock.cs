namespace DriverAudit.Scanner.Dumps;

/// <summary>
/// The 'RDMP' block of range dumps (types 8, 9 and 0xA; docs/crash-dumps.md §2b): a list of {PFN, page count}
/// ranges whose pages are stored one after another from FirstPageOffset, which is exactly a run table.
/// </summary>
internal static class RangeBlock
{
    private const uint Marker = 0x40;
    private const uint Rdmp = 0x504D4452; // 'RDMP'
    private const uint Dump = 0x504D5544; // 'DUMP'
    /// <summary>Whatever MetadataSize says, no real range dump has more ranges than this.</summary>
    public const int MaxRanges = 1 << 20;

    public static (List<PhysicalRun> Runs, long FirstPage, ulong DeclaredPages)? TryRead(
        MappedDumpFile file, DumpHeader header, DiagnosticBag diagnostics, out DumpOpenError error, out string message)
    {
        error = DumpOpenError.None;
        message = "";
        long at = header.HeaderSize;
        if (!header.Is64)
            return Fail(DumpOpenError.UnsupportedType, $"Dump type {header.RawDumpType} ('RDMP' range dump) of a 32-bit system: the layout is only known for 64-bit dumps.", out error, out message);
        if (!file.Contains(at, 0x30))
            return Fail(DumpOpenError.Truncated, $"The file ends inside the 'RDMP' block at 0x{at:X}.", out error, out message);
        file.TryReadUInt32(at, out var marker);
        file.TryReadUInt32(at + 4, out var signature);
        file.TryReadUInt32(at + 8, out var valid);
        file.TryReadUInt64(at + 0x10, out var metadataSize);
        file.TryReadUInt64(at + 0x18, out var firstPage);
        if (marker != Marker || signature != Rdmp || valid != Dump)
            return Fail(DumpOpenError.Corrupt, $"Dump type {header.RawDumpType} needs an 'RDMP' block (marker 0x40, 'RDMP', 'DUMP') at 0x{at:X}; it is not there.", out error, out message);
        // FirstPageOffset = header + 0x20-byte block head + MetadataSize (kdmp-parser's LooksGood check).
        if (metadataSize < 0x10 || metadataSize > (ulong)file.Length || firstPage != (ulong)at + 0x20 + metadataSize)
            return Fail(DumpOpenError.Corrupt, $"The 'RDMP' block is inconsistent: MetadataSize 0x{metadataSize:X}, FirstPageOffset 0x{firstPage:X} (expected 0x{at + 0x20:X} + MetadataSize).", out error, out message);

        var complete = header.RawDumpType == 10;
        ulong declared = DumpHeader.PageFill; // unknown for 8/9: no check against a total
        var slots = (long)((metadataSize - 0x10) / 16);
        if (complete)
        {
            file.TryReadUInt32(at + 0x20, out var ranges);
            file.TryReadUInt64(at + 0x28, out declared);
            if (ranges < slots) slots = ranges;
            else if (ranges > slots)
                diagnostics.Add(DumpDiagnosticCodes.RangeBlock, $"NumberOfRanges is {ranges} but MetadataSize holds at most {slots}; {slots} are read.");
        }
        var available = Math.Max(0, (file.Length - (at + 0x30)) / 16);
        if (slots > available || slots > MaxRanges)
        {
            diagnostics.Add(DumpDiagnosticCodes.RangeBlock, $"The 'RDMP' block describes {slots} ranges; only {Math.Min(available, MaxRanges)} fit in the file (or the cap) and are read.");
            slots = Math.Min(available, MaxRanges);
        }
        var runs = new List<PhysicalRun>();
        ulong sum = 0;
        for (long i = 0; i < slots; i++)
        {
            file.TryReadUInt64(at + 0x30 + i * 16, out var pfn);
            file.TryReadUInt64(at + 0x38 + i * 16, out var count);
            if (pfn == 0) break; // the list ends at PFN 0 (kdmp-parser)
            runs.Add(new PhysicalRun(pfn, count));
            sum += Math.Min(count, ulong.MaxValue - sum);
            if (complete && sum >= declared) break;
        }
        return (runs, (long)firstPage, declared);
    }

    private static (List<PhysicalRun>, long, ulong)? Fail(DumpOpenError e, string m, out DumpOpenError error, out string message)
    {
        error = e;
        message = m;
        return null;
    }
}
