using System.Buffers.Binary;
using System.Text;

namespace DriverAudit.Scanner.Dumps;

/// <summary>A driver the dump lists as unloaded before the crash (a triage dump's DUMP_UNLOADED_DRIVERS).</summary>
/// <param name="Name">The name as the kernel kept it: at most 12 characters.</param>
/// <param name="Truncated">True when the recorded length says the real name is longer than what was kept.</param>
/// <param name="Base">Start address.</param>
/// <param name="Size">End − Start.</param>
/// <param name="UnloadTime">Unload time (UTC) when the source records it; triage dumps do not (the kernel drops it).</param>
internal sealed record UnloadedDriver(string Name, bool Truncated, ulong Base, ulong Size, DateTime? UnloadTime);

/// <summary>One TRIAGE_DATA_BLOCK: a raw copy of kernel virtual memory at a file offset.</summary>
internal readonly record struct DataBlock(ulong Address, long FileOffset, uint Size)
{
    public ulong End => Address + Size;
}

/// <summary>
/// What a triage dump holds besides the driver list (docs/crash-dumps.md §3): the data blocks (copies of kernel
/// memory, among them some modules' PE headers), the unloaded-driver list and version data. Every count is
/// bounded by what the file can hold; bad entries become diagnostics.
/// </summary>
internal sealed class TriageDump
{
    /// <summary>Whatever a header says, no triage dump holds more blocks than this (real ones: ~2,000).</summary>
    public const int MaxDataBlocks = 1 << 20;
    public const int MaxUnloaded = 1024;
    private const uint KdbgTag = 0x4742444B;
    private readonly DataBlock[] _blocks; // sorted by address; overlapping copies kept (lookups take the longest run)

    private TriageDump(DataBlock[] blocks, IReadOnlyList<UnloadedDriver> unloaded, uint servicePackBuild, ulong kdbgKernBase, ulong buildLabVa)
    {
        _blocks = blocks;
        Unloaded = unloaded;
        ServicePackBuild = servicePackBuild;
        KdbgKernBase = kdbgKernBase;
        BuildLabAddress = buildLabVa;
    }

    public IReadOnlyList<UnloadedDriver> Unloaded { get; }
    public uint ServicePackBuild { get; }
    public int DataBlockCount => _blocks.Length;
    public long DataBlockBytes => _blocks.Sum(b => (long)b.Size);
    /// <summary>KDBG copy's KernBase (0 when the copy is absent or not tagged 'KDBG').</summary>
    public ulong KdbgKernBase { get; }
    /// <summary>KDBG copy's NtBuildLab pointer (a VA; readable only when a data block holds it).</summary>
    public ulong BuildLabAddress { get; }

    public static TriageDump Read(MappedDumpFile file, DumpHeader header, DiagnosticBag diagnostics)
    {
        long t = header.HeaderSize;
        var is64 = header.Is64;
        file.TryReadUInt32(t, out var spBuild);
        var blocks = ReadBlocks(file, t, is64, diagnostics);
        var unloaded = ReadUnloaded(file, t, is64, diagnostics);

        ulong kernBase = 0, buildLab = 0;
        if (file.TryReadUInt32(t + (is64 ? 0x70 : 0x58), out var kdbgAt) && file.TryReadUInt32(t + (is64 ? 0x74 : 0x5C), out var kdbgSize)
            && kdbgAt != 0 && kdbgAt != DumpHeader.PageFill && kdbgSize >= 0x210 && file.Contains(kdbgAt, 0x210)
            && file.TryReadUInt32(kdbgAt + 0x10L, out var tag) && tag == KdbgTag)
        {
            file.TryReadUInt64(kdbgAt + 0x18L, out kernBase);
            file.TryReadUInt64(kdbgAt + 0x208L, out buildLab);
            if (!is64) { kernBase &= 0xFFFF_FFFF; buildLab &= 0xFFFF_FFFF; } // KDBG stores x86 pointers sign-extended
        }
        return new TriageDump(blocks, unloaded, spBuild == DumpHeader.PageFill ? 0 : spBuild, kernBase, buildLab);
    }

