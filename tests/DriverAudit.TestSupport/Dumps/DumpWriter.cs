using System.Buffers.Binary;
using System.Text;

namespace DriverAudit.TestSupport.Dumps;

/// <summary>Paging mode of the dumped machine.</summary>
public enum DumpArch
{
    X64,
    X86Pae,
    X86,
    /// <summary>Windows on ARM: x64's layout (4 levels of 512 8-byte entries), ARM64 descriptors, machine 0xAA64.</summary>
    Arm64,
}

/// <summary>A module the writer maps and links into PsLoadedModuleList.</summary>
public sealed class WrittenModule
{
    internal WrittenModule(string fullPath, ulong @base, byte[] loaded)
    {
        FullPath = fullPath;
        Base = @base;
        Loaded = loaded;
    }

    public string FullPath { get; }
    public string Name => FullPath[(FullPath.LastIndexOf('\\') + 1)..];
    public ulong Base { get; }
    /// <summary>The image in loaded layout, as the reader should see it (zeroed ranges included).</summary>
    public byte[] Loaded { get; }
    public uint Size => (uint)Loaded.Length;
    public ulong EntryAddress { get; internal set; }
    /// <summary>Hostile: overrides BaseDllName's (Length, MaximumLength).</summary>
    public (ushort Length, ushort Maximum)? BaseNameLengths { get; set; }
    /// <summary>Hostile: the DllBase written in the loader entry / triage entry instead of <see cref="Base"/>.</summary>
    public ulong? ListedBase { get; set; }
    /// <summary>Hostile: the SizeOfImage written in the loader entry instead of the image's size.</summary>
    public uint? ListedSize { get; set; }
}

/// <summary>
/// Writes real-format Windows kernel dumps (docs/crash-dumps.md): x64 and x86 (PAE and non-PAE) page tables over a
/// sparse physical memory, PE images mapped in loaded layout, a PsLoadedModuleList of KLDR entries, and
/// full (run table), bitmap ('SDMP'/'FDMP') or triage bodies. Knobs make pages missing and headers hostile.
/// </summary>
public sealed class DumpWriter
{
    public const int PageSize = 0x1000;
    private const ulong FrameMask = 0x000F_FFFF_FFFF_F000;
    private const uint PageFill = 0x45474150;
    private readonly SortedDictionary<ulong, byte[]> _pages = []; // PFN → contents
    private readonly HashSet<ulong> _dropped = [];
    private readonly (int Shift, int Bits)[] _levels;
    private readonly int _entrySize;
    private readonly ulong _top; // PA of the top-level table (CR3 without flags)
    private readonly List<WrittenModule> _modules = [];
    private ulong _nextPfn = 0x10;
    private ulong _listHead;

    /// <param name="fiveLevel">x64 only: LA57 paging, CR3 naming a PML5 (index VA[56:48]) above the four usual levels.</param>
    public DumpWriter(DumpArch arch, bool fiveLevel = false)
    {
        if (fiveLevel && arch != DumpArch.X64) throw new ArgumentException("LA57 is x64 paging.", nameof(fiveLevel));
        Arch = arch;
        FiveLevel = fiveLevel;
        (_levels, _entrySize) = arch switch
        {
            DumpArch.X64 when fiveLevel => (new[] { (48, 9), (39, 9), (30, 9), (21, 9), (12, 9) }, 8),
            DumpArch.X64 or DumpArch.Arm64 => (new[] { (39, 9), (30, 9), (21, 9), (12, 9) }, 8),
            DumpArch.X86Pae => (new[] { (30, 2), (21, 9), (12, 9) }, 8),
            _ => (new[] { (22, 10), (12, 10) }, 4),
        };
        var top = AllocatePage();
        // PAE CR3 is only 32-byte aligned: put the PDPT off the page start to prove the reader does not align it.
        _top = (top << 12) + (arch == DumpArch.X86Pae ? 0x20UL : 0);
        // x64: a PCID in the low bits; ARM64: an ASID in bits 63..48 (TTBR layout): the readers must mask both.
        DirectoryTableBase = arch switch { DumpArch.X64 => _top | 0x2, DumpArch.Arm64 => _top | (5UL << 48), _ => _top };
        DataBase = arch is DumpArch.X64 or DumpArch.Arm64 ? 0xFFFFF80070000000 : 0x8F000000;
        _listHead = DataBase;
    }

    public DumpArch Arch { get; }
    /// <summary>x64 LA57: five paging levels.</summary>
    public bool FiveLevel { get; }
    public bool Is64 => Arch is DumpArch.X64 or DumpArch.Arm64;
    public IReadOnlyList<WrittenModule> Modules => _modules;

    // Header values (defaults look like a real Win10 dump).
    public ulong DirectoryTableBase { get; set; }
    public uint MinorVersion { get; set; } = 19041;
    public uint NumberOfProcessors { get; set; } = 4;
    public uint BugCheckCode { get; set; } = 0xD1;
    public ulong[] BugCheckParameters { get; set; } = [0x10, 0x2, 0x0, 0x8000_1234];
    public DateTime SystemTime { get; set; } = new(2024, 5, 1, 12, 30, 0, DateTimeKind.Utc);
    /// <summary>Where the module list and names are placed (kernel VA).</summary>
    public ulong DataBase { get; }
    public ulong PsLoadedModuleList => _listHead;

