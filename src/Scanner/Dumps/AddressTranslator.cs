using System.Collections.Concurrent;

namespace DriverAudit.Scanner.Dumps;

/// <summary>Reads physical memory of a dump through its page map.</summary>
internal sealed class PhysicalReader(MappedDumpFile file, IPhysicalMemory memory)
{
    public MappedDumpFile File { get; } = file;

    public IPhysicalMemory Memory { get; } = memory;

    /// <summary>Page-table entries read so far (a cost counter: tests assert work follows what the dump holds).</summary>
    public long EntryReads => _entryReads;
    private long _entryReads;

    /// <summary>File offset of physical address <paramref name="pa"/>, or -1 when its page is absent.</summary>
    public long FileOffsetOf(ulong pa)
    {
        var page = Memory.FileOffsetOf(pa >> 12);
        return page < 0 ? -1 : page + (long)(pa & 0xFFF);
    }

    public bool TryReadUInt64(ulong pa, out ulong value)
    {
        _entryReads++; // not atomic on purpose: a counter for single-threaded tests, never used for decisions
        var at = FileOffsetOf(pa);
        value = 0;
        return at >= 0 && (pa & 0xFFF) <= 0xFF8 && File.TryReadUInt64(at, out value);
    }

    public bool TryReadUInt32(ulong pa, out uint value)
    {
        _entryReads++;
        var at = FileOffsetOf(pa);
        value = 0;
        return at >= 0 && (pa & 0xFFF) <= 0xFFC && File.TryReadUInt32(at, out value);
    }
}

/// <summary>
/// Virtual → physical translation by walking the dumped page tables (docs/crash-dumps.md §4). Each walk reads at
/// most one entry per level, so it is bounded by construction. A page that is not present and not a usable
/// transition page is simply missing.
/// </summary>
internal abstract class AddressTranslator(PhysicalReader physical)
{
    protected const ulong Present = 1;
    protected const ulong LargePage = 1 << 7;
    protected const ulong PrototypeBit = 1 << 10;
    protected const ulong TransitionBit = 1 << 11;
    protected const ulong PageSize = 0x1000;

    protected PhysicalReader Physical { get; } = physical;

    /// <summary>Translates <paramref name="va"/>; false when the page is not mapped or a table is missing.</summary>
    public bool TryTranslate(ulong va, out ulong pa) => TryTranslate(va, out pa, out _);

    /// <summary>
    /// Translates <paramref name="va"/>. When it is not mapped, <paramref name="absent"/> is how many bytes from
    /// <paramref name="va"/> on are known unmapped: the rest of the region of the entry that was missing (a whole
    /// 512 GiB, 1 GiB or 2 MiB at a time when an upper-level entry is absent), at least the rest of its page.
    /// </summary>
    public abstract bool TryTranslate(ulong va, out ulong pa, out ulong absent);

    /// <summary>
    /// Number of the <paramref name="pages"/> 4 KiB pages from <paramref name="va"/> (page aligned) that translate
    /// to a page the dump holds. The default walks page by page but skips unmapped regions whole.
    /// </summary>
    public virtual long CountHeldPages(ulong va, long pages)
    {
        long held = 0;
        for (long i = 0; i < pages;)
        {
            var at = va + (ulong)i * PageSize;
            if (TryTranslate(at, out var pa, out var absent))
            {
                if (Physical.Memory.FileOffsetOf(pa >> 12) >= 0) held++;
                i++;
                continue;
            }
            i += (long)Math.Min((ulong)(pages - i), Math.Max(1, absent / PageSize));
        }
        return held;
    }

    /// <summary>
    /// An entry is followed when present, or when it is a transition entry (bit 11 set, bit 10 clear): the data
    /// still sits in the PFN it names. Whether that PFN is in the dump is decided by the physical map.
    /// </summary>
    protected static bool Usable(ulong entry) =>
        (entry & Present) != 0 || (entry & (TransitionBit | PrototypeBit)) == TransitionBit;

    protected static bool IsLarge(ulong entry) => (entry & Present) != 0 && (entry & LargePage) != 0;

    public static AddressTranslator Create(DumpHeader header, PhysicalReader physical) =>
        header.Machine == DumpMachine.X64
            ? new X64Translator(physical, header.DirectoryTableBase)
            : header.Machine == DumpMachine.Arm64
            ? new Arm64Translator(physical, header.DirectoryTableBase)
            : header.PaeEnabled
                ? new X86PaeTranslator(physical, header.DirectoryTableBase)
                : new X86Translator(physical, header.DirectoryTableBase);
}