    private static DataBlock[] ReadBlocks(MappedDumpFile file, long t, bool is64, DiagnosticBag diagnostics)
    {
        if (!file.TryReadUInt32(t + (is64 ? 0x78 : 0x60), out var at) || !file.TryReadUInt32(t + (is64 ? 0x7C : 0x64), out var count)
            || at == 0 || count == 0 || at == DumpHeader.PageFill || count == DumpHeader.PageFill)
            return [];
        var fits = file.Length > at ? (file.Length - at) / 16 : 0;
        if (count > fits || count > MaxDataBlocks)
        {
            var cap = Math.Min(fits, MaxDataBlocks);
            diagnostics.Add(DumpDiagnosticCodes.TriageDataBlocks, $"The triage dump claims {count} data blocks at 0x{at:X}; only {cap} fit in the file (or the cap) and are read.");
            count = (uint)cap;
        }
        var list = new List<DataBlock>((int)Math.Min(count, 4096));
        var bad = 0;
        Span<byte> entry = stackalloc byte[16];
        for (var i = 0; i < count; i++)
        {
            file.Read(at + i * 16L, entry);
            var va = BinaryPrimitives.ReadUInt64LittleEndian(entry);
            var offset = BinaryPrimitives.ReadUInt32LittleEndian(entry[8..]);
            var size = BinaryPrimitives.ReadUInt32LittleEndian(entry[12..]);
            if (size == 0) continue;
            string? why = null;
            if (!is64 && !X86Translator.TryNarrow(ref va)) why = $"address 0x{va:X} is not a 32-bit address";
            else if (va > ulong.MaxValue - size) why = $"0x{va:X} + 0x{size:X} wraps the address space";
            else if (!file.Contains(offset, size))
            {
                // Keep what the file holds: a block cut by the end of the file is still a copy of memory.
                var held = file.Length > offset ? file.Length - offset : 0;
                if (held == 0) why = $"file offset 0x{offset:X} is outside the file";
                else
                {
                    diagnostics.Add(DumpDiagnosticCodes.FileTruncated, $"Triage data block {i} (0x{va:X}, 0x{size:X} bytes) is cut by the end of the file after 0x{held:X} bytes.");
                    size = (uint)held;
                }
            }
            if (why is not null)
            {
                if (++bad <= 8) diagnostics.Add(DumpDiagnosticCodes.TriageDataBlocks, $"Triage data block {i} skipped: {why}.");
                continue;
            }
            list.Add(new DataBlock(va, offset, size));
        }
        if (bad > 8) diagnostics.Add(DumpDiagnosticCodes.TriageDataBlocks, $"{bad - 8} more triage data blocks were skipped.");
        list.Sort((a, b) => a.Address != b.Address ? a.Address.CompareTo(b.Address) : b.Size.CompareTo(a.Size));
        return [.. list];
    }

