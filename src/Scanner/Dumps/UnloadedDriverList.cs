using System.Buffers.Binary;
using System.Text;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Dumps;

/// <summary>
/// The kernel's own record of unloaded drivers in dumps that hold memory (full, bitmap, range dumps and raw
/// images; docs/crash-dumps.md §6): KDBG.MmUnloadedDrivers (0x220) is the address of the pointer to an array of
/// UNLOADED_DRIVERS (x64: UNICODE_STRING Name, StartAddress, EndAddress, CurrentTime = 0x28 bytes; x86: 0x18) and
/// KDBG.MmLastUnloadedDriver (0x228) the address of the number of entries in use. The kernel keeps at most 50
/// (MI_UNLOADED_DRIVERS), the oldest first, with the full name and the unload time. Every pointer is validated and
/// every count capped; what cannot be read becomes a diagnostic.
/// </summary>
internal static class UnloadedDriverList
{
    /// <summary>MI_UNLOADED_DRIVERS: the array's fixed length.</summary>
    public const int MaxEntries = 50;
    private const uint KdbgTag = 0x4742444B; // 'KDBG'
    private const int KdbgUnloadedFields = 0x230; // the block must reach MmLastUnloadedDriver

    /// <summary>
    /// Reads the list through the KDBG at <paramref name="kdbg"/> (a VA). Empty when the KDBG is absent, encoded
    /// (no 'KDBG' tag: Windows 8+ keeps it encoded in memory unless a debugger decoded it) or not the kernel's
    /// (its KernBase differs from <paramref name="kernelBase"/>).
    /// </summary>
    public static IReadOnlyList<UnloadedDriver> Read(VirtualReader read, bool is64, ulong kdbg, ulong kernelBase, DiagnosticBag diagnostics)
    {
        if (kdbg == 0 || (uint)kdbg == DumpHeader.PageFill || (uint)(kdbg >> 32) == DumpHeader.PageFill) return [];
        Span<byte> block = stackalloc byte[KdbgUnloadedFields];
        if (read(kdbg, block) != block.Length) return [];
        if (BinaryPrimitives.ReadUInt32LittleEndian(block[0x10..]) != KdbgTag) return [];
        if (BinaryPrimitives.ReadUInt32LittleEndian(block[0x14..]) < KdbgUnloadedFields) return [];
        if (Narrow(BinaryPrimitives.ReadUInt64LittleEndian(block[0x18..]), is64) != kernelBase) return [];
        var arrayPointer = Narrow(BinaryPrimitives.ReadUInt64LittleEndian(block[0x220..]), is64);
        var countAddress = Narrow(BinaryPrimitives.ReadUInt64LittleEndian(block[0x228..]), is64);
        if (arrayPointer == 0 || countAddress == 0) return [];

        Span<byte> word = stackalloc byte[8];
        var pointerSize = is64 ? 8 : 4;
        if (read(countAddress, word[..4]) != 4)
        {
            diagnostics.Add(DumpDiagnosticCodes.UnloadedDrivers, $"MmLastUnloadedDriver at 0x{countAddress:X} is not in the dump; unloaded drivers not read.");
            return [];
        }
        var count = BinaryPrimitives.ReadUInt32LittleEndian(word);
        if (count == 0) return [];
        if (read(arrayPointer, word[..pointerSize]) != pointerSize)
        {
            diagnostics.Add(DumpDiagnosticCodes.UnloadedDrivers, $"MmUnloadedDrivers at 0x{arrayPointer:X} is not in the dump; {count} unloaded driver(s) not read.");
            return [];
        }
        var array = is64 ? BinaryPrimitives.ReadUInt64LittleEndian(word) : BinaryPrimitives.ReadUInt32LittleEndian(word);
        if (count > MaxEntries)
        {
            diagnostics.Add(DumpDiagnosticCodes.UnloadedDrivers, $"MmLastUnloadedDriver says {count} entries; the kernel keeps at most {MaxEntries}, so {MaxEntries} are read.");
            count = MaxEntries;
        }
        if (array == 0) return [];

        var stride = is64 ? 0x28 : 0x18;
        Span<byte> e = stackalloc byte[0x28];
        e = e[..stride];
        var list = new List<UnloadedDriver>((int)count);
        for (var i = 0; i < (int)count; i++)
        {
            var at = array + (ulong)(i * stride);
            if (at < array || read(at, e) != stride)
            {
                diagnostics.Add(DumpDiagnosticCodes.UnloadedDrivers, $"Unloaded driver entry {i} at 0x{at:X} is not in the dump; the remaining {(int)count - i} are not read.");
                break;
            }
            int length = BinaryPrimitives.ReadUInt16LittleEndian(e);
            var buffer = is64 ? BinaryPrimitives.ReadUInt64LittleEndian(e[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(e[4..]);
            var startAt = is64 ? 0x10 : 0x08; // after the UNICODE_STRING
            ulong start = is64 ? BinaryPrimitives.ReadUInt64LittleEndian(e[startAt..]) : BinaryPrimitives.ReadUInt32LittleEndian(e[startAt..]);
            ulong end = is64 ? BinaryPrimitives.ReadUInt64LittleEndian(e[(startAt + 8)..]) : BinaryPrimitives.ReadUInt32LittleEndian(e[(startAt + 4)..]);
            var time = BinaryPrimitives.ReadInt64LittleEndian(e[(is64 ? 0x20 : 0x10)..]);
            var name = ReadName(read, buffer, length);
            string? why = name is null ? $"its name (0x{length:X} bytes at 0x{buffer:X}) is not readable text"
                : end <= start || end - start > ModuleListWalker.MaxImageSize ? $"range 0x{start:X}..0x{end:X} is not a module's"
                : ModuleListWalker.Implausible(start, (uint)(end - start), is64);
            if (why is not null)
            {
                diagnostics.Add(DumpDiagnosticCodes.UnloadedDrivers, $"Unloaded driver entry {i} skipped: {why}.");
                continue;
            }
            list.Add(new UnloadedDriver(name!, false, start, end - start, FileTime(time)));
        }
        return list;
    }

    /// <summary>Bytes of ntoskrnl's writable data sections searched for a KDBG at most.</summary>
    internal const int MaxKdbgSearchBytes = 64 << 20;

    /// <summary>
    /// Raw images have no header naming KdDebuggerDataBlock: the block is searched for in ntoskrnl's writable,
    /// non-executable sections (where the kernel keeps it), 8-byte aligned, tagged 'KDBG', at least 0x230 bytes
    /// long and naming <paramref name="kernel"/>'s base as KernBase. Bounded by the sections' distinct bytes (at
    /// most <see cref="MaxKdbgSearchBytes"/>); pages the image does not hold are skipped. 0 when none is found
    /// (Windows 8 and later keep it encoded unless a debugger decoded it).
    /// </summary>
    public static ulong FindKdbg(KernelDump dump, DumpModule kernel, bool is64, out string note)
    {
        using var source = dump.OpenModuleImage(kernel);
        var pe = PeImage.TryOpen(source).Image;
        if (pe is null)
        {
            note = "KDBG: ntoskrnl's headers are not readable; not searched";
            return 0;
        }
        var spans = pe.DistinctSpans(s => (s.Characteristics & PeSection.MemWrite) != 0 && !s.Executable);
        var page = new byte[0x1000];
        long searched = 0;
        foreach (var span in spans)
        {
            for (var rva = span.Rva & ~0xFFFu; rva < span.Rva + span.Length && searched < MaxKdbgSearchBytes; rva += 0x1000)
            {
                var n = dump.ReadVirtual(kernel.Base + rva, page);
                searched += 0x1000;
                for (var at = 0x10; at + 4 <= n; at += 8)
                {
                    if (BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(at)) != KdbgTag) continue;
                    var block = kernel.Base + rva + (ulong)at - 0x10;
                    Span<byte> head = stackalloc byte[0x20];
                    if (dump.ReadVirtual(block, head) != head.Length) continue;
                    if (BinaryPrimitives.ReadUInt32LittleEndian(head[0x14..]) < KdbgUnloadedFields) continue;
                    if (Narrow(BinaryPrimitives.ReadUInt64LittleEndian(head[0x18..]), is64) != kernel.Base) continue;
                    note = $"KDBG at 0x{block:X} in ntoskrnl's {SectionName(pe, rva + (uint)at)} (found by search: tag 'KDBG', KernBase = ntoskrnl)";
                    return block;
                }
            }
        }
        note = $"KDBG: none decoded in ntoskrnl's writable data sections ({searched / 1024} KiB searched; Windows 8 and later keep it encoded), so unloaded drivers are not listed";
        return 0;
    }

    private static string SectionName(PeImage pe, uint rva) => pe.Sections.FirstOrDefault(s => s.Contains(rva))?.Name is { Length: > 0 } name ? name : "data";

    /// <summary>A driver's name: 1–260 UTF-16 characters, no control characters; null otherwise.</summary>
    private static string? ReadName(VirtualReader read, ulong buffer, int length)
    {
        if (length is <= 0 or > 520 || length % 2 != 0 || buffer == 0) return null;
        Span<byte> text = stackalloc byte[520];
        if (read(buffer, text[..length]) != length) return null;
        var name = Encoding.Unicode.GetString(text[..length]);
        return name.Any(char.IsControl) ? null : name;
    }

    /// <summary>A FILETIME between 1980 and 2200 as UTC; null for anything else (unset or garbage).</summary>
    private static DateTime? FileTime(long value)
    {
        const long From = 119_600_064_000_000_000; // 1980-01-01
        const long To = 189_025_920_000_000_000; // 2200-01-01
        return value is >= From and < To ? DateTime.FromFileTimeUtc(value) : null;
    }

    private static ulong Narrow(ulong value, bool is64) => is64 ? value : value & 0xFFFF_FFFF; // x86 KDBG pointers are sign-extended
}