/// <summary>
/// Radix-tree paging (x64 4/5-level, x86 PAE, x86): one walk per translation, and a page count over a range that
/// reads each table once. Tables wholly inside the range are counted once per (level, frame) and remembered, so a
/// range that claims gigabytes costs the tables the dump holds (each ≤ 512 entries), not one walk per claimed page,
/// even when hostile tables alias one another.
/// </summary>
internal abstract class PagingTranslator(PhysicalReader physical) : AddressTranslator(physical)
{
    /// <param name="Shift">Bit of the virtual address where this level's index starts.</param>
    /// <param name="Bits">Index width (9 for 512 entries).</param>
    /// <param name="EntrySize">4 or 8 bytes.</param>
    /// <param name="LargeMask">Frame bits of a large page mapped at this level; 0 when none can be.</param>
    protected readonly record struct Level(int Shift, int Bits, int EntrySize, ulong LargeMask);

    private readonly ConcurrentDictionary<(int Level, ulong Table), long> _heldPerTable = new();

    protected abstract Level[] Levels { get; }

    /// <summary>Brings <paramref name="va"/> into the walked address space; false (with the gap ahead) when it is outside it.</summary>
    protected abstract bool Normalize(ref ulong va, out ulong gap);

    /// <summary>Physical address of the top-level table that maps <paramref name="va"/> (normalised).</summary>
    protected abstract ulong TopTable(ulong va);

    /// <summary>Bytes of virtual address one top-level table covers (its index bits and everything below).</summary>
    private ulong TopCoverage => Levels[0].Shift + Levels[0].Bits >= 64 ? 0 : 1UL << (Levels[0].Shift + Levels[0].Bits);

    /// <summary>Physical frame an entry points at (next table, or the 4 KiB page at the last level).</summary>
    protected abstract ulong FrameOf(int level, ulong entry);

    /// <summary>False when [lo, last] (both normalised) straddles a hole of the address space.</summary>
    protected virtual bool Contiguous(ulong lo, ulong last) => true;

    /// <summary>Whether the walk follows an entry at this level (present, or a usable transition entry).</summary>
    protected virtual bool Follow(int level, ulong entry) => Usable(entry);

    /// <summary>Whether an entry above the last level maps a large page (x86/x64: present with PS, bit 7).</summary>
    protected virtual bool IsLargeEntry(ulong entry) => IsLarge(entry);

    private bool ReadEntry(ulong pa, int size, out ulong entry)
    {
        if (size == 8) return Physical.TryReadUInt64(pa, out entry);
        var ok = Physical.TryReadUInt32(pa, out var e);
        entry = e;
        return ok;
    }

    public override bool TryTranslate(ulong va, out ulong pa, out ulong absent)
    {
        pa = 0;
        absent = PageSize - (va & 0xFFF);
        if (!Normalize(ref va, out var gap))
        {
            absent = Math.Max(absent, gap);
            return false;
        }
        var levels = Levels;
        var table = TopTable(va);
        for (var l = 0; l < levels.Length; l++)
        {
            var level = levels[l];
            var index = (va >> level.Shift) & ((1UL << level.Bits) - 1);
            if (!ReadEntry(table + index * (ulong)level.EntrySize, level.EntrySize, out var e) || !Follow(l, e))
            {
                var span = 1UL << level.Shift;
                absent = span - (va & (span - 1));
                return false;
            }
            if (l == levels.Length - 1)
            {
                pa = FrameOf(l, e) | (va & 0xFFF);
                return true;
            }
            if (level.LargeMask != 0 && IsLargeEntry(e))
            {
                pa = (e & level.LargeMask) | (va & ((1UL << level.Shift) - 1));
                return true;
            }
            table = FrameOf(l, e);
        }
        return false; // not reached: the last level returns
    }

    public override long CountHeldPages(ulong va, long pages)
    {
        if (pages <= 0) return 0;
        va &= ~(PageSize - 1);
        var length = (ulong)(pages - 1) * PageSize;
        if (va > ulong.MaxValue - length) return base.CountHeldPages(va, pages); // wraps: walk it page by page
        ulong v = va, last = va + length; // last: first byte of the range's last page
        // Walk the tables only when the whole range lies in one walkable stretch (no hole, no narrowing jump).
        if (!Normalize(ref v, out _) || !Normalize(ref last, out _) || last - v != length || !Contiguous(v, last))
            return base.CountHeldPages(va, pages);
        var coverage = TopCoverage;
        long held = 0;
        // One top-level table per coverage-sized chunk (x64: one for the whole space; raw PAE: one directory per GiB).
        for (var lo = v; ;)
        {
            var chunkLast = coverage == 0 ? ulong.MaxValue : (lo | (coverage - 1));
            var hi = Math.Min(last, chunkLast);
            held += CountIn(0, TopTable(lo), lo, hi);
            if (hi >= last) break;
            lo = hi + 1;
        }
        return held;
    }