    // Hostile knobs.
    public uint? RunCountOverride { get; set; }
    public ulong? BitmapPagesOverride { get; set; }
    public ulong? BitmapBitsOverride { get; set; }
    /// <summary>Range dumps, hostile: MetadataSize written instead of the real one (FirstPageOffset is not adjusted).</summary>
    public ulong? RangeMetadataSizeOverride { get; set; }
    public uint? AttributesOverride { get; set; }
    public uint? DumpTypeOverride { get; set; }
    public uint? MachineOverride { get; set; }
    /// <summary>The last entry's Flink points at this module's entry instead of the list head.</summary>
    public int? CycleBackTo { get; set; }
    /// <summary>Triage: DriverCount written instead of the real count.</summary>
    public uint? TriageDriverCountOverride { get; set; }
    /// <summary>Triage: leave StringPoolOffset/Size zero (the reader then cannot bound the list by the pool).</summary>
    public bool TriageWithoutStringPool { get; set; }
    /// <summary>Triage: copies of kernel memory written as TRIAGE_DATA_BLOCKs (see <see cref="CaptureInTriage"/>).</summary>
    public List<(ulong Va, byte[] Data)> TriageBlocks { get; } = [];
    /// <summary>Triage: DUMP_UNLOADED_DRIVERS entries (the name is cut to 12 characters, as the kernel does).</summary>
    public List<(string Name, ulong Start, ulong End)> UnloadedDrivers { get; } = [];
    /// <summary>Triage: write a KDBG copy whose NtBuildLab points at this string, itself held by a data block.</summary>
    public string? TriageBuildLab { get; set; }
    /// <summary>Triage, hostile: DataBlocksCount written instead of the real count.</summary>
    public uint? TriageBlockCountOverride { get; set; }
    /// <summary>Triage, hostile: every data block's Size written as this value.</summary>
    public uint? TriageBlockSizeOverride { get; set; }

    /// <summary>Triage: copies [rva, rva+length) of the module, as the kernel copies headers and code around a fault.</summary>
    public void CaptureInTriage(WrittenModule module, uint rva, int length) =>
        TriageBlocks.Add((module.Base + rva, module.Loaded.AsSpan((int)rva, length).ToArray()));

    /// <summary>Write a KDBG block whose PsLoadedModuleList is this value (null: no KDBG).</summary>
    public ulong? KdbgModuleList { get; set; }

    /// <summary>
    /// Dumps with memory: the kernel's MmUnloadedDrivers array (full names, unload times) and MmLastUnloadedDriver,
    /// reached through KDBG fields 0x220/0x228 (needs <see cref="KdbgModuleList"/>); the KDBG then gets a page of its own.
    /// </summary>
    public List<(string Name, ulong Start, ulong End, DateTime Time)> MemoryUnloadedDrivers { get; } = [];
    /// <summary>Hostile: MmLastUnloadedDriver written instead of the real count.</summary>
    public uint? MemoryUnloadedCountOverride { get; set; }
    /// <summary>Hostile: the MmUnloadedDrivers pointer written instead of the array's address.</summary>
    public ulong? MemoryUnloadedArrayOverride { get; set; }
    /// <summary>Hostile: the KDBG is left encoded (no 'KDBG' tag), as Windows 8+ keeps it in memory.</summary>
    public bool KdbgEncoded { get; set; }

    // ---- physical memory -------------------------------------------------------------------------

    public ulong AllocatePage()
    {
        var pfn = _nextPfn++;
        _pages[pfn] = new byte[PageSize];
        return pfn;
    }

    /// <summary>Leaves the page out of the dump (a hole in the run table, a clear bitmap bit).</summary>
    public void DropPhysical(ulong pfn) => _dropped.Add(pfn);

    private byte[] Page(ulong pfn)
    {
        if (!_pages.TryGetValue(pfn, out var p)) _pages[pfn] = p = new byte[PageSize];
        return p;
    }

    private ulong ReadEntry(ulong pa) => _entrySize == 8
        ? BinaryPrimitives.ReadUInt64LittleEndian(Page(pa >> 12).AsSpan((int)(pa & 0xFFF)))
        : BinaryPrimitives.ReadUInt32LittleEndian(Page(pa >> 12).AsSpan((int)(pa & 0xFFF)));

    private void WriteEntry(ulong pa, ulong value)
    {
        var span = Page(pa >> 12).AsSpan((int)(pa & 0xFFF));
        if (_entrySize == 8) BinaryPrimitives.WriteUInt64LittleEndian(span, value);
        else BinaryPrimitives.WriteUInt32LittleEndian(span, checked((uint)value));
    }

    // ---- paging ----------------------------------------------------------------------------------

    /// <summary>PA of the entry for <paramref name="va"/> at <paramref name="level"/> (0 = top), creating tables above it.</summary>
    private ulong Slot(ulong va, int level)
    {
        var table = _top;
        for (var l = 0; ; l++)
        {
            var (shift, bits) = _levels[l];
            var slot = table + ((va >> shift) & ((1UL << bits) - 1)) * (ulong)_entrySize;
            if (l == level) return slot;
            var e = ReadEntry(slot);
            if ((e & 1) == 0)
            {
                e = (AllocatePage() << 12) | (Arch == DumpArch.X86Pae && l == 0 ? 1UL : 3UL);
                WriteEntry(slot, e);
            }
            else if ((e & 0x80) != 0 && l > 0) throw new InvalidOperationException($"0x{va:X} is inside a large page.");
            table = e & (_entrySize == 8 ? FrameMask : 0xFFFF_F000);
        }
    }

    private int LeafLevel => _levels.Length - 1;

    /// <summary>Maps one 4 KiB page.</summary>
    public void Map(ulong va, ulong pfn) => WriteEntry(Slot(va, LeafLevel), (pfn << 12) | 3);

    /// <summary>The raw entry for <paramref name="va"/> at <paramref name="level"/> (0 = top), creating tables above it.</summary>
    public ulong Entry(ulong va, int level) => ReadEntry(Slot(va, level));

