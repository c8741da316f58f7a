using System.Buffers.Binary;
using System.Text;

namespace DriverAudit.Scanner.Dumps;

/// <summary>
/// A triage dump's driver list (TRIAGE_DUMP at the header's end, DUMP_DRIVER_ENTRY array, DUMP_STRING names;
/// docs/crash-dumps.md §3). Triage dumps carry no module pages, so every module is marked image-unavailable.
/// </summary>
internal static class TriageDriverList
{
    private const uint ValidTag = 0x44475254; // 'TRGD'
    private const uint DriverListField = 0x40;
    private const int MaxNameChars = 0x800;
    /// <summary>Garbage past the real list shows as implausible entries in a row; stop after this many.</summary>
    private const int MaxImplausibleRun = 16;
    private const int MaxReportedSkips = 8;

    public static List<DumpModule> Read(MappedDumpFile file, DumpHeader header, DiagnosticBag diagnostics)
    {
        var modules = new List<DumpModule>();
        long triage = header.HeaderSize;
        if (!file.TryReadUInt32(triage + 0x08, out var validOffset) ||
            !file.TryReadUInt32(triage + 0x30, out var listOffset) ||
            !file.TryReadUInt32(triage + 0x34, out var count))
        {
            diagnostics.Add(DumpDiagnosticCodes.FileTruncated, "The file ends inside the TRIAGE_DUMP header; no driver list.");
            return modules;
        }
        if (file.TryReadUInt32(triage + 0x04, out var sizeOfDump) && sizeOfDump != DumpHeader.PageFill && sizeOfDump > file.Length)
            diagnostics.Add(DumpDiagnosticCodes.FileTruncated, $"TRIAGE_DUMP.SizeOfDump is 0x{sizeOfDump:X} but the file is only 0x{file.Length:X} bytes.");
        if (!file.TryReadUInt32(validOffset, out var tag) || tag != ValidTag)
            diagnostics.Add(DumpDiagnosticCodes.Triage, $"TRIAGE_DUMP.ValidOffset 0x{validOffset:X} does not point at 'TRGD'; reading the driver list anyway.");
        if (header.MiniDumpFields != DumpHeader.PageFill && (header.MiniDumpFields & DriverListField) == 0)
            diagnostics.Add(DumpDiagnosticCodes.Triage, "MiniDumpFields does not announce a driver list; reading it anyway.");
        if (count == 0 || count == DumpHeader.PageFill || listOffset == 0) return modules;

        var is64 = header.Is64;
        var stride = is64 ? 0x90 : 0x4C;
        // The list cannot run past the file, nor into the string pool the writer puts after it.
        var end = file.Length;
        if (file.TryReadUInt32(triage + 0x38, out var pool) && pool > listOffset && pool < end) end = pool;
        var fits = end > listOffset ? (end - listOffset) / stride : 0;
        if (count > fits || count > ModuleListWalker.MaxModules)
        {
            var cap = Math.Min(fits, ModuleListWalker.MaxModules);
            diagnostics.Add(DumpDiagnosticCodes.FileTruncated, $"The triage driver list claims {count} entries; only {cap} fit before {(end == file.Length ? "the end of the file" : $"the string pool at 0x{end:X}")} (or the list cap) and are read.");
            count = (uint)cap;
        }
        Span<byte> entry = stackalloc byte[0x90];
        entry = entry[..stride];
        var skipped = 0;
        var run = 0; // implausible entries in a row
        for (var i = 0; i < count; i++)
        {
            if (run >= MaxImplausibleRun)
            {
                diagnostics.Add(DumpDiagnosticCodes.Triage, $"The triage driver list: {run} implausible entries in a row at entry {i - run}; the remaining {count - i} entries are not read (a corrupt DriverCount).");
                break;
            }
            file.Read(listOffset + (long)i * stride, entry);
            var nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(entry);
            ulong dllBase = is64 ? BinaryPrimitives.ReadUInt64LittleEndian(entry[0x38..]) : BinaryPrimitives.ReadUInt32LittleEndian(entry[0x1C..]);
            var size = BinaryPrimitives.ReadUInt32LittleEndian(entry[(is64 ? 0x48 : 0x24)..]);
            var checksum = BinaryPrimitives.ReadUInt32LittleEndian(entry[(is64 ? 0x80 : 0x44)..]);
            var stamp = BinaryPrimitives.ReadUInt32LittleEndian(entry[(is64 ? 0x88 : 0x48)..]);
            var why = ModuleListWalker.Implausible(dllBase, size, is64);
            if (why is null && (nameOffset < header.HeaderSize || !file.Contains(nameOffset, 4))) why = $"name offset 0x{nameOffset:X} is outside the file";
            if (why is not null)
            {
                run++;
                if (++skipped <= MaxReportedSkips)
                    diagnostics.Add(DumpDiagnosticCodes.ModuleBase, $"Triage driver entry {i} skipped: {why}.");
                continue;
            }
            run = 0;
            var fullPath = ReadDumpString(file, nameOffset, i, diagnostics);
            var name = ModuleListWalker.BaseName(fullPath);
            if (name.Length == 0) name = $"module@0x{dllBase:X}";
            if (fullPath.Length == 0) fullPath = name;
            size = ModuleListWalker.CheckSize(dllBase, size, name, is64, diagnostics);
            modules.Add(new DumpModule(modules.Count, name, fullPath, dllBase, size, stamp == 0 ? null : stamp, checksum, ImageAvailable: false, EntryAddress: 0));
        }
        if (skipped > MaxReportedSkips)
            diagnostics.Add(DumpDiagnosticCodes.ModuleBase, $"{skipped - MaxReportedSkips} more implausible triage driver entries were skipped.");
        return modules;
    }

    /// <summary>DUMP_STRING: u32 length in UTF-16 units, then the text.</summary>
    private static string ReadDumpString(MappedDumpFile file, uint offset, int index, DiagnosticBag diagnostics)
    {
        if (!file.TryReadUInt32(offset, out var chars))
        {
            diagnostics.Add(DumpDiagnosticCodes.ModuleName, $"Triage driver {index}: name offset 0x{offset:X} is outside the file.");
            return "";
        }
        var want = (int)Math.Min(chars, MaxNameChars);
        if (want < chars)
            diagnostics.Add(DumpDiagnosticCodes.ModuleName, $"Triage driver {index}: name length {chars} exceeds {MaxNameChars}; truncated.");
        var bytes = new byte[want * 2];
        var got = file.Read(offset + 4L, bytes) & ~1;
        if (got < bytes.Length)
            diagnostics.Add(DumpDiagnosticCodes.ModuleName, $"Triage driver {index}: name runs past the end of the file; truncated.");
        var text = Encoding.Unicode.GetString(bytes, 0, got);
        var nul = text.IndexOf('\0');
        return nul >= 0 ? text[..nul] : text;
    }
}
