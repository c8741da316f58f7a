namespace DriverAudit.Scanner.Dumps;

/// <summary>Reads physical memory of a dump through its page map.</summary>
internal sealed class PhysicalReader(MappedDumpFile file, IPhysicalMemory memory)
{
    public MappedDumpFile File { get; } = file;

    /// <summary>File offset of physical address <paramref name="pa"/>, or -1 when its page is absent.</summary>
    public long FileOffsetOf(ulong pa)
    {
        var page = memory.FileOffsetOf(pa >> 12);
        return page < 0 ? -1 : page + (long)(pa & 0xFFF);
    }

    public bool TryReadUInt64(ulong pa, out ulong value)
    {
        var at = FileOffsetOf(pa);
        value = 0;
        return at >= 0 && (pa & 0xFFF) <= 0xFF8 && File.TryReadUInt64(at, out value);
    }

    public bool TryReadUInt32(ulong pa, out uint value)
    {
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

    protected PhysicalReader Physical { get; } = physical;

    /// <summary>Translates <paramref name="va"/>; false when the page is not mapped or a table is missing.</summary>
    public abstract bool TryTranslate(ulong va, out ulong pa);

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
            : header.PaeEnabled
                ? new X86PaeTranslator(physical, header.DirectoryTableBase)
                : new X86Translator(physical, header.DirectoryTableBase);
}

/// <summary>x64 4-level paging with 1 GiB and 2 MiB pages.</summary>
internal sealed class X64Translator(PhysicalReader physical, ulong directoryTableBase) : AddressTranslator(physical)
{
    private const ulong TableMask = 0x000F_FFFF_FFFF_F000;
    // Software bits of a transition entry collide with high PFN bits; keep the bits real machines use.
    private const ulong TransitionMask = 0x0000_FFFF_FFFF_F000;
    private readonly ulong _cr3 = directoryTableBase & TableMask; // low 12 bits carry the PCID

    public override bool TryTranslate(ulong va, out ulong pa)
    {
        pa = 0;
        var high = va >> 47;
        if (high != 0 && high != 0x1FFFF) return false; // not canonical
        if (!Step(_cr3, (va >> 39) & 0x1FF, out var pml4e)) return false;
        if (!Step(Frame(pml4e), (va >> 30) & 0x1FF, out var pdpte)) return false;
        if (IsLarge(pdpte))
        {
            pa = (pdpte & 0x000F_FFFF_C000_0000) | (va & 0x3FFF_FFFF);
            return true;
        }
        if (!Step(Frame(pdpte), (va >> 21) & 0x1FF, out var pde)) return false;
        if (IsLarge(pde))
        {
            pa = (pde & 0x000F_FFFF_FFE0_0000) | (va & 0x1F_FFFF);
            return true;
        }
        if (!Step(Frame(pde), (va >> 12) & 0x1FF, out var pte)) return false;
        pa = Frame(pte) | (va & 0xFFF);
        return true;
    }

    private bool Step(ulong table, ulong index, out ulong entry) =>
        Physical.TryReadUInt64(table + index * 8, out entry) && Usable(entry);

    private static ulong Frame(ulong entry) => entry & ((entry & Present) != 0 ? TableMask : TransitionMask);
}

/// <summary>x86 PAE: a 4-entry PDPT (32-byte aligned, not page aligned), 8-byte entries, 2 MiB large pages.</summary>
internal sealed class X86PaeTranslator(PhysicalReader physical, ulong directoryTableBase) : AddressTranslator(physical)
{
    private const ulong FrameMask = 0x000F_FFFF_FFFF_F000; // also drops NX (bit 63)
    private readonly ulong _pdpt = directoryTableBase & 0xFFFF_FFE0;

    public override bool TryTranslate(ulong va, out ulong pa)
    {
        pa = 0;
        if (!X86Translator.TryNarrow(ref va)) return false;
        if (!Physical.TryReadUInt64(_pdpt + ((va >> 30) & 0x3) * 8, out var pdpte) || (pdpte & Present) == 0) return false;
        if (!Step(pdpte & FrameMask, (va >> 21) & 0x1FF, out var pde)) return false;
        if (IsLarge(pde))
        {
            pa = (pde & 0x000F_FFFF_FFE0_0000) | (va & 0x1F_FFFF);
            return true;
        }
        if (!Step(pde & FrameMask, (va >> 12) & 0x1FF, out var pte)) return false;
        pa = (pte & FrameMask) | (va & 0xFFF);
        return true;
    }

    private bool Step(ulong table, ulong index, out ulong entry) =>
        Physical.TryReadUInt64(table + index * 8, out entry) && Usable(entry);
}

/// <summary>x86 without PAE: 1024 × 4-byte entries per level, 4 MiB large pages (PSE-36 bits ignored).</summary>
internal sealed class X86Translator(PhysicalReader physical, ulong directoryTableBase) : AddressTranslator(physical)
{
    private readonly ulong _pd = directoryTableBase & 0xFFFF_F000;

    public override bool TryTranslate(ulong va, out ulong pa)
    {
        pa = 0;
        if (!TryNarrow(ref va)) return false;
        if (!Step(_pd, (va >> 22) & 0x3FF, out var pde)) return false;
        if (IsLarge(pde))
        {
            pa = (pde & 0xFFC0_0000) | (va & 0x3F_FFFF);
            return true;
        }
        if (!Step(pde & 0xFFFF_F000, (va >> 12) & 0x3FF, out var pte)) return false;
        pa = (pte & 0xFFFF_F000) | (va & 0xFFF);
        return true;
    }

    private bool Step(ulong table, ulong index, out ulong entry)
    {
        entry = 0;
        if (!Physical.TryReadUInt32(table + index * 4, out var e)) return false;
        entry = e;
        return Usable(entry);
    }

    /// <summary>Accepts a 32-bit address, or one sign-extended to 64 bits (as triage data blocks store them).</summary>
    internal static bool TryNarrow(ref ulong va)
    {
        if (va >> 32 == 0) return true;
        if (va >> 32 == 0xFFFF_FFFF && (va & 0x8000_0000) != 0)
        {
            va &= 0xFFFF_FFFF;
            return true;
        }
        return false;
    }
}
