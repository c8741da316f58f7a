using System.Buffers.Binary;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Dumps;

/// <summary>A raw image: physical address = file offset.</summary>
internal sealed class IdentityPhysicalMemory(long fileLength) : IPhysicalMemory
{
    public long FileOffsetOf(ulong pfn) => pfn < (ulong)(fileLength / 0x1000) ? (long)pfn * 0x1000 : -1;

    public long CountHeld(ulong pfn, ulong count)
    {
        var pages = (ulong)(fileLength / 0x1000);
        return pfn >= pages ? 0 : (long)Math.Min(count, pages - pfn);
    }
}

/// <summary>
/// Finds what a crash-dump header would have said in a raw physical memory image (docs/crash-dumps.md §7): the
/// kernel's page-table root, ntoskrnl and its PsLoadedModuleList. Sources of the root, in order: the x64
/// low-memory processor start block, then a scan for a self-referencing top-level table (x64 PML4 at any
/// kernel-half index, x86 PAE page directory, x86 page directory). Every candidate is validated by finding a
/// native, non-DLL PE image in kernel space that exports PsLoadedModuleList and whose list's first entry is
/// that image. All searches are bounded by the file's page count and fixed caps.
/// </summary>
internal static class RawMemoryImage
{
    private const int PageSize = 0x1000;
    /// <summary>Candidate roots validated at most (each costs a kernel search).</summary>
    private const int MaxCandidates = 128; // 64 x64 roots, each read with 4 and with 5 levels
    /// <summary>Mapped kernel pages looked at per candidate when searching for ntoskrnl's headers.</summary>
    private const int MaxKernelPages = 1 << 22;
    private const ulong FrameMask = 0x000F_FFFF_FFFF_F000;
    private const ulong NoDirectory = ulong.MaxValue;

    internal sealed record Located(DumpHeader Header, Func<PhysicalReader, AddressTranslator> Translator, ulong KernelBase, IReadOnlyList<string> Notes,
        IReadOnlyList<DumpDiagnostic> Diagnostics);

    private sealed record Candidate(DumpMachine Machine, bool Pae, ulong Root, ulong[]? PaeDirectories, string Source, bool FromState = false, bool FiveLevel = false)
    {
        /// <summary>The same x64 root read as a PML5 (LA57): nothing in an image says which, so both are validated.</summary>
        public Candidate AsFiveLevel() => this with { FiveLevel = true, Source = Source + ", read with 5-level paging (LA57)" };
    }

    public static Located? Locate(MappedDumpFile file, out string message) => Locate(file, null, out message);

    /// <param name="state">The VMware saved state beside a .vmem, when there is one: its CR3 values are tried first.</param>
    public static Located? Locate(MappedDumpFile file, VmwareSavedState? state, out string message)
    {
        var physical = new PhysicalReader(file, new IdentityPhysicalMemory(file.Length));
        var pages = file.Length / PageSize;
        var tried = 0;
        var rejected = new List<string>();
        var stateRejected = new List<string>();
        foreach (var candidate in SavedStateCandidates(state, physical).Concat(Candidates(file, pages)))
        {
            if (!candidate.FromState && ++tried > MaxCandidates) break;
            var translator = Create(candidate, physical);
            if (FindKernel(file, physical, translator, candidate, out var kernelBase, out var list, out var why) is { } header)
            {
                var notes = new List<string>
                {
                    $"page-table root: {candidate.Source}",
                    $"ntoskrnl at 0x{kernelBase:X}, PsLoadedModuleList 0x{list:X} (its export), list entry 0 is ntoskrnl",
                };
                var diagnostics = new List<DumpDiagnostic>();
                if (state is not null && !candidate.FromState)
                {
                    var text = state.Cpus.Count == 0
                        ? $"The VMware saved state '{state.FileName}' {state.Problem}; the page-table root was found by searching the image instead."
                        : $"The CR3 saved in '{state.FileName}' did not lead to ntoskrnl ({string.Join("; ", stateRejected.Take(3))}); the page-table root was found by searching the image instead.";
                    notes.Add(text);
                    diagnostics.Add(new DumpDiagnostic(DumpDiagnosticCodes.SavedState, text));
                }
                else if (state?.Problem is { } problem) notes.Add($"VMware saved state '{state.FileName}' {problem}");
                if (rejected.Count > 0) notes.Add($"{rejected.Count} earlier candidate root(s) rejected: {string.Join("; ", rejected.Take(3))}");
                message = "";
                return new Located(header, p => Create(candidate, p), kernelBase, notes, diagnostics);
            }
            (candidate.FromState ? stateRejected : rejected).Add($"{candidate.Source}: {why}");
        }
        var fromState = state is null ? ""
            : state.Cpus.Count == 0 ? $" The VMware saved state '{state.FileName}' {state.Problem}."
            : $" The CR3 saved in '{state.FileName}' did not lead to ntoskrnl ({string.Join("; ", stateRejected.Take(3))}).";
        message = tried == 0
            ? $"Read as a raw physical memory image ({pages} pages), but no kernel page-table root was found: no x64 processor start block in the first 1 MiB and no self-referencing PML4, PAE or x86 page directory in any page.{fromState}"
            : $"Read as a raw physical memory image ({pages} pages): {Math.Min(tried, MaxCandidates)} candidate page-table root(s) found, none leads to ntoskrnl and a module list ({string.Join("; ", rejected.Take(3))}).{fromState}";
        return null;
    }

