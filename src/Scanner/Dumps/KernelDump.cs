using System.Buffers.Binary;
using System.Text;

namespace DriverAudit.Scanner.Dumps;

/// <summary>
/// A Windows kernel crash dump (full, bitmap, summary or triage; x64 or x86) opened through a read-only memory
/// mapping. Nothing is loaded up front beyond the header and the module list; module images are read page by
/// page on demand. Malformed data yields <see cref="Diagnostics"/>; only <see cref="ObjectDisposedException"/>
/// escapes the public API.
/// </summary>
internal sealed class KernelDump : IDisposable
{
    private const uint KdbgTag = 0x4742444B; // 'KDBG'
    private readonly DumpHeader _header;
    private AddressTranslator? _translator;
    private readonly PhysicalReader _physical;
    private readonly DiagnosticBag _diagnostics;
    private readonly DumpModule[] _modulesByBase;
    private bool _disposed;

    private KernelDump(string path, MappedDumpFile file, DumpHeader header, IPhysicalMemory memory, DiagnosticBag diagnostics,
        Func<PhysicalReader, AddressTranslator>? translator = null, IReadOnlyList<string>? locatorNotes = null)
    {
        Path = path;
        File = file;
        _header = header;
        _diagnostics = diagnostics;
        _physical = new PhysicalReader(file, memory);
        _translator = memory is NoPhysicalMemory ? null : translator?.Invoke(_physical) ?? AddressTranslator.Create(header, _physical);
        var notes = new List<string>(locatorNotes ?? []);
        LocatorNotes = notes;
        if (header.DumpType == DumpType.Triage)
        {
            Triage = TriageDump.Read(file, header, diagnostics);
            var triage = Triage;
            // A module is readable where the dump's data blocks copied some of it (often just its headers).
            Modules = TriageDriverList.Read(file, header, diagnostics)
                .Select(m => m with { ImageAvailable = triage.Overlaps(m.Base, m.Size) }).ToList();
        }
        else
        {
            Modules = WalkModules(diagnostics, notes, translator is null);
            CrossCheckKdbg();
            if (_translator is not null && Modules.Count > 0)
            {
                var kdbg = header.KdDebuggerDataBlock;
                if (header.DumpType == DumpType.RawMemory && kdbg == 0)
                {
                    kdbg = UnloadedDriverList.FindKdbg(this, Modules[0], header.Is64, out var found);
                    notes.Add(found);
                }
                _unloaded = UnloadedDriverList.Read(ReadVirtual, header.Is64, kdbg, Modules[0].Base, diagnostics);
            }
        }
        _modulesByBase = Modules.OrderBy(m => m.Base).ThenBy(m => m.Index).ToArray();
    }

    /// <summary>
    /// Walks PsLoadedModuleList. An x64 header has no flag for LA57, so when the 4-level walk yields nothing the list is
    /// walked again with 5 levels (CR3 naming a PML5) and that walk is kept if it yields modules (docs/crash-dumps.md §4).
    /// </summary>
    private IReadOnlyList<DumpModule> WalkModules(DiagnosticBag diagnostics, List<string> notes, bool mayRetryFiveLevel)
    {
        var cap = File.Length / (_header.Is64 ? 0x7C : 0x44);
        var fourLevel = new DiagnosticBag();
        var modules = ModuleListWalker.Walk(ReadVirtual, _header.Is64, _header.PsLoadedModuleList, fourLevel, cap);
        if (modules.Count == 0 && mayRetryFiveLevel && _header.Machine == DumpMachine.X64 && _translator is X64Translator { FiveLevel: false } four)
        {
            _translator = new X64Translator(_physical, _header.DirectoryTableBase, fiveLevel: true);
            var fiveLevel = new DiagnosticBag();
            var five = ModuleListWalker.Walk(ReadVirtual, _header.Is64, _header.PsLoadedModuleList, fiveLevel, cap);
            if (five.Count > 0)
            {
                notes.Add("paging: 5-level (LA57): PsLoadedModuleList does not translate with 4 levels, it does with 5");
                Copy(fiveLevel, diagnostics);
                return five;
            }
            _translator = four;
        }
        Copy(fourLevel, diagnostics);
        return modules;

        static void Copy(DiagnosticBag from, DiagnosticBag to)
        {
            foreach (var d in from.Snapshot()) to.Add(d.Code, d.Message);
        }
    }

    internal MappedDumpFile File { get; }

    /// <summary>Triage dumps: data blocks, unloaded drivers, version data; null for other dumps.</summary>
    internal TriageDump? Triage { get; }