    /// <summary>Hostile: writes the raw entry for <paramref name="va"/> at <paramref name="level"/> (e.g. aliasing one table).</summary>
    public void SetEntry(ulong va, int level, ulong value) => WriteEntry(Slot(va, level), value);

    /// <summary>Sets the raw 4 KiB PTE (for software PTEs).</summary>
    public void SetPte(ulong va, ulong pte) => WriteEntry(Slot(va, LeafLevel), pte);

    public ulong Pte(ulong va) => ReadEntry(Slot(va, LeafLevel));

    /// <summary>Turns a mapped page's PTE into a transition PTE (P=0, bit 11 set, bit 10 clear; PFN kept).</summary>
    public void MakeTransition(ulong va) => SetPte(va, (Pte(va) & ~1UL & ~(1UL << 10)) | (1UL << 11));

    /// <summary>Turns a mapped page's PTE into a prototype PTE (P=0, bit 10 set): the reader must call it missing.</summary>
    public void MakePrototype(ulong va) => SetPte(va, (Pte(va) & ~1UL) | (1UL << 10));

    /// <summary>Clears the PTE (paged out / never mapped).</summary>
    public void Unmap(ulong va) => SetPte(va, 0);

    /// <summary>
    /// Maps a large page: 1 GiB (x64, at the PDPT), 2 MiB (x64/PAE, at the PD) or 4 MiB (non-PAE, at the PD).
    /// Only the physical pages later written are stored, so the dump stays small.
    /// </summary>
    public void MapLarge(ulong va, ulong pa, ulong size)
    {
        int level = (Arch, size) switch
        {
            (DumpArch.X64 or DumpArch.Arm64, 0x4000_0000) => 1,
            (DumpArch.X64 or DumpArch.Arm64, 0x20_0000) => 2,
            (DumpArch.X86Pae, 0x20_0000) => 1,
            (DumpArch.X86, 0x40_0000) => 0,
            _ => throw new ArgumentException($"No {size:X}-byte pages on {Arch}."),
        } + (FiveLevel ? 1 : 0);
        if (va % size != 0 || pa % size != 0) throw new ArgumentException("Large pages must be aligned.");
        // ARM64 block descriptor: valid (bit 0) with bit 1 clear; x86/x64: present, writable, PS (bit 7).
        WriteEntry(Slot(va, level), pa | (Arch == DumpArch.Arm64 ? 0x401UL : 0x83UL));
    }

    /// <summary>The writer's own translation (present or transition leaf; large pages).</summary>
    public ulong Translate(ulong va)
    {
        var table = _top;
        for (var l = 0; l < _levels.Length; l++)
        {
            var (shift, bits) = _levels[l];
            var e = ReadEntry(table + ((va >> shift) & ((1UL << bits) - 1)) * (ulong)_entrySize);
            var usable = (e & 1) != 0 || (l == LeafLevel && (e & 0xC00) == 0x800);
            if (!usable) throw new InvalidOperationException($"0x{va:X} is not mapped.");
            var canBeLarge = l < LeafLevel && (Arch == DumpArch.X86 || l > 0);
            if (canBeLarge && (Arch == DumpArch.Arm64 ? (e & 3) == 1 : (e & 0x81) == 0x81))
            {
                var span = 1UL << shift;
                return (e & (_entrySize == 8 ? FrameMask : 0xFFFF_F000) & ~(span - 1)) | (va & (span - 1));
            }
            table = e & (_entrySize == 8 ? FrameMask : 0xFFFF_F000);
        }
        return table | (va & 0xFFF);
    }