    /// <summary>
    /// Roots from a VMware saved state: each distinct vCPU CR3 (a vCPU caught in user mode under KVA shadowing holds a
    /// user directory table that maps little of the kernel, so every vCPU is worth a try). CR4 decides the paging mode
    /// when saved (PAE bit 5); without it x64 is tried, then x86 PAE.
    /// </summary>
    private static IEnumerable<Candidate> SavedStateCandidates(VmwareSavedState? state, PhysicalReader physical)
    {
        if (state is null) yield break;
        var seen = new HashSet<ulong>();
        foreach (var cpu in state.Cpus)
        {
            if (!seen.Add(cpu.Cr3)) continue;
            var source = $"CR3 0x{cpu.Cr3:X} of vCPU {cpu.Index} in VMware saved state '{state.FileName}'";
            var pae = cpu.Cr4 is not { } cr4 || (cr4 & 0x20) != 0;
            var x64 = new Candidate(DumpMachine.X64, false, cpu.Cr3 & FrameMask, null, source, FromState: true);
            // CR4.LA57 (bit 12) says how many levels CR3 heads; without CR4 both are tried.
            bool? la57 = cpu.Cr4 is { } c4 ? (c4 & 0x1000) != 0 : null;
            if (pae && la57 != true) yield return x64;
            if (pae && la57 != false) yield return x64.AsFiveLevel();
            if (pae && cpu.Cr3 >> 32 == 0)
            {
                var pdpt = cpu.Cr3 & 0xFFFF_FFE0;
                // Some of the kernel half (PDPT entries 2 and 3) must be present; absent entries are left out of the search.
                var dirs = new ulong[4];
                var ok = false;
                for (var k = 0; k < 4; k++)
                {
                    var present = physical.TryReadUInt64(pdpt + (ulong)k * 8, out var e) && (e & 1) != 0;
                    dirs[k] = present ? e & FrameMask : NoDirectory;
                    ok |= present && k >= 2;
                }
                if (ok) yield return new Candidate(DumpMachine.X86, true, pdpt, dirs, source + " (x86 PAE)", FromState: true);
            }
            if (!pae) yield return new Candidate(DumpMachine.X86, false, cpu.Cr3 & 0xFFFF_F000, null, source + " (x86)", FromState: true);
        }
    }

    private static AddressTranslator Create(Candidate c, PhysicalReader physical) =>
        c.Machine == DumpMachine.X64 ? new X64Translator(physical, c.Root, c.FiveLevel)
        : c.Pae && c.FromState ? new X86PaeTranslator(physical, c.Root) // a real PDPT: its absent entries stay absent
        : c.Pae ? new X86PaeDirectoriesTranslator(physical, c.PaeDirectories!)
        : new X86Translator(physical, c.Root);