    /// <summary>
    /// Drivers unloaded before the crash: a triage dump's list (names cut to 12 characters, no time), else the
    /// kernel's MmUnloadedDrivers reached through a readable KDBG (full names, unload times); empty when none are recorded.
    /// </summary>
    public IReadOnlyList<UnloadedDriver> UnloadedDrivers => Triage?.Unloaded ?? _unloaded;
    private readonly IReadOnlyList<UnloadedDriver> _unloaded = [];

    /// <summary>Triage dumps: TRIAGE_DUMP.ServicePackBuild; 0 otherwise.</summary>
    public uint ServicePackBuild => Triage?.ServicePackBuild ?? 0;

    /// <summary>Triage dumps: number of data blocks (copies of kernel memory) and their total size.</summary>
    public (int Count, long Bytes) DataBlocks => Triage is { } t ? (t.DataBlockCount, t.DataBlockBytes) : (0, 0);

    /// <summary>DUMP_HEADER.ProductType: 1 workstation, 2 domain controller, 3 server; null when unset.</summary>
    public uint? ProductType => _header.ProductType;

    /// <summary>The kernel's NtBuildLab string (e.g. "19041.1.amd64fre.vb_release.191206-1406") when the dump holds it.</summary>
    public string? BuildLab => _buildLab ??= ReadBuildLab();
    private string? _buildLab;

    /// <summary>Opens a kernel dump, detected by its signature whatever the file is called.</summary>
    public static DumpOpenResult TryOpen(string path)
    {
        MappedDumpFile? file;
        try
        {
            file = MappedDumpFile.Open(path, out _);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return DumpOpenResult.Fail(DumpOpenError.IoError, $"Cannot open '{path}': {e.Message}");
        }
        if (file is null) return DumpOpenResult.Fail(DumpOpenError.NotADump, $"'{path}' is empty.");
        try
        {
            var result = Open(path, file);
            if (!result.Success) file.Dispose();
            return result;
        }
        catch (Exception e) when (e is not ObjectDisposedException)
        {
            // Last resort so one bad dump cannot take a scan down; tests assert this path is never taken.
            file.Dispose();
            return DumpOpenResult.Fail(DumpOpenError.Corrupt, $"Internal error while reading '{path}' ({e.GetType().Name}: {e.Message}).");
        }
    }

    private static DumpOpenResult Open(string path, MappedDumpFile file)
    {
        var header = DumpHeader.TryRead(file, out var error, out var message);
        if (header is null && error == DumpOpenError.NotADump) return OpenMemoryImage(path, file, message);
        if (header is null) return DumpOpenResult.Fail(error, message);
        var diagnostics = new DiagnosticBag();
        IPhysicalMemory memory;
        switch (header.RawDumpType)
        {
            case 1:
                if (header.Runs.Length == 0 && header.NumberOfRuns != 0)
                    return DumpOpenResult.Fail(DumpOpenError.Corrupt, header.NumberOfRuns == DumpHeader.PageFill
                        ? "The full dump has no run table (NumberOfRuns is the 'PAGE' fill pattern)."
                        : $"The full dump's run table claims {header.NumberOfRuns} runs; at most {header.MaxRuns} fit in the header.");
                memory = new RunTablePhysicalMemory(header.Runs, header.HeaderSize, header.NumberOfPages, file.Length, diagnostics);
                break;
            case 2 or 5 or 6 or 7:
                var block = BitmapBlock.TryLocate(file, header, out error, out message);
                if (block is null)
                    return header.RawDumpType == 7
                        ? DumpOpenResult.Fail(DumpOpenError.UnsupportedType, "Dump type 7 (automatic) without an 'SDMP' bitmap block is not supported.")
                        : DumpOpenResult.Fail(error, message);
                var b = block.Value;
                memory = new BitmapPhysicalMemory(file, b.BitmapOffset, b.BitCount, b.FirstPageOffset, b.Pages, diagnostics);
                break;
            case 4:
                if (!file.Contains(header.HeaderSize, header.Is64 ? 0x80 : 0x68))
                    return DumpOpenResult.Fail(DumpOpenError.Truncated, "The file ends inside the TRIAGE_DUMP header.");
                memory = NoPhysicalMemory.Instance;
                break;
            case 3:
                return DumpOpenResult.Fail(DumpOpenError.UnsupportedType, "Header-only dump (type 3): it holds no memory and no module list.");
            case 8 or 9 or 10:
                var ranges = RangeBlock.TryRead(file, header, diagnostics, out error, out message);
                if (ranges is not { } r) return DumpOpenResult.Fail(error, message);
                memory = new RunTablePhysicalMemory(r.Runs, r.FirstPage, r.DeclaredPages, file.Length, diagnostics);
                break;
            default:
                return DumpOpenResult.Fail(DumpOpenError.UnsupportedType, $"Unknown dump type {header.RawDumpType} (0x{header.RawDumpType:X}).");
        }
        return DumpOpenResult.Ok(new KernelDump(path, file, header, memory, diagnostics));
    }