    /// <summary>Held pages among [lo, last] (page starts), all inside the coverage of <paramref name="table"/> at <paramref name="level"/>.</summary>
    private long CountIn(int level, ulong table, ulong lo, ulong last)
    {
        if (Physical.FileOffsetOf(table) < 0) return 0; // the table itself is not in the dump: nothing below it is
        var levels = Levels;
        var lv = levels[level];
        var span = 1UL << lv.Shift;
        var mask = (1UL << lv.Bits) - 1;
        var first = (lo >> lv.Shift) & mask;
        var end = (last >> lv.Shift) & mask;
        var above = lv.Shift + lv.Bits;
        var regionBase = above >= 64 ? 0 : lo & ~((1UL << above) - 1);
        long held = 0;
        for (var i = first; i <= end; i++)
        {
            if (!ReadEntry(table + i * (ulong)lv.EntrySize, lv.EntrySize, out var e) || !Follow(level, e)) continue;
            var start = regionBase + i * span;
            var from = Math.Max(lo, start);
            var to = Math.Min(last, start + (span - 1));
            if (level == levels.Length - 1)
            {
                if (Physical.Memory.FileOffsetOf(FrameOf(level, e) >> 12) >= 0) held++;
            }
            else if (lv.LargeMask != 0 && IsLargeEntry(e))
            {
                var pfn = ((e & lv.LargeMask) + (from - start)) >> 12;
                held += Physical.Memory.CountHeld(pfn, ((to - from) >> 12) + 1);
            }
            else if (from == start && to == start + (span - 1))
            {
                var child = FrameOf(level, e);
                held += _heldPerTable.TryGetValue((level + 1, child), out var known)
                    ? known
                    : _heldPerTable.GetOrAdd((level + 1, child), CountIn(level + 1, child, start, to));
            }
            else
            {
                held += CountIn(level + 1, FrameOf(level, e), from, to);
            }
        }
        return held;
    }
}

/// <summary>x64 4-level paging (5-level with LA57) with 1 GiB and 2 MiB pages.</summary>
internal sealed class X64Translator : PagingTranslator
{
    private const ulong TableMask = 0x000F_FFFF_FFFF_F000;
    // Software bits of a transition entry collide with high PFN bits; keep the bits real machines use.
    private const ulong TransitionMask = 0x0000_FFFF_FFFF_F000;
    private static readonly Level[] FourLevels =
    [
        new(39, 9, 8, 0), new(30, 9, 8, 0x000F_FFFF_C000_0000), new(21, 9, 8, 0x000F_FFFF_FFE0_0000), new(12, 9, 8, 0),
    ];
    private static readonly Level[] FiveLevels = [new(48, 9, 8, 0), .. FourLevels];
    private readonly ulong _root;
    private readonly int _vaBits;

    public X64Translator(PhysicalReader physical, ulong directoryTableBase, bool fiveLevel = false) : base(physical)
    {
        _root = directoryTableBase & TableMask; // low 12 bits carry the PCID
        FiveLevel = fiveLevel;
        _vaBits = fiveLevel ? 57 : 48;
    }

    /// <summary>LA57: CR3 names a PML5 and virtual addresses have 57 significant bits.</summary>
    public bool FiveLevel { get; }

    protected override Level[] Levels => FiveLevel ? FiveLevels : FourLevels;

    protected override bool Normalize(ref ulong va, out ulong gap)
    {
        gap = 0;
        var high = va >> (_vaBits - 1);
        var ones = (1UL << (65 - _vaBits)) - 1;
        if (high == 0 || high == ones) return true;
        // Non-canonical: the hole ends where the kernel half starts.
        var kernelStart = ~0UL << (_vaBits - 1);
        if (va < kernelStart) gap = kernelStart - va;
        return false;
    }

    protected override bool Contiguous(ulong lo, ulong last) => lo >> (_vaBits - 1) == last >> (_vaBits - 1);

    protected override ulong TopTable(ulong va) => _root;

    protected override ulong FrameOf(int level, ulong entry) => entry & ((entry & Present) != 0 ? TableMask : TransitionMask);
}

/// <summary>
/// ARM64 with the 4 KiB granule and 48-bit addresses: four levels of 512 8-byte descriptors, 1 GiB blocks at level
/// 1 and 2 MiB blocks at level 2. The walk starts at the dump header's DirectoryTableBase for both halves (kernel
/// addresses, bits 63..48 all ones, index it by bits 47..39 like user ones): one top-level table, as Windows'
/// self-map at level 0 implies. A descriptor is followed only when valid (bit 0); bit 1 clear is a block at levels
/// 1 and 2 and reserved at levels 0 and 3. Invalid descriptors (whatever software format Windows keeps there) are
/// missing pages.
/// </summary>
internal sealed class Arm64Translator(PhysicalReader physical, ulong directoryTableBase) : PagingTranslator(physical)
{
    private const ulong Valid = 1, TableOrPage = 2;
    private const ulong OutputMask = 0x0000_FFFF_FFFF_F000; // bits 47..12
    private static readonly Level[] FourLevels =
    [
        new(39, 9, 8, 0), new(30, 9, 8, 0x0000_FFFF_C000_0000), new(21, 9, 8, 0x0000_FFFF_FFE0_0000), new(12, 9, 8, 0),
    ];
    private readonly ulong _root = directoryTableBase & OutputMask; // TTBR: ASID in bits 63..48, CnP in bit 0