    /// <summary>Candidate roots in the order they are worth trying; lazily, so the first good one ends the scan.</summary>
    private static IEnumerable<Candidate> Candidates(MappedDumpFile file, long pages)
    {
        var page = new byte[PageSize];
        // 1. x64 PROCESSOR_START_BLOCK in the low 1 MiB (pages 1..255): a jmp, the kernel's entry, the CR3 (MemProcFS' layout).
        for (long pfn = 1; pfn < Math.Min(256, pages); pfn++)
        {
            file.Read(pfn * PageSize, page);
            var start = BinaryPrimitives.ReadUInt64LittleEndian(page);
            var entry = BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(0x70));
            var cr3 = BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(0xA0));
            if ((start & 0xFFFF_FFFF_FFFF_00FF) == 0x0000_0001_0006_00E9 && (entry & 0xFFFF_F800_0000_0003) == 0xFFFF_F800_0000_0000
                && (cr3 & 0xFFFF_FF00_0000_0FFF) == 0 && cr3 != 0)
            {
                var c = new Candidate(DumpMachine.X64, false, cr3, null, $"x64 processor start block at physical 0x{pfn * PageSize:X} (CR3 0x{cr3:X})");
                yield return c;
                yield return c.AsFiveLevel();
            }
        }
        // 2. Self-referencing top-level tables, in physical order.
        for (long pfn = 0; pfn < pages; pfn++)
        {
            if (file.Read(pfn * PageSize, page) != PageSize) yield break;
            var p = (ulong)pfn;
            for (var i = 256; i < 512; i++)
            {
                var e = BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(i * 8));
                // Present, writable, not a large page, pointing at this very page.
                if ((e & 0x83) == 0x03 && (e & FrameMask) >> 12 == p && OtherKernelEntries(page, i))
                {
                    // A PML5 (LA57) maps itself the same way: the 4-level reading is tried first, then the 5-level one.
                    var c = new Candidate(DumpMachine.X64, false, p << 12, null, $"self-referencing PML4 at physical 0x{p << 12:X}, index 0x{i:X}");
                    yield return c;
                    yield return c with { FiveLevel = true, Source = $"self-referencing PML5 (5-level paging, LA57) at physical 0x{p << 12:X}, index 0x{i:X}" };
                }
            }
            // x86 PAE: the last page directory maps all four at 0xC0600000, itself in entry 3.
            var pd3Self = BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(3 * 8));
            if ((pd3Self & 0x83) == 0x03 && (pd3Self & FrameMask) >> 12 == p)
            {
                var dirs = new ulong[4];
                var ok = true;
                for (var k = 0; k < 4 && ok; k++)
                {
                    var d = BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(k * 8));
                    ok = (d & 0x83) == 0x03 && (d & FrameMask) >> 12 < (ulong)pages;
                    dirs[k] = d & FrameMask;
                }
                if (ok) yield return new Candidate(DumpMachine.X86, true, p << 12, dirs, $"self-referencing x86 PAE page directory at physical 0x{p << 12:X}");
            }
            // x86 without PAE: the page directory maps itself at 0xC0300000 (entry 0x300).
            var pdSelf = BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(0x300 * 4));
            if ((pdSelf & 0x83) == 0x03 && pdSelf >> 12 == p && p < 0x10_0000)
                yield return new Candidate(DumpMachine.X86, false, p << 12, null, $"self-referencing x86 page directory at physical 0x{p << 12:X}");
        }
    }

    /// <summary>A real PML4 maps more of the kernel half than itself.</summary>
    private static bool OtherKernelEntries(byte[] page, int self)
    {
        for (var i = 256; i < 512; i++)
            if (i != self && (BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(i * 8)) & 1) != 0) return true;
        return false;
    }

    /// <summary>Walks the kernel half's page tables for ntoskrnl's headers; validates through its export and list.</summary>
    private static DumpHeader? FindKernel(MappedDumpFile file, PhysicalReader physical, AddressTranslator translator, Candidate c, out ulong kernelBase, out ulong list, out string why)
    {
        kernelBase = list = 0;
        var is64 = c.Machine == DumpMachine.X64;
        var looked = 0;
        var headers = 0;
        foreach (var (va, pa) in KernelPages(physical, c))
        {
            if (++looked > MaxKernelPages) break;
            if (!LooksLikeKernelHeader(file, pa, is64, out var sizeOfImage)) continue;
            headers++;
            var image = PeImage.TryOpen(new VirtualImageSource(file, translator, va, sizeOfImage)).Image;
            var export = image?.Exports.All.FirstOrDefault(e => e.Name == "PsLoadedModuleList" && e.Forwarder is null);
            if (export is null) continue;
            var head = va + export.Rva;
            var reader = new VirtualReader((at, dest) => ReadVirtual(file, translator, at, dest));
            var modules = ModuleListWalker.Walk(reader, is64, head, new DiagnosticBag(), file.Length / (is64 ? 0x7C : 0x44));
            if (modules.Count == 0 || modules[0].Base != va) continue;
            kernelBase = va;
            list = head;
            why = "";
            return DumpHeader.ForRawImage(c.Machine, c.Pae, c.Root, head);
        }
        why = headers == 0 ? $"no native kernel image among {Math.Min(looked, MaxKernelPages)} mapped kernel page(s)" : $"{headers} kernel-like image(s), none exporting a PsLoadedModuleList whose first entry is itself";
        return null;
    }

    /// <summary>A page holding a PE header of a native, non-DLL image of the right machine (ntoskrnl's shape).</summary>
    private static bool LooksLikeKernelHeader(MappedDumpFile file, ulong pa, bool is64, out uint sizeOfImage)
    {
        sizeOfImage = 0;
        Span<byte> h = stackalloc byte[0x400];
        if (file.Read((long)pa, h) != h.Length || h[0] != 'M' || h[1] != 'Z') return false;
        var lfanew = BinaryPrimitives.ReadInt32LittleEndian(h[0x3C..]);
        if (lfanew is < 0x40 or > 0x400 - 0x5E) return false;
        var nt = h[lfanew..];
        if (!nt[..4].SequenceEqual("PE\0\0"u8)) return false;
        var machine = BinaryPrimitives.ReadUInt16LittleEndian(nt[4..]);
        var characteristics = BinaryPrimitives.ReadUInt16LittleEndian(nt[22..]);
        var subsystem = BinaryPrimitives.ReadUInt16LittleEndian(nt[(24 + 68)..]);
        sizeOfImage = BinaryPrimitives.ReadUInt32LittleEndian(nt[(24 + 56)..]);
        return machine == (is64 ? 0x8664 : 0x14C) && (characteristics & 0x2000) == 0 && subsystem == 1
            && sizeOfImage is >= 0x1000 and <= ModuleListWalker.MaxImageSize;
    }

    /// <summary>(VA, PA) of every mapped 4 KiB page of the kernel half, in address order; 1 GiB pages are skipped (never an image).</summary>
    private static IEnumerable<(ulong Va, ulong Pa)> KernelPages(PhysicalReader physical, Candidate c)
    {
        if (c.Machine == DumpMachine.X64)
        {
            var selfIndex = -1;
            for (var i = 256; i < 512; i++)
                if (physical.TryReadUInt64(c.Root + (ulong)i * 8, out var e) && (e & FrameMask) == c.Root) selfIndex = i;
            for (var i = 256; i < 512; i++)
            {
                if (i == selfIndex || !Present(physical, c.Root + (ulong)i * 8, out var top)) continue;
                if (!c.FiveLevel)
                {
                    foreach (var x in UnderPml4Entry(physical, top, 0xFFFF_0000_0000_0000UL | ((ulong)i << 39))) yield return x;
                    continue;
                }
                // LA57: the kernel half is PML5 entries 256–511, VA bits 63..57 all ones.
                var va5 = (~0UL << 57) | ((ulong)i << 48);
                for (var j = 0; j < 512; j++)
                    if (Present(physical, (top & FrameMask) + (ulong)j * 8, out var pml4e))
                        foreach (var x in UnderPml4Entry(physical, pml4e, va5 | ((ulong)j << 39))) yield return x;
            }
        }
        else if (c.Pae)
        {
            for (var k = 2; k < 4; k++)
                if (c.PaeDirectories![k] != NoDirectory)
                    foreach (var x in Directory(physical, c.PaeDirectories![k], (ulong)k << 30, 512, 21, 8, skipFirst: k == 3 ? 4 : 0)) yield return x;
        }
        else
        {
            foreach (var x in Directory(physical, c.Root + 0x200 * 4, 0x8000_0000, 0x200, 22, 4, skip: 0x100)) yield return x;
        }
    }

    /// <summary>Pages under one PML4 entry (512 GiB): its PDPT's directories; 1 GiB pages skipped.</summary>
    private static IEnumerable<(ulong Va, ulong Pa)> UnderPml4Entry(PhysicalReader physical, ulong pml4e, ulong vaBase)
    {
        for (var j = 0; j < 512; j++)
        {
            if (!Present(physical, (pml4e & FrameMask) + (ulong)j * 8, out var pdpte) || (pdpte & 0x80) != 0) continue;
            foreach (var x in Directory(physical, pdpte & FrameMask, vaBase | ((ulong)j << 30), 512, 21, 8)) yield return x;
        }
    }

    /// <summary>Pages under one page directory (x64/PAE: 512 × 8-byte entries; x86: 4-byte entries).</summary>
    private static IEnumerable<(ulong Va, ulong Pa)> Directory(PhysicalReader physical, ulong table, ulong vaBase, int entries, int shift, int size, int skipFirst = 0, int skip = -1)
    {
        var frame = size == 8 ? FrameMask : 0xFFFF_F000UL;
        for (var k = skipFirst; k < entries; k++)
        {
            if (k == skip) continue; // x86: the self-map
            if (!Entry(physical, table + (ulong)k * (ulong)size, size, out var pde) || (pde & 1) == 0) continue;
            var va = vaBase | ((ulong)k << shift);
            var span = 1 << (shift - 12);
            if ((pde & 0x80) != 0)
            {
                var basePa = pde & frame & ~((1UL << shift) - 1);
                for (var l = 0; l < span; l++) yield return (va + (ulong)l * PageSize, basePa + (ulong)l * PageSize);
                continue;
            }
            for (var l = 0; l < span; l++)
                if (Entry(physical, (pde & frame) + (ulong)l * (ulong)size, size, out var pte) && (pte & 1) != 0)
                    yield return (va + (ulong)l * PageSize, pte & frame);
        }
    }

    private static bool Entry(PhysicalReader physical, ulong pa, int size, out ulong entry)
    {
        if (size == 8) return physical.TryReadUInt64(pa, out entry);
        var ok = physical.TryReadUInt32(pa, out var e32);
        entry = e32;
        return ok;
    }

    private static bool Present(PhysicalReader physical, ulong pa, out ulong entry) => physical.TryReadUInt64(pa, out entry) && (entry & 1) != 0;

    private static int ReadVirtual(MappedDumpFile file, AddressTranslator translator, ulong va, Span<byte> destination)
    {
        var done = 0;
        while (done < destination.Length)
        {
            var at = va + (ulong)done;
            if (at < va || !translator.TryTranslate(at, out var pa) || (long)pa >= file.Length) break;
            var n = Math.Min(PageSize - (int)(at & 0xFFF), destination.Length - done);
            if (file.Read((long)pa, destination.Slice(done, n)) != n) break;
            done += n;
        }
        return done;
    }

    /// <summary>A candidate kernel image read through a candidate translation (before any KernelDump exists).</summary>
    private sealed class VirtualImageSource(MappedDumpFile file, AddressTranslator translator, ulong va, uint size) : IImageSource
    {
        public ImageLayout Layout => ImageLayout.Loaded;
        public long Length => size;
        public ImageOrigin Origin { get; } = new("raw", "ntoskrnl", va);
        public int Read(long position, Span<byte> destination) =>
            position < 0 || position >= size ? 0 : ReadVirtual(file, translator, va + (ulong)position, destination[..(int)Math.Min(destination.Length, size - position)]);
        public bool IsAvailable(long position, long length)
        {
            if (position < 0 || length < 0 || position + length > size) return false;
            for (var p = position & ~0xFFFL; p < position + length; p += PageSize)
                if (!translator.TryTranslate(va + (ulong)p, out var pa) || (long)pa >= file.Length) return false;
            return true;
        }
        public void Dispose() { }
    }
}