    /// <summary>A file without a crash-dump header: a raw memory image is located and read, other memory formats refused.</summary>
    private static DumpOpenResult OpenMemoryImage(string path, MappedDumpFile file, string notADump)
    {
        Span<byte> head = stackalloc byte[MemoryImageFormat.HeadSize];
        var kind = MemoryImageFormat.Identify(head[..file.Read(0, head)], path, file.Length);
        switch (kind)
        {
            case MemoryImageKind.None:
                return DumpOpenResult.Fail(DumpOpenError.NotADump, notADump);
            case MemoryImageKind.Raw:
                var located = RawMemoryImage.Locate(file, VmwareCheckpoint.ReadBeside(path), out var why);
                if (located is null) return DumpOpenResult.Fail(DumpOpenError.NoKernelFound, why);
                var diagnostics = new DiagnosticBag();
                foreach (var d in located.Diagnostics) diagnostics.Add(d.Code, d.Message);
                return DumpOpenResult.Ok(new KernelDump(path, file, located.Header, new IdentityPhysicalMemory(file.Length), diagnostics, located.Translator, located.Notes));
            case MemoryImageKind.VMwareState:
                return DumpOpenResult.Fail(DumpOpenError.UnsupportedFormat, VmwareCheckpoint.MemoryFileBeside(path) is { } vmem
                    ? $"This is a VMware suspend or snapshot state file (.vmss/.vmsn): it holds the virtual CPUs' registers, not the memory. Scan '{System.IO.Path.GetFileName(vmem)}' beside it (its saved CR3 is used from there)."
                    : MemoryImageFormat.RefusalMessage(kind));
            default:
                return DumpOpenResult.Fail(DumpOpenError.UnsupportedFormat, MemoryImageFormat.RefusalMessage(kind));
        }
    }

    /// <summary>How the page-table root, the kernel and the module list were found: raw memory images, and crash dumps read with 5-level paging.</summary>
    public IReadOnlyList<string> LocatorNotes { get; }

    /// <summary>Path of the dump file.</summary>
    public string Path { get; }
    public DumpType DumpType => _header.DumpType;
    public DumpMachine Machine => _header.Machine;
    /// <summary>0xF free build, 0xC checked build.</summary>
    public uint MajorVersion => _header.MajorVersion;
    /// <summary>The OS build number (e.g. 19041).</summary>
    public uint MinorVersion => _header.MinorVersion;
    public uint NumberOfProcessors => _header.NumberOfProcessors;
    public uint BugCheckCode => _header.BugCheckCode;
    public ulong BugCheckParameter1 => _header.BugCheckParameters[0];
    public ulong BugCheckParameter2 => _header.BugCheckParameters[1];
    public ulong BugCheckParameter3 => _header.BugCheckParameters[2];
    public ulong BugCheckParameter4 => _header.BugCheckParameters[3];
    /// <summary>Crash time (UTC); null when the header holds no valid FILETIME.</summary>
    public DateTime? SystemTime => _header.SystemTime;
    /// <summary>CR3 as stored (x64 low bits may carry a PCID; translation masks them).</summary>
    public ulong DirectoryTableBase => _header.DirectoryTableBase;
    public ulong PsLoadedModuleList => _header.PsLoadedModuleList;
    public ulong PsActiveProcessHead => _header.PsActiveProcessHead;
    public ulong KdDebuggerDataBlock => _header.KdDebuggerDataBlock;
    /// <summary>x86 only: the dumped system used PAE paging.</summary>
    public bool PaeEnabled => _header.PaeEnabled;
    /// <summary>False for triage dumps: no physical memory, so module images hold at most what the data blocks copied.</summary>
    public bool HasMemory => _translator is not null;

    /// <summary>True for triage dumps: modules are listed; only data blocks (often a few PE headers) hold their bytes.</summary>
    public bool IsTriage => Triage is not null;

    /// <summary>Modules in load order (index 0 is ntoskrnl in a well-formed dump).</summary>
    public IReadOnlyList<DumpModule> Modules { get; }

    /// <summary>Everything malformed found so far (lazily built indexes may add to it later).</summary>
    public IReadOnlyList<DumpDiagnostic> Diagnostics => _diagnostics.Snapshot();

