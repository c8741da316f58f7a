using System.Buffers.Binary;
using System.Text;

namespace DriverAudit.Scanner.Dumps;

/// <summary>Reads kernel virtual memory; returns bytes copied, stopping at the first missing page.</summary>
internal delegate int VirtualReader(ulong va, Span<byte> destination);

/// <summary>
/// Walks nt!PsLoadedModuleList (InLoadOrderLinks of KLDR_DATA_TABLE_ENTRY, docs/crash-dumps.md §5) with a visited
/// set and a count cap, so a cyclic or endless list ends with a diagnostic instead of a hang.
/// </summary>
internal static class ModuleListWalker
{
    public const int MaxModules = 4096;
    /// <summary>UNICODE_STRING.Length cap (bytes): real module paths are far shorter.</summary>
    public const int MaxNameBytes = 0x1000;
    /// <summary>SizeOfImage cap: no kernel module comes near 1 GiB; a larger value is corruption.</summary>
    public const uint MaxImageSize = 0x4000_0000;

    private readonly record struct Layout(int Pointer, int DllBase, int SizeOfImage, int FullDllName, int BaseDllName, int CheckSum, int EntrySize, int StringSize);

    private static readonly Layout X64 = new(8, 0x30, 0x40, 0x48, 0x58, 0x78, 0x7C, 16);
    private static readonly Layout X86 = new(4, 0x18, 0x20, 0x24, 0x2C, 0x40, 0x44, 8);

    /// <param name="maxEntries">Entries the source can hold at most (its size over the entry size): a list
    /// longer than that loops or is garbage, whatever the links say.</param>
    public static List<DumpModule> Walk(VirtualReader read, bool is64, ulong head, DiagnosticBag diagnostics, long maxEntries = MaxModules)
    {
        var layout = is64 ? X64 : X86;
        var cap = (int)Math.Clamp(maxEntries, 0, MaxModules);
        var skipped = 0;
        var modules = new List<DumpModule>();
        Span<byte> entry = stackalloc byte[0x80];
        entry = entry[..layout.EntrySize];
        Span<byte> headLinks = stackalloc byte[16];
        headLinks = headLinks[..(layout.Pointer * 2)];

        if (head == 0 || read(head, headLinks) != headLinks.Length)
        {
            diagnostics.Add(DumpDiagnosticCodes.ModuleListHead,
                $"PsLoadedModuleList (0x{head:X}) cannot be read through the dump's page tables: the page is missing, or DirectoryTableBase is wrong (e.g. a KVA-shadow user CR3). No modules listed.");
            return modules;
        }

        var visited = new HashSet<ulong> { head };
        var previous = head;
        var current = Pointer(headLinks, 0, layout.Pointer);
        while (current != head)
        {
            if (modules.Count + skipped >= cap)
            {
                diagnostics.Add(DumpDiagnosticCodes.ModuleListTooLong, cap == MaxModules
                    ? $"The module list has more than {MaxModules} entries; the walk stopped there."
                    : $"The module list has more entries than the dump can hold ({cap}); the walk stopped there.");
                break;
            }
            if (!visited.Add(current))
            {
                diagnostics.Add(DumpDiagnosticCodes.ModuleListCycle, $"The module list loops back to entry 0x{current:X} without returning to its head; the walk stopped after {modules.Count} modules.");
                break;
            }
            if (current == 0 || read(current, entry) != entry.Length)
            {
                diagnostics.Add(DumpDiagnosticCodes.ModuleEntryUnreadable, $"Module list entry 0x{current:X} (after {modules.Count} modules) is not in the dump; the walk stopped there.");
                break;
            }
            var flink = Pointer(entry, 0, layout.Pointer);
            var blink = Pointer(entry, layout.Pointer, layout.Pointer);
            if (blink != previous)
                diagnostics.Add(DumpDiagnosticCodes.ModuleListLink, $"Module list entry 0x{current:X}: Blink is 0x{blink:X}, expected 0x{previous:X}.");

            var dllBase = Pointer(entry, layout.DllBase, layout.Pointer);
            var size = BinaryPrimitives.ReadUInt32LittleEndian(entry[layout.SizeOfImage..]);
            if (Implausible(dllBase, size, is64) is { } why)
            {
                // The links still lead on: skip the entry, keep walking.
                skipped++;
                diagnostics.Add(DumpDiagnosticCodes.ModuleBase, $"Module list entry 0x{current:X} skipped: {why}.");
            }
            else modules.Add(ReadModule(read, entry, current, modules.Count, layout, diagnostics));
            previous = current;
            current = flink;
        }
        return modules;
    }

    private static DumpModule ReadModule(VirtualReader read, ReadOnlySpan<byte> entry, ulong entryVa, int index, Layout layout, DiagnosticBag diagnostics)
    {
        var dllBase = Pointer(entry, layout.DllBase, layout.Pointer);
        var size = BinaryPrimitives.ReadUInt32LittleEndian(entry[layout.SizeOfImage..]);
        var fullPath = ReadName(read, entry.Slice(layout.FullDllName, layout.StringSize), layout.Pointer, entryVa, "FullDllName", diagnostics);
        var name = ReadName(read, entry.Slice(layout.BaseDllName, layout.StringSize), layout.Pointer, entryVa, "BaseDllName", diagnostics);
        if (name.Length == 0) name = BaseName(fullPath);
        if (name.Length == 0) name = $"module@0x{dllBase:X}";
        if (fullPath.Length == 0) fullPath = name;
        size = CheckSize(dllBase, size, name, layout.Pointer == 8, diagnostics);

        var (stamp, checksum) = ReadPeStamps(read, dllBase, size);
        checksum ??= BinaryPrimitives.ReadUInt32LittleEndian(entry[layout.CheckSum..]);
        return new DumpModule(index, name, fullPath, dllBase, size, stamp, checksum, ImageAvailable: true, entryVa);
    }