    private static List<UnloadedDriver> ReadUnloaded(MappedDumpFile file, long t, bool is64, DiagnosticBag diagnostics)
    {
        var list = new List<UnloadedDriver>();
        if (!file.TryReadUInt32(t + 0x18, out var at) || at == 0 || at == DumpHeader.PageFill) return list;
        ulong count;
        if (is64) { if (!file.TryReadUInt64(at, out count)) return Truncated(list, diagnostics); }
        else { if (!file.TryReadUInt32(at, out var c32)) return Truncated(list, diagnostics); count = c32; }
        var stride = is64 ? 0x38 : 0x28;
        long first = at + (is64 ? 8 : 4);
        var fits = file.Length > first ? (ulong)((file.Length - first) / stride) : 0;
        if (count > fits || count > MaxUnloaded)
        {
            var cap = Math.Min(fits, MaxUnloaded);
            diagnostics.Add(DumpDiagnosticCodes.UnloadedDrivers, $"The unloaded-driver list claims {count} entries; only {cap} fit in the file (or the cap) and are read.");
            count = cap;
        }
        Span<byte> e = stackalloc byte[0x38];
        e = e[..stride];
        var nameAt = is64 ? 16 : 8;
        var run = 0; // bad entries in a row: a corrupt count runs into other data
        for (var i = 0; i < (int)count; i++)
        {
            if (run >= 16)
            {
                diagnostics.Add(DumpDiagnosticCodes.UnloadedDrivers, $"The unloaded-driver list: {run} implausible entries in a row at entry {i - run}; the remaining {(int)count - i} are not read.");
                break;
            }
            file.Read(first + (long)i * stride, e);
            int length = BinaryPrimitives.ReadUInt16LittleEndian(e); // bytes of the full name
            var kept = e.Slice(nameAt, 24);
            var text = Encoding.Unicode.GetString(kept);
            var chars = Math.Min(length / 2, 12);
            var nul = text.IndexOf('\0');
            if (nul >= 0 && nul < chars) chars = nul;
            var name = text[..chars];
            ulong start = is64 ? BinaryPrimitives.ReadUInt64LittleEndian(e[0x28..]) : BinaryPrimitives.ReadUInt32LittleEndian(e[0x20..]);
            ulong end = is64 ? BinaryPrimitives.ReadUInt64LittleEndian(e[0x30..]) : BinaryPrimitives.ReadUInt32LittleEndian(e[0x24..]);
            string? why = name.Length == 0 ? "no name"
                : name.Any(char.IsControl) ? "the name holds control characters"
                : end <= start || end - start > ModuleListWalker.MaxImageSize ? $"range 0x{start:X}..0x{end:X} is not a module's"
                : ModuleListWalker.Implausible(start, (uint)(end - start), is64);
            if (why is not null)
            {
                if (++run <= 4) diagnostics.Add(DumpDiagnosticCodes.UnloadedDrivers, $"Unloaded driver entry {i} skipped: {why}.");
                continue;
            }
            run = 0;
            list.Add(new UnloadedDriver(name, length / 2 > name.Length, start, end - start, null));
        }
        return list;
    }

    private static List<UnloadedDriver> Truncated(List<UnloadedDriver> list, DiagnosticBag diagnostics)
    {
        diagnostics.Add(DumpDiagnosticCodes.FileTruncated, "The unloaded-driver list's offset is outside the file.");
        return list;
    }

    /// <summary>True when some data block overlaps [va, va + size).</summary>
    public bool Overlaps(ulong va, ulong size)
    {
        if (size == 0) return false;
        var last = va > ulong.MaxValue - (size - 1) ? ulong.MaxValue : va + size - 1;
        var i = LastStartingAtOrBefore(last);
        // The last block starting in or before the range overlaps it, or one of a few overlapping earlier ones does.
        for (var n = 0; i >= 0 && n < 16; i--, n++)
            if (_blocks[i].End > va) return true;
        return false;
    }

    /// <summary>File offset of the byte at <paramref name="va"/> and how many bytes from there are copied contiguously; -1 when no block holds it.</summary>
    public long FileOffsetOf(ulong va, out int contiguous)
    {
        contiguous = 0;
        long best = -1;
        // Overlapping blocks: look back over a few earlier starts and keep the longest run from va.
        var i = LastStartingAtOrBefore(va);
        for (var n = 0; i >= 0 && n < 16; i--, n++)
        {
            var b = _blocks[i];
            if (va >= b.End) continue;
            var run = (int)Math.Min(b.End - va, int.MaxValue);
            if (run > contiguous)
            {
                contiguous = run;
                best = b.FileOffset + (long)(va - b.Address);
            }
        }
        return best;
    }

    /// <summary>Start of the first data block that starts after <paramref name="va"/>, or null.</summary>
    public ulong? NextBlockStart(ulong va)
    {
        var i = LastStartingAtOrBefore(va) + 1;
        return i < _blocks.Length ? _blocks[i].Address : null;
    }

    private int LastStartingAtOrBefore(ulong va)
    {
        int lo = 0, hi = _blocks.Length - 1, found = -1;
        while (lo <= hi)
        {
            var mid = lo + (hi - lo) / 2;
            if (_blocks[mid].Address <= va) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found;
    }
}