    /// <summary>The module whose [Base, Base+Size) holds <paramref name="va"/> (for resolving IAT slots), or null.</summary>
    public DumpModule? FindModule(ulong va)
    {
        int lo = 0, hi = _modulesByBase.Length - 1, found = -1;
        while (lo <= hi)
        {
            var mid = lo + (hi - lo) / 2;
            if (_modulesByBase[mid].Base <= va) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        // Overlapping (corrupt) entries: scan back over lower bases so a containing module is still found.
        for (var i = found; i >= 0 && found - i < 8; i--)
            if (_modulesByBase[i].Contains(va)) return _modulesByBase[i];
        return null;
    }

    /// <summary>Translates a kernel VA to a physical address through the dumped page tables.</summary>
    public bool TryTranslate(ulong va, out ulong physicalAddress)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        physicalAddress = 0;
        return _translator is not null && _translator.TryTranslate(va, out physicalAddress);
    }

    /// <summary>Copies kernel virtual memory; returns the bytes copied, stopping at the first missing byte.</summary>
    public int ReadVirtual(ulong va, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var done = 0;
        while (done < destination.Length)
        {
            var at = va + (ulong)done;
            if (at < va) break; // wrapped past the top of the address space
            var offset = FileOffsetOfVirtual(at, out var contiguous);
            if (offset < 0) break;
            var n = Math.Min(contiguous, destination.Length - done);
            if (File.Read(offset, destination.Slice(done, n)) != n) break;
            done += n;
        }
        return done;
    }

    /// <summary>The module's image in loaded layout. For triage dumps every page reports missing (see <see cref="DumpModule.ImageAvailable"/>).</summary>
    public DumpModuleImageSource OpenModuleImage(DumpModule module)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(module);
        return new DumpModuleImageSource(this, module);
    }

    /// <summary>File offset of the byte at <paramref name="va"/>, or -1 when its page is absent.</summary>
    internal long FileOffsetOfVirtual(ulong va) => FileOffsetOfVirtual(va, out _);

    /// <summary>Pages among the <paramref name="pages"/> from <paramref name="va"/> that the dump holds (page tables walked once per table).</summary>
    internal long CountHeldPages(ulong va, long pages)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _translator?.CountHeldPages(va, pages) ?? 0;
    }

    /// <summary>Page-table entries read so far through this dump (a cost counter for tests).</summary>
    internal long PageTableReads => _physical.EntryReads;

    /// <summary>
    /// File offset of the byte at <paramref name="va"/> and how many bytes from there lie contiguously in the file
    /// (to the end of the page, or of the triage data block); -1 when absent.
    /// </summary>
    internal long FileOffsetOfVirtual(ulong va, out int contiguous)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        contiguous = 0;
        if (Triage is { } triage) return triage.FileOffsetOf(va, out contiguous);
        if (_translator is null || !_translator.TryTranslate(va, out var pa)) return -1;
        var offset = _physical.FileOffsetOf(pa);
        if (offset >= 0) contiguous = 0x1000 - (int)(va & 0xFFF);
        return offset;
    }

    private string? ReadBuildLab()
    {
        var va = Triage?.BuildLabAddress ?? 0;
        if (va == 0) return null;
        Span<byte> text = stackalloc byte[128];
        var n = ReadVirtual(va, text);
        var end = text[..n].IndexOf((byte)0);
        if (end <= 0) return null;
        foreach (var c in text[..end]) if (c is < 0x20 or > 0x7E) return null;
        return Encoding.ASCII.GetString(text[..end]);
    }

    /// <summary>KDBG is optional (often encoded on Win8+): only check it agrees with the header when it is readable.</summary>
    private void CrossCheckKdbg()
    {
        var kdbg = _header.KdDebuggerDataBlock;
        if (kdbg == 0 || kdbg == DumpHeader.PageFill || (uint)(kdbg >> 32) == DumpHeader.PageFill) return;
        Span<byte> block = stackalloc byte[0x50];
        if (ReadVirtual(kdbg, block) != block.Length || BinaryPrimitives.ReadUInt32LittleEndian(block[0x10..]) != KdbgTag) return;
        var list = BinaryPrimitives.ReadUInt64LittleEndian(block[0x48..]);
        if (!_header.Is64) list &= 0xFFFF_FFFF; // KDBG stores x86 pointers sign-extended
        if (list != _header.PsLoadedModuleList)
            _diagnostics.Add(DumpDiagnosticCodes.Kdbg, $"KDBG.PsLoadedModuleList 0x{list:X} differs from the header's 0x{_header.PsLoadedModuleList:X}.");
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        File.Dispose();
    }
}