    /// <summary>
    /// Why a (base, size) pair cannot be a loaded kernel module, or null when it can: kernel images sit in the
    /// kernel half of a canonical address space (x64: 0xFFFF8000`00000000 and up, or 0xFF00… with 5-level
    /// paging; x86: 0x80000000 and up), start on a page boundary and are not empty.
    /// </summary>
    internal static string? Implausible(ulong dllBase, uint size, bool is64)
    {
        var kernel = is64 ? dllBase >> 47 == 0x1FFFF || dllBase >> 56 == 0xFF : dllBase is >= 0x8000_0000 and <= 0xFFFF_FFFF;
        if (!kernel) return $"base 0x{dllBase:X} is not a {(is64 ? "canonical x64" : "x86")} kernel address";
        if ((dllBase & 0xFFF) != 0) return $"base 0x{dllBase:X} is not page aligned";
        if (size == 0) return $"base 0x{dllBase:X} has SizeOfImage 0";
        return null;
    }

    internal static uint CheckSize(ulong dllBase, uint size, string name, bool is64, DiagnosticBag diagnostics)
    {
        var limit = is64 ? ulong.MaxValue : 0xFFFF_FFFFUL;
        if (size > MaxImageSize)
        {
            diagnostics.Add(DumpDiagnosticCodes.ModuleSize, $"Module {name} claims SizeOfImage 0x{size:X}; capped at 0x{MaxImageSize:X}.");
            size = MaxImageSize;
        }
        if (dllBase > limit - size)
        {
            diagnostics.Add(DumpDiagnosticCodes.ModuleSize, $"Module {name} at 0x{dllBase:X} with size 0x{size:X} runs past the end of the address space; size capped.");
            size = (uint)Math.Min(size, limit - dllBase);
        }
        return size;
    }

    /// <summary>
    /// Reads a UNICODE_STRING's text. A Length past MaximumLength or the cap, or a buffer that runs into a
    /// missing page, yields the readable prefix and a diagnostic.
    /// </summary>
    private static string ReadName(VirtualReader read, ReadOnlySpan<byte> unicodeString, int pointerSize, ulong entryVa, string field, DiagnosticBag diagnostics)
    {
        int length = BinaryPrimitives.ReadUInt16LittleEndian(unicodeString);
        int maximum = BinaryPrimitives.ReadUInt16LittleEndian(unicodeString[2..]);
        var buffer = Pointer(unicodeString, pointerSize == 8 ? 8 : 4, pointerSize);
        if (length == 0) return "";
        var want = length;
        if (want > maximum)
        {
            diagnostics.Add(DumpDiagnosticCodes.ModuleName, $"Module entry 0x{entryVa:X}: {field}.Length 0x{length:X} exceeds MaximumLength 0x{maximum:X}; name truncated.");
            want = maximum;
        }
        if (want > MaxNameBytes)
        {
            diagnostics.Add(DumpDiagnosticCodes.ModuleName, $"Module entry 0x{entryVa:X}: {field}.Length 0x{want:X} exceeds 0x{MaxNameBytes:X}; name truncated.");
            want = MaxNameBytes;
        }
        want &= ~1;
        Span<byte> bytes = stackalloc byte[MaxNameBytes];
        var got = read(buffer, bytes[..want]) & ~1;
        if (got < want)
            diagnostics.Add(DumpDiagnosticCodes.ModuleName, $"Module entry 0x{entryVa:X}: {field} buffer at 0x{buffer:X} is only partly in the dump (0x{got:X} of 0x{want:X} bytes); name truncated.");
        var text = Encoding.Unicode.GetString(bytes[..got]);
        var nul = text.IndexOf('\0');
        return nul >= 0 ? text[..nul] : text;
    }

    internal static string BaseName(string path)
    {
        var cut = path.LastIndexOfAny(['\\', '/']);
        return cut >= 0 ? path[(cut + 1)..] : path;
    }

    /// <summary>TimeDateStamp and CheckSum from the in-memory PE header (the KLDR tail varies by build).</summary>
    internal static (uint? TimeDateStamp, uint? CheckSum) ReadPeStamps(VirtualReader read, ulong dllBase, uint size)
    {
        Span<byte> dos = stackalloc byte[0x40];
        if (size < 0x40 || read(dllBase, dos) != dos.Length || dos[0] != (byte)'M' || dos[1] != (byte)'Z') return (null, null);
        var lfanew = BinaryPrimitives.ReadUInt32LittleEndian(dos[0x3C..]);
        Span<byte> nt = stackalloc byte[0x5C]; // signature, file header, optional header through CheckSum
        if (size < (uint)nt.Length || lfanew > size - (uint)nt.Length || read(dllBase + lfanew, nt) != nt.Length || !nt[..4].SequenceEqual("PE\0\0"u8)) return (null, null);
        return (BinaryPrimitives.ReadUInt32LittleEndian(nt[8..]), BinaryPrimitives.ReadUInt32LittleEndian(nt[0x58..]));
    }

    private static ulong Pointer(ReadOnlySpan<byte> data, int at, int size) =>
        size == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(data[at..]) : BinaryPrimitives.ReadUInt32LittleEndian(data[at..]);
}