    protected override Level[] Levels => FourLevels;

    protected override bool Normalize(ref ulong va, out ulong gap)
    {
        gap = 0;
        var high = va >> 48;
        if (high is 0 or 0xFFFF) return true;
        if (va < 0xFFFF_0000_0000_0000) gap = 0xFFFF_0000_0000_0000 - va; // the hole between the halves
        return false;
    }

    protected override bool Contiguous(ulong lo, ulong last) => lo >> 48 == last >> 48;

    protected override ulong TopTable(ulong va) => _root;

    protected override ulong FrameOf(int level, ulong entry) => entry & OutputMask;

    protected override bool Follow(int level, ulong entry) =>
        (entry & Valid) != 0 && ((entry & TableOrPage) != 0 || level is 1 or 2);

    protected override bool IsLargeEntry(ulong entry) => (entry & (Valid | TableOrPage)) == Valid;
}

/// <summary>x86 PAE: a 4-entry PDPT (32-byte aligned, not page aligned), 8-byte entries, 2 MiB large pages.</summary>
internal class X86PaeTranslator(PhysicalReader physical, ulong directoryTableBase) : PagingTranslator(physical)
{
    protected const ulong FrameMask = 0x000F_FFFF_FFFF_F000; // also drops NX (bit 63)
    private static readonly Level[] PaeLevels = [new(30, 2, 8, 0), new(21, 9, 8, 0x000F_FFFF_FFE0_0000), new(12, 9, 8, 0)];
    private readonly ulong _pdpt = directoryTableBase & 0xFFFF_FFE0;

    protected override Level[] Levels => PaeLevels;

    protected override bool Normalize(ref ulong va, out ulong gap) => X86Translator.Narrow(ref va, out gap);

    protected override ulong TopTable(ulong va) => _pdpt;

    protected override ulong FrameOf(int level, ulong entry) => entry & FrameMask;

    // PDPT entries have no transition form: only present ones are followed.
    protected override bool Follow(int level, ulong entry) => level == 0 ? (entry & Present) != 0 : Usable(entry);
}

/// <summary>x86 PAE with the four page directories known (found through a raw image's self-map), no PDPT needed.</summary>
internal sealed class X86PaeDirectoriesTranslator(PhysicalReader physical, ulong[] directories) : PagingTranslator(physical)
{
    private const ulong FrameMask = 0x000F_FFFF_FFFF_F000;
    private static readonly Level[] DirectoryLevels = [new(21, 9, 8, 0x000F_FFFF_FFE0_0000), new(12, 9, 8, 0)];

    protected override Level[] Levels => DirectoryLevels;

    protected override bool Normalize(ref ulong va, out ulong gap) => X86Translator.Narrow(ref va, out gap);

    protected override ulong TopTable(ulong va) => directories[(va >> 30) & 3];

    protected override ulong FrameOf(int level, ulong entry) => entry & FrameMask;
}

/// <summary>x86 without PAE: 1024 × 4-byte entries per level, 4 MiB large pages (PSE-36 bits ignored).</summary>
internal sealed class X86Translator(PhysicalReader physical, ulong directoryTableBase) : PagingTranslator(physical)
{
    private static readonly Level[] TwoLevels = [new(22, 10, 4, 0xFFC0_0000), new(12, 10, 4, 0)];
    private readonly ulong _pd = directoryTableBase & 0xFFFF_F000;

    protected override Level[] Levels => TwoLevels;

    protected override bool Normalize(ref ulong va, out ulong gap) => Narrow(ref va, out gap);

    protected override ulong TopTable(ulong va) => _pd;

    protected override ulong FrameOf(int level, ulong entry) => entry & 0xFFFF_F000;

    /// <summary>Accepts a 32-bit address, or one sign-extended to 64 bits (as triage data blocks store them).</summary>
    internal static bool TryNarrow(ref ulong va) => Narrow(ref va, out _);

    internal static bool Narrow(ref ulong va, out ulong gap)
    {
        gap = 0;
        if (va >> 32 == 0) return true;
        if (va >> 32 == 0xFFFF_FFFF && (va & 0x8000_0000) != 0)
        {
            va &= 0xFFFF_FFFF;
            return true;
        }
        // Between 4 GiB and the sign-extended kernel half nothing is mapped.
        if (va < 0xFFFF_FFFF_8000_0000) gap = 0xFFFF_FFFF_8000_0000 - va;
        return false;
    }
}