    public void WriteVirtual(ulong va, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var pa = Translate(va);
            var inPage = (int)(va & 0xFFF);
            var n = Math.Min(PageSize - inPage, data.Length);
            data[..n].CopyTo(Page(pa >> 12).AsSpan(inPage));
            data = data[n..];
            va += (ulong)n;
        }
    }

    // ---- modules ---------------------------------------------------------------------------------

    /// <summary>Maps a PE file (file layout) at <paramref name="base"/> in loaded layout, one fresh page each.</summary>
    public WrittenModule AddModule(string fullPath, ulong @base, byte[] peFile)
    {
        var loaded = PeLayout.ToLoaded(peFile);
        for (var off = 0; off < loaded.Length; off += PageSize) Map(@base + (ulong)off, AllocatePage());
        WriteVirtual(@base, loaded);
        var m = new WrittenModule(fullPath, @base, loaded);
        _modules.Add(m);
        return m;
    }

    /// <summary>Zeroes an RVA range (as Windows discards INIT after DriverEntry).</summary>
    public void ZeroRange(WrittenModule module, uint rva, int length)
    {
        Array.Clear(module.Loaded, (int)rva, length);
        WriteVirtual(module.Base + rva, new byte[length]);
    }

    public ulong PfnOf(ulong va) => Translate(va) >> 12;

    /// <summary>
    /// Lays out the list head, one 0x400-byte slot per module (KLDR entry at +0, FullDllName text at +0x100,
    /// BaseDllName text at +0x300) and an optional KDBG block in freshly mapped pages at <see cref="DataBase"/>.
    /// </summary>
    private void BuildModuleList()
    {
        const int slot = 0x400;
        var bytes = 0x100 + slot * _modules.Count + 0x100;
        var pages = (bytes + PageSize - 1) / PageSize;
        for (var i = 0; i < pages; i++)
            if (!IsMapped(DataBase + (ulong)(i * PageSize))) Map(DataBase + (ulong)(i * PageSize), AllocatePage());
        ulong EntryVa(int i) => DataBase + 0x100 + (ulong)(i * slot);
        var ptr = Is64 ? 8 : 4;
        for (var i = 0; i < _modules.Count; i++)
        {
            var m = _modules[i];
            var e = EntryVa(i);
            m.EntryAddress = e;
            var flink = i + 1 < _modules.Count ? EntryVa(i + 1) : CycleBackTo is int k ? EntryVa(k) : _listHead;
            var blink = i == 0 ? _listHead : EntryVa(i - 1);
            var entry = new byte[Is64 ? 0xA0 : 0x5C];
            Ptr(entry, 0, flink);
            Ptr(entry, ptr, blink);
            Ptr(entry, Is64 ? 0x30 : 0x18, m.ListedBase ?? m.Base);
            Ptr(entry, Is64 ? 0x38 : 0x1C, m.Base + 0x1000);
            BinaryPrimitives.WriteUInt32LittleEndian(entry.AsSpan(Is64 ? 0x40 : 0x20), m.ListedSize ?? m.Size);
            var full = Encoding.Unicode.GetBytes(m.FullPath);
            var name = Encoding.Unicode.GetBytes(m.Name);
            UnicodeString(entry, Is64 ? 0x48 : 0x24, (ushort)full.Length, (ushort)(full.Length + 2), e + 0x100);
            var (len, max) = m.BaseNameLengths ?? ((ushort)name.Length, (ushort)(name.Length + 2));
            UnicodeString(entry, Is64 ? 0x58 : 0x2C, len, max, e + 0x300);
            BinaryPrimitives.WriteUInt32LittleEndian(entry.AsSpan(Is64 ? 0x68 : 0x34), 0x0900_4000);
            BinaryPrimitives.WriteUInt32LittleEndian(entry.AsSpan(Is64 ? 0x78 : 0x40), 0xC0FFEE);
            WriteVirtual(e, entry);
            WriteVirtual(e + 0x100, full);
            WriteVirtual(e + 0x300, name);
        }
        var head = new byte[ptr * 2];
        Ptr(head, 0, _modules.Count > 0 ? EntryVa(0) : _listHead);
        Ptr(head, ptr, _modules.Count > 0 ? EntryVa(_modules.Count - 1) : _listHead);
        WriteVirtual(_listHead, head);
        if (KdbgModuleList is ulong list)
        {
            ulong Signed(ulong v) => Is64 ? v : (ulong)(long)(int)(uint)v; // KDBG keeps x86 pointers sign-extended
            var kdbg = new byte[MemoryUnloadedDrivers.Count > 0 ? 0x380 : 0x80];
            BinaryPrimitives.WriteUInt32LittleEndian(kdbg.AsSpan(0x10), KdbgEncoded ? 0x9C3B_51E7u : 0x4742444B);
            BinaryPrimitives.WriteUInt32LittleEndian(kdbg.AsSpan(0x14), 0x380);
            BinaryPrimitives.WriteUInt64LittleEndian(kdbg.AsSpan(0x18), _modules.Count > 0 ? Signed(_modules[0].Base) : 0);
            BinaryPrimitives.WriteUInt64LittleEndian(kdbg.AsSpan(0x48), Signed(list));
            if (MemoryUnloadedDrivers.Count > 0)
            {
                // Page 1: the KDBG, the MmUnloadedDrivers pointer (+0x400), MmLastUnloadedDriver (+0x408), the array (+0x800);
                // pages 2-3: the names, 0x80 bytes each.
                var at = DataBase + (ulong)(pages * PageSize);
                for (var i = 0; i < 3; i++) if (!IsMapped(at + (ulong)(i * PageSize))) Map(at + (ulong)(i * PageSize), AllocatePage());
                _kdbgVa = at;
                var stride = Is64 ? 0x28 : 0x18;
                var array = new byte[stride * MemoryUnloadedDrivers.Count];
                for (var i = 0; i < MemoryUnloadedDrivers.Count; i++)
                {
                    var (name, start, end, time) = MemoryUnloadedDrivers[i];
                    var text = Encoding.Unicode.GetBytes(name);
                    if (text.Length > 0x80) throw new ArgumentException("Names of at most 64 characters.");
                    var nameVa = at + PageSize + (ulong)(i * 0x80);
                    WriteVirtual(nameVa, text);
                    var e = array.AsSpan(i * stride, stride).ToArray();
                    UnicodeString(e, 0, (ushort)text.Length, (ushort)(text.Length + 2), nameVa);
                    Ptr(e, Is64 ? 0x10 : 0x08, start);
                    Ptr(e, Is64 ? 0x18 : 0x0C, end);
                    BinaryPrimitives.WriteInt64LittleEndian(e.AsSpan(Is64 ? 0x20 : 0x10), time.ToFileTimeUtc());
                    e.CopyTo(array, i * stride);
                }
                WriteVirtual(at + 0x800, array);
                var pointer = new byte[Is64 ? 8 : 4];
                Ptr(pointer, 0, MemoryUnloadedArrayOverride ?? at + 0x800);
                WriteVirtual(at + 0x400, pointer);
                WriteVirtual(at + 0x408, BitConverter.GetBytes(MemoryUnloadedCountOverride ?? (uint)MemoryUnloadedDrivers.Count));
                BinaryPrimitives.WriteUInt64LittleEndian(kdbg.AsSpan(0x220), Signed(at + 0x400));
                BinaryPrimitives.WriteUInt64LittleEndian(kdbg.AsSpan(0x228), Signed(at + 0x408));
            }
            WriteVirtual(KdbgAddress, kdbg);
        }
    }

    private ulong _kdbgVa;
    private ulong KdbgAddress => KdbgAt ?? (_kdbgVa != 0 ? _kdbgVa : DataBase + 0x80);

    /// <summary>Where the KDBG block is written (e.g. inside ntoskrnl's .data, as Windows keeps it); null: the writer's own page.</summary>
    public ulong? KdbgAt { get; set; }

    private bool IsMapped(ulong va)
    {
        try { Translate(va); return true; }
        catch (InvalidOperationException) { return false; }
    }

    private void Ptr(byte[] b, int at, ulong v)
    {
        if (Is64) BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), v);
        else BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), checked((uint)v));
    }

    private void UnicodeString(byte[] b, int at, ushort length, ushort maximum, ulong buffer)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(at), length);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(at + 2), maximum);
        Ptr(b, at + (Is64 ? 8 : 4), buffer);
    }

    // ---- files -----------------------------------------------------------------------------------

    private int HeaderSize => Is64 ? 0x2000 : 0x1000;

    private byte[] Header(uint dumpType)
    {
        var h = new byte[HeaderSize];
        for (var i = 0; i < h.Length; i += 4) BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(i), PageFill);
        var s = h.AsSpan();
        var kdbg = KdbgModuleList is null ? 0 : KdbgAddress;
        var time = SystemTime.ToFileTimeUtc();
        if (Is64)
        {
            "PAGEDU64"u8.CopyTo(s);
            W32(s, 0x08, 0xF); W32(s, 0x0C, MinorVersion);
            W64(s, 0x10, DirectoryTableBase); W64(s, 0x18, 0xFFFFF80000C00000); W64(s, 0x20, _listHead); W64(s, 0x28, 0);
            W32(s, 0x30, MachineOverride ?? (Arch == DumpArch.Arm64 ? 0xAA64u : 0x8664u)); W32(s, 0x34, NumberOfProcessors); W32(s, 0x38, BugCheckCode);
            for (var i = 0; i < 4; i++) W64(s, 0x40 + 8 * i, BugCheckParameters[i]);
            W64(s, 0x80, kdbg);
            W32(s, 0xF98, DumpTypeOverride ?? dumpType);
            W64(s, 0xFA8, (ulong)time);
            if (AttributesOverride is uint a) W32(s, 0x1050, a);
        }
        else
        {
            "PAGEDUMP"u8.CopyTo(s);
            W32(s, 0x08, 0xF); W32(s, 0x0C, MinorVersion);
            W32(s, 0x10, (uint)DirectoryTableBase); W32(s, 0x14, 0x80C00000); W32(s, 0x18, (uint)_listHead); W32(s, 0x1C, 0);
            W32(s, 0x20, MachineOverride ?? 0x14C); W32(s, 0x24, NumberOfProcessors); W32(s, 0x28, BugCheckCode);
            for (var i = 0; i < 4; i++) W32(s, 0x2C + 4 * i, (uint)BugCheckParameters[i]);
            s[0x5C] = Arch == DumpArch.X86Pae ? (byte)1 : (byte)0;
            s[0x5D] = 0; s[0x5E] = 0; s[0x5F] = 0;
            W32(s, 0x60, (uint)kdbg);
            W32(s, 0xF88, DumpTypeOverride ?? dumpType);
            W64(s, 0xFC0, (ulong)time);
            if (AttributesOverride is uint a) W32(s, 0x8A0, a);
        }
        return h;
    }

    private IEnumerable<KeyValuePair<ulong, byte[]>> StoredPages() => _pages.Where(p => !_dropped.Contains(p.Key));

    /// <summary>A complete memory dump (type 1): run table in the header, pages from the header's end.</summary>
    public byte[] WriteFull()
    {
        BuildModuleList();
        var runs = new List<(ulong Base, ulong Count)>();
        foreach (var (pfn, _) in StoredPages())
        {
            if (runs.Count > 0 && runs[^1].Base + runs[^1].Count == pfn) runs[^1] = (runs[^1].Base, runs[^1].Count + 1);
            else runs.Add((pfn, 1));
        }
        var max = Is64 ? 42 : 86;
        if (runs.Count > max) throw new InvalidOperationException($"{runs.Count} runs do not fit in the header.");
        var h = Header(1);
        var s = h.AsSpan();
        var total = (ulong)runs.Sum(r => (long)r.Count);
        if (Is64)
        {
            W32(s, 0x88, RunCountOverride ?? (uint)runs.Count); W32(s, 0x8C, 0); W64(s, 0x90, total);
            for (var i = 0; i < runs.Count; i++) { W64(s, 0x98 + 16 * i, runs[i].Base); W64(s, 0xA0 + 16 * i, runs[i].Count); }
            W64(s, 0xFA0, (ulong)HeaderSize + total * PageSize);
        }
        else
        {
            W32(s, 0x64, RunCountOverride ?? (uint)runs.Count); W32(s, 0x68, (uint)total);
            for (var i = 0; i < runs.Count; i++) { W32(s, 0x6C + 8 * i, (uint)runs[i].Base); W32(s, 0x70 + 8 * i, (uint)runs[i].Count); }
            W64(s, 0xFA0, (ulong)HeaderSize + total * PageSize);
        }
        using var file = new MemoryStream();
        file.Write(h);
        foreach (var (_, page) in StoredPages()) file.Write(page);
        return file.ToArray();
    }

    /// <summary>
    /// A range dump (type 8 or 9: ranges ending at a PFN-0 entry; type 0xA: NumberOfRanges and TotalNumberOfPages):
    /// the 'RDMP' block after the header, the {PFN, count} ranges, then the pages in range order.
    /// </summary>
    public byte[] WriteRange(uint type)
    {
        if (type is not (8 or 9 or 10)) throw new ArgumentOutOfRangeException(nameof(type));
        if (!Is64) throw new InvalidOperationException("Range dumps are 64-bit.");
        BuildModuleList();
        var runs = new List<(ulong Base, ulong Count)>();
        foreach (var (pfn, _) in StoredPages())
        {
            if (runs.Count > 0 && runs[^1].Base + runs[^1].Count == pfn) runs[^1] = (runs[^1].Base, runs[^1].Count + 1);
            else runs.Add((pfn, 1));
        }
        var h = Header(type);
        var entries = runs.Count + (type == 10 ? 0 : 1); // 8/9: a {0, 0} entry ends the list
        var metadataSize = 0x10UL + 16UL * (ulong)entries;
        var block = new byte[0x30 + 16 * entries];
        var b = block.AsSpan();
        W32(b, 0, 0x40); "RDMP"u8.CopyTo(b[4..]); "DUMP"u8.CopyTo(b[8..]);
        var firstPage = (ulong)HeaderSize + 0x20 + metadataSize;
        W64(b, 0x10, RangeMetadataSizeOverride ?? metadataSize);
        W64(b, 0x18, firstPage);
        var total = (ulong)runs.Sum(r => (long)r.Count);
        if (type == 10) { W32(b, 0x20, (uint)runs.Count); W64(b, 0x28, total); }
        for (var i = 0; i < runs.Count; i++) { W64(b, 0x30 + 16 * i, runs[i].Base); W64(b, 0x38 + 16 * i, runs[i].Count); }
        W64(h, 0xFA0, firstPage + total * PageSize);
        using var file = new MemoryStream();
        file.Write(h);
        file.Write(block);
        foreach (var (_, page) in StoredPages()) file.Write(page);
        return file.ToArray();
    }

    /// <summary>Raw images: puts PsLoadedModuleList's head at this VA (ntoskrnl's exported variable) instead of <see cref="DataBase"/>.</summary>
    public void SetListHead(ulong va) => _listHead = va;

    /// <summary>
    /// A raw physical memory image (no header; physical address = file offset): the real-mode IVT in page 0,
    /// the self-map the kernel keeps (x64: a PML4 entry at <paramref name="selfMapIndex"/> pointing at the PML4;
    /// PAE: page directory 3's entries 0–3 pointing at the four directories; x86: PD entry 0x300), and optionally
    /// an x64 processor start block in low memory holding the CR3. Missing pages are zeros.
    /// </summary>
    public byte[] WriteRaw(int selfMapIndex = 0x1ED, bool startBlock = false, bool selfMap = true)
    {
        BuildModuleList();
        if (selfMap) WriteSelfMap(selfMapIndex);
        var ivt = new byte[0x400];
        for (var i = 0; i < 256; i++) W32(ivt, i * 4, 0xF000_FF53); // F000:FF53, the BIOS' dummy handler
        var stored = StoredPages().ToList();
        var pages = Math.Max(0x100UL, stored.Count == 0 ? 0 : stored[^1].Key + 1); // at least 1 MiB
        var image = new byte[pages * PageSize];
        foreach (var (pfn, page) in stored) page.CopyTo(image, (long)pfn * PageSize);
        ivt.CopyTo(image, 0);
        if (startBlock && Is64)
        {
            var at = 0x1000; // PFN 1: the low stub
            W64(image.AsSpan(at), 0, 0x0000_0001_0006_00E9); W64(image.AsSpan(at), 0x70, 0xFFFF_F800_0010_0000);
            W64(image.AsSpan(at), 0xA0, _top);
        }
        return image;
    }

    /// <summary>
    /// A VMware checkpoint (.vmss/.vmsn) as VMware writes one beside a .vmem: header (magic, version, group count),
    /// 80-byte group descriptors, and tagged values — group "cpu" holds per-vCPU registers, CR0..CR4 as
    /// <c>CR64[vcpu][n]</c> 8-byte values, or (<paramref name="crBlock"/>) one <c>CR64[vcpu]</c> block of CR0..CR8.
    /// <paramref name="cr3"/> gives each vCPU's CR3 (default: this machine's root for all); <paramref name="cr4"/> is saved as CR4
    /// (null: only CR0..CR3 are saved).
    /// </summary>
    public byte[] WriteVmss(ulong[]? cr3 = null, ulong? cr4 = 0x3506F8, bool crBlock = false, uint magic = 0xBED2BED2)
    {
        cr3 ??= [DirectoryTableBase];
        static void Tag(MemoryStream m, string name, uint[] index, ReadOnlySpan<byte> value, bool block = false)
        {
            var n = Encoding.ASCII.GetBytes(name);
            var tag = (ushort)((n.Length << 8) | (index.Length << 6) | (block ? 0x3F : value.Length));
            m.Write(BitConverter.GetBytes(tag));
            m.Write(n);
            foreach (var i in index) m.Write(BitConverter.GetBytes(i));
            if (block)
            {
                m.Write(BitConverter.GetBytes((ulong)value.Length)); // bytes in the file
                m.Write(BitConverter.GetBytes((ulong)value.Length)); // bytes in memory
                m.Write(BitConverter.GetBytes((ushort)3)); // padding before the data
                m.Write(new byte[3]);
            }
            m.Write(value);
        }
        var checkpoint = new MemoryStream();
        Tag(checkpoint, "product", [], "VMware Workstation"u8);
        checkpoint.Write(new byte[2]);
        var cpu = new MemoryStream();
        Tag(cpu, "cpu:numVCPUs", [], BitConverter.GetBytes((uint)cr3.Length));
        for (var v = 0u; v < cr3.Length; v++)
        {
            Tag(cpu, "rip", [v], BitConverter.GetBytes(0xFFFFF80000201234UL));
            Tag(cpu, "gpregs", [v], new byte[128], block: true);
            ulong[] crs = cr4 is { } c4 ? [0x8005_0033, 0, 0, cr3[v], c4, 0, 0, 0, 0] : [0x8005_0033, 0, 0, cr3[v]];
            if (crBlock) Tag(cpu, "CR64", [v], MemoryMarshalBytes(crs), block: true);
            else for (var n = 0; n < Math.Min(5, crs.Length); n++) Tag(cpu, "CR64", [v, (uint)n], BitConverter.GetBytes(crs[n]));
        }
        cpu.Write(new byte[2]);
        var memory = new MemoryStream();
        Tag(memory, "regionsCount", [], BitConverter.GetBytes(0u));
        memory.Write(new byte[2]);
        (string Name, byte[] Body)[] groups = [("Checkpoint", checkpoint.ToArray()), ("cpu", cpu.ToArray()), ("memory", memory.ToArray())];
        var file = new MemoryStream();
        file.Write(BitConverter.GetBytes(magic));
        file.Write(BitConverter.GetBytes(8u));
        file.Write(BitConverter.GetBytes((uint)groups.Length));
        var position = 12UL + 80UL * (ulong)groups.Length;
        foreach (var (name, body) in groups)
        {
            var desc = new byte[80];
            Encoding.ASCII.GetBytes(name).CopyTo(desc, 0);
            W64(desc, 64, position);
            W64(desc, 72, (ulong)body.Length);
            file.Write(desc);
            position += (ulong)body.Length;
        }
        foreach (var (_, body) in groups) file.Write(body);
        return file.ToArray();
    }

    private static byte[] MemoryMarshalBytes(ulong[] values)
    {
        var b = new byte[values.Length * 8];
        for (var i = 0; i < values.Length; i++) W64(b, i * 8, values[i]);
        return b;
    }

    private void WriteSelfMap(int index)
    {
        switch (Arch)
        {
            case DumpArch.X64 or DumpArch.Arm64:
                if (index is < 256 or > 511) throw new ArgumentOutOfRangeException(nameof(index));
                if ((ReadEntry(_top + (ulong)index * 8) & 1) != 0) throw new InvalidOperationException($"PML4 index 0x{index:X} is in use.");
                WriteEntry(_top + (ulong)index * 8, _top | 0x8000_0000_0000_0063); // present, writable, accessed, dirty, NX
                break;
            case DumpArch.X86Pae:
                var dirs = new ulong[4];
                for (var k = 0; k < 4; k++) dirs[k] = Slot((ulong)k << 30, 1) & ~0xFFFUL; // creates the directory
                for (var k = 0; k < 4; k++) WriteEntry(dirs[3] + (ulong)k * 8, dirs[k] | 0x63);
                break;
            default:
                WriteEntry(_top + 0x300 * 4, _top | 0x63);
                break;
        }
    }

    /// <summary>A bitmap dump: type 6 ('SDMP', kernel) or type 5 ('FDMP', full).</summary>
    public byte[] WriteBitmap(bool fullBitmap = false)
    {
        BuildModuleList();
        var stored = StoredPages().ToList();
        var bits = stored.Count == 0 ? 0 : stored[^1].Key + 1;
        var bitmap = new byte[(bits + 7) / 8];
        foreach (var (pfn, _) in stored) bitmap[pfn / 8] |= (byte)(1 << (int)(pfn % 8));
        var h = Header(fullBitmap ? 5u : 6u);
        var block = new byte[0x38];
        var b = block.AsSpan();
        (fullBitmap ? "FDMP"u8 : "SDMP"u8).CopyTo(b);
        "DUMP"u8.CopyTo(b[4..]);
        var firstPage = (ulong)(HeaderSize + block.Length + bitmap.Length); // deliberately not page aligned
        W64(b, 0x20, firstPage);
        W64(b, 0x28, BitmapPagesOverride ?? (ulong)stored.Count);
        W64(b, 0x30, BitmapBitsOverride ?? bits);
        W64(h, 0xFA0, firstPage + (ulong)stored.Count * PageSize);
        using var file = new MemoryStream();
        file.Write(h);
        file.Write(block);
        file.Write(bitmap);
        foreach (var (_, page) in stored) file.Write(page);
        return file.ToArray();
    }

    /// <summary>
    /// A triage minidump (type 4): TRIAGE_DUMP after the header, DUMP_DRIVER_ENTRY list, DUMP_STRING pool, then
    /// the unloaded-driver list, a KDBG copy and the data blocks when set. Module metadata comes from the added
    /// modules; no pages are written, only the blocks.
    /// </summary>
    public byte[] WriteTriage()
    {
        var h = Header(4);
        var triageAt = HeaderSize;
        var stride = Is64 ? 0x90 : 0x4C;
        var listAt = triageAt + 0x100;
        var poolAt = listAt + stride * _modules.Count;
        var pool = new MemoryStream();
        var entries = new byte[stride * _modules.Count];
        for (var i = 0; i < _modules.Count; i++)
        {
            var m = _modules[i];
            var e = entries.AsSpan(i * stride, stride);
            W32(e, 0, (uint)(poolAt + pool.Length));
            var text = Encoding.Unicode.GetBytes(m.FullPath);
            var len = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)(text.Length / 2));
            pool.Write(len);
            pool.Write(text);
            pool.Write(new byte[2]);
            while (pool.Length % 8 != 0) pool.WriteByte(0);
            var (stamp, sum) = Stamps(m.Loaded);
            if (Is64)
            {
                W64(e, 0x38, m.ListedBase ?? m.Base); W32(e, 0x48, m.ListedSize ?? m.Size); W32(e, 0x80, sum); W32(e, 0x88, stamp);
            }
            else
            {
                W32(e, 0x1C, (uint)(m.ListedBase ?? m.Base)); W32(e, 0x24, m.ListedSize ?? m.Size); W32(e, 0x44, sum); W32(e, 0x48, stamp);
            }
        }
        // After the pool: the unloaded-driver list, a KDBG copy, the data-block array and the blocks' bytes.
        var tail = new MemoryStream();
        var tailAt = poolAt + (int)pool.Length;
        void Align8() { while (tail.Length % 8 != 0) tail.WriteByte(0); }
        var unloadedAt = 0;
        if (UnloadedDrivers.Count > 0)
        {
            unloadedAt = tailAt + (int)tail.Length;
            tail.Write(Is64 ? BitConverter.GetBytes((ulong)UnloadedDrivers.Count) : BitConverter.GetBytes((uint)UnloadedDrivers.Count));
            foreach (var (name, start, end) in UnloadedDrivers)
            {
                var u = new byte[Is64 ? 0x38 : 0x28];
                var text = Encoding.Unicode.GetBytes(name);
                BinaryPrimitives.WriteUInt16LittleEndian(u, (ushort)text.Length); // the full name's length; 12 characters kept
                BinaryPrimitives.WriteUInt16LittleEndian(u.AsSpan(2), (ushort)(text.Length + 2));
                text.AsSpan(0, Math.Min(24, text.Length)).CopyTo(u.AsSpan(Is64 ? 16 : 8));
                if (Is64) { W64(u, 0x28, start); W64(u, 0x30, end); }
                else { W32(u, 0x20, (uint)start); W32(u, 0x24, (uint)end); }
                tail.Write(u);
            }
            Align8();
        }
        var blocks = TriageBlocks.ToList();
        var kdbgAt = 0;
        if (TriageBuildLab is string lab)
        {
            var labVa = DataBase + 0x40;
            blocks.Add((labVa, [.. Encoding.ASCII.GetBytes(lab), 0]));
            kdbgAt = tailAt + (int)tail.Length;
            var kdbg = new byte[0x380];
            BinaryPrimitives.WriteUInt32LittleEndian(kdbg.AsSpan(0x10), 0x4742444B);
            BinaryPrimitives.WriteUInt32LittleEndian(kdbg.AsSpan(0x14), 0x380);
            W64(kdbg, 0x18, _modules.Count > 0 ? (Is64 ? _modules[0].Base : (ulong)(long)(int)(uint)_modules[0].Base) : 0);
            W64(kdbg, 0x48, Is64 ? _listHead : (ulong)(long)(int)(uint)_listHead);
            W64(kdbg, 0x208, Is64 ? labVa : (ulong)(long)(int)(uint)labVa);
            tail.Write(kdbg);
        }
        var blocksAt = 0;
        if (blocks.Count > 0)
        {
            blocksAt = tailAt + (int)tail.Length;
            var dataAt = blocksAt + 16 * blocks.Count;
            var array = new byte[16 * blocks.Count];
            var data = new MemoryStream();
            for (var i = 0; i < blocks.Count; i++)
            {
                var (va, bytes) = blocks[i];
                // x86 addresses are stored sign-extended, as the kernel writes them.
                W64(array.AsSpan(16 * i), 0, Is64 ? va : (ulong)(long)(int)(uint)va);
                W32(array.AsSpan(16 * i), 8, (uint)(dataAt + data.Length));
                W32(array.AsSpan(16 * i), 12, TriageBlockSizeOverride ?? (uint)bytes.Length);
                data.Write(bytes);
            }
            tail.Write(array);
            tail.Write(data.ToArray());
        }
        var tgrdAt = tailAt + (int)tail.Length;
        var sizeOfDump = tgrdAt + 4;
        var t = new byte[0x100];
        var ts = t.AsSpan();
        W32(ts, 0x00, 0x3A10); W32(ts, 0x04, (uint)sizeOfDump); W32(ts, 0x08, (uint)tgrdAt); W32(ts, 0x0C, Is64 ? 0x348u : 0x320u);
        W32(ts, 0x18, (uint)unloadedAt);
        if (Is64) { W32(ts, 0x70, (uint)kdbgAt); W32(ts, 0x74, kdbgAt == 0 ? 0u : 0x380u); W32(ts, 0x78, (uint)blocksAt); W32(ts, 0x7C, TriageBlockCountOverride ?? (uint)blocks.Count); }
        else { W32(ts, 0x58, (uint)kdbgAt); W32(ts, 0x5C, kdbgAt == 0 ? 0u : 0x380u); W32(ts, 0x60, (uint)blocksAt); W32(ts, 0x64, TriageBlockCountOverride ?? (uint)blocks.Count); }
        W32(ts, 0x30, (uint)listAt); W32(ts, 0x34, TriageDriverCountOverride ?? (uint)_modules.Count);
        if (!TriageWithoutStringPool) { W32(ts, 0x38, (uint)poolAt); W32(ts, 0x3C, (uint)pool.Length); }
        W32(h, Is64 ? 0x1038 : 0xF8C, 0xCFF);
        using var file = new MemoryStream();
        file.Write(h);
        file.Write(t);
        file.Write(entries);
        file.Write(pool.ToArray());
        file.Write(tail.ToArray());
        file.Write("TRGD"u8);
        return file.ToArray();
    }

    /// <summary>TimeDateStamp and CheckSum of a loaded image (what the reader takes from memory).</summary>
    public static (uint TimeDateStamp, uint CheckSum) Stamps(byte[] loaded)
    {
        var lfanew = (int)BinaryPrimitives.ReadUInt32LittleEndian(loaded.AsSpan(0x3C));
        return (BinaryPrimitives.ReadUInt32LittleEndian(loaded.AsSpan(lfanew + 8)), BinaryPrimitives.ReadUInt32LittleEndian(loaded.AsSpan(lfanew + 0x58)));
    }

    private static void W32(Span<byte> s, int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(s[at..], v);
    private static void W64(Span<byte> s, int at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(s[at..], v);
}
