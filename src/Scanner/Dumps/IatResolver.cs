using System.Buffers.Binary;
using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Dumps;

/// <summary>
/// Rebuilds a dump module's imports from its IAT, the only import structure that reliably survives in memory:
/// the descriptors, lookup tables and names usually sit in INIT, which Windows discards after DriverEntry.
/// The IAT is found through data directory 12, else the surviving descriptors' FirstThunk arrays, else runs
/// of pointers to loaded modules' exports in non-executable sections. Each slot value is mapped to the
/// export it points at; surviving descriptor names are preferred but checked against the value.
/// </summary>
internal static class IatResolver
{
    /// <summary>Slots looked at per module, whatever the directory or sections claim.</summary>
    public const int MaxSlots = 0x10000;
    private const int PageSize = 0x1000;

    public static IatResolution Resolve(PeImage image, DumpModule module, DumpExportCatalog catalog, bool is64)
    {
        var run = new Run(image, module, catalog, is64 ? 8 : 4);
        return run.Execute();
    }

    private sealed class Run(PeImage image, DumpModule module, DumpExportCatalog catalog, int ptr)
    {
        private readonly List<IatSlot> _slots = [];
        private readonly List<DumpDiagnostic> _diagnostics = [];
        private readonly HashSet<uint> _visited = [];
        private readonly byte[] _page = new byte[PageSize];
        private bool _iatPageMissing;

        public IatResolution Execute()
        {
            var descriptors = new Dictionary<uint, PeImport>();
            foreach (var i in image.Imports.Imports) descriptors.TryAdd(i.SlotRva, i);

            IatSource source;
            uint? iatRva = null;
            var dir = image.IatDirectory;
            if (dir.IsPresent && dir.VirtualAddress < image.SizeOfImage && dir.VirtualAddress % ptr == 0)
            {
                source = IatSource.DataDirectory;
                iatRva = dir.VirtualAddress;
                var size = Math.Min(Math.Min(dir.Size, image.SizeOfImage - dir.VirtualAddress), (uint)(MaxSlots * ptr));
                ScanRange(dir.VirtualAddress, dir.VirtualAddress + size / (uint)ptr * (uint)ptr, descriptors);
            }
            else if (descriptors.Count > 0)
            {
                source = IatSource.ImportDescriptors;
                iatRva = descriptors.Keys.Min();
            }
            else
            {
                iatRva = PointerScan();
                source = iatRva is null ? IatSource.None : IatSource.PointerScan;
            }

            // Descriptor imports outside the scanned range (or all of them when the descriptors located the IAT).
            foreach (var (slot, import) in descriptors.OrderBy(d => d.Key))
                if (_visited.Add(slot)) _slots.Add(Verify(slot, import, ReadSlot(slot)));

            // A module that imports nothing has no IAT to miss: its headers declare no import table, or one whose
            // size covers only the terminating descriptor (20 bytes; linkers round to 24). A table that was
            // zeroed with INIT still declares its full size, so that case is reported.
            if (source == IatSource.None && (image.GetDirectory(1).Size > 24 || image.GetDirectory(13).IsPresent))
                _diagnostics.Add(new(DumpDiagnosticCodes.IatNotFound,
                    $"{module.Name}: no IAT found (no data directory 12, no readable import descriptors, no pointers to loaded exports in data sections)."));

            CheckCompleteness(source, iatRva, descriptors.Count);
            _slots.Sort((a, b) => a.Rva.CompareTo(b.Rva));
            return new IatResolution(source, iatRva, _slots, BuildImports(), _diagnostics);
        }

        /// <summary>
        /// An IAT the loader filled holds addresses; one that holds only zeros (or fewer resolving slots than the
        /// surviving import descriptors name) was wiped, never bound, or points at the wrong range.
        /// </summary>
        private void CheckCompleteness(IatSource source, uint? iatRva, int described)
        {
            if (_iatPageMissing) return; // already explained: the pages are not in the dump
            if (source == IatSource.DataDirectory && _slots.Count == 0)
            {
                var dir = image.IatDirectory;
                _diagnostics.Add(new(DumpDiagnosticCodes.IatZeroOnly,
                    $"{module.Name}: the IAT (data directory 12, RVA 0x{iatRva:x}, 0x{dir.Size:x} bytes, {dir.Size / (uint)ptr} slots) holds only zeros; no import can be resolved."));
                return;
            }
            if (described == 0) return;
            var resolved = _slots.Count(s => s.Value is > 0 && s.Resolved);
            var unreadable = _slots.Count(s => s.Value is null); // reported per slot already
            if (resolved < described - unreadable)
                _diagnostics.Add(new(DumpDiagnosticCodes.IatShort,
                    $"{module.Name}: the surviving import descriptors name {described} imports but only {resolved} IAT slots resolve to the export they name."));
        }

        private List<ImportFact> BuildImports()
        {
            var imports = new List<ImportFact>(_slots.Count);
            foreach (var s in _slots)
                if (s.Module is not null)
                    imports.Add(new ImportFact(s.Module, s.Name, s.Name is null ? s.Ordinal : null, false, s.Rva));
            // Delay-load slots hold the module's own thunks until first call: their descriptors are the only source.
            foreach (var d in image.DelayImports.Imports)
                imports.Add(new ImportFact(d.Module, d.Name, d.Ordinal, true, d.SlotRva));
            return imports;
        }

        /// <summary>Reads every slot in [start, end); zero slots separate the per-DLL groups.</summary>
        private void ScanRange(uint start, uint end, Dictionary<uint, PeImport> descriptors)
        {
            var missingReported = false;
            for (var rva = start; rva < end && _visited.Count < MaxSlots; rva += (uint)ptr)
            {
                var value = ReadSlot(rva);
                if (value is null)
                {
                    if (descriptors.TryGetValue(rva, out var d) && _visited.Add(rva)) _slots.Add(Verify(rva, d, null));
                    else if (!missingReported)
                    {
                        missingReported = _iatPageMissing = true;
                        _diagnostics.Add(new(DumpDiagnosticCodes.IatUnreadable,
                            $"{module.Name}: IAT page at RVA 0x{rva & ~(uint)(PageSize - 1):x} is not in the dump; its slots cannot be resolved."));
                    }
                    continue;
                }
                if (value == 0 || !_visited.Add(rva)) continue;
                _slots.Add(descriptors.TryGetValue(rva, out var import) ? Verify(rva, import, value) : ByValue(rva, value.Value));
            }
        }

        /// <summary>Heuristic for images with neither directory 12 nor descriptors: runs of export pointers in data sections.</summary>
        private uint? PointerScan()
        {
            uint? first = null;
            var pending = new List<(uint Rva, ulong Value, AddressResolution Target)>();
            var zeros = 0;
            // Each page once, however many (overlapping) section headers claim it.
            foreach (var span in image.DistinctSpans(static s => !s.Executable && (s.Characteristics & PeSection.MemDiscardable) == 0))
            {
                var start = (span.Rva + (uint)ptr - 1) / (uint)ptr * (uint)ptr;
                var end = (uint)Math.Min((ulong)span.Rva + span.Length, image.SizeOfImage);
                for (var pageStart = start & ~(uint)(PageSize - 1); pageStart < end && _visited.Count < MaxSlots; pageStart += PageSize)
                {
                    if (image.ReadRva(pageStart, _page) != PageSize)
                    {
                        Close(pending, ref first);
                        continue;
                    }
                    for (var off = 0; off < PageSize; off += ptr)
                    {
                        var rva = pageStart + (uint)off;
                        if (rva < start || rva + (uint)ptr > end) continue;
                        var value = ptr == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(_page.AsSpan(off)) : BinaryPrimitives.ReadUInt32LittleEndian(_page.AsSpan(off));
                        if (value == 0)
                        {
                            // One zero ends a DLL's group inside the IAT; two end the IAT.
                            if (++zeros >= 2) Close(pending, ref first);
                            continue;
                        }
                        zeros = 0;
                        var target = module.Contains(value) ? default : catalog.ResolveAddress(value);
                        if (target.Module is null) { Close(pending, ref first); continue; }
                        pending.Add((rva, value, target));
                    }
                }
                Close(pending, ref first);
                zeros = 0;
            }
            return first;
        }

        /// <summary>Keeps a run of pointers into other modules when at least one is an export; trims unresolved ends.</summary>
        private void Close(List<(uint Rva, ulong Value, AddressResolution Target)> pending, ref uint? first)
        {
            var lo = pending.FindIndex(p => p.Target.Success);
            var hi = pending.FindLastIndex(p => p.Target.Success);
            for (var i = lo; lo >= 0 && i <= hi; i++)
            {
                var (rva, value, target) = pending[i];
                if (!_visited.Add(rva)) continue;
                first = first is { } f ? Math.Min(f, rva) : rva;
                _slots.Add(FromTarget(rva, value, target));
            }
            pending.Clear();
        }

        private IatSlot ByValue(uint rva, ulong value) => FromTarget(rva, value, catalog.ResolveAddress(value));

        private IatSlot FromTarget(uint rva, ulong value, AddressResolution target)
        {
            if (target.Success)
                return new IatSlot(rva, value, target.Module!.Name, target.Export!.Name, target.Export.Ordinal, null, null);
            var why = Describe(target);
            _diagnostics.Add(new(DumpDiagnosticCodes.IatUnresolved, $"{module.Name}: IAT slot at RVA 0x{rva:x} holds 0x{value:x}, which {why}."));
            return new IatSlot(rva, value, null, null, null, null, why);
        }

        /// <summary>A surviving descriptor names the import: keep its name, but check the slot points where the name leads.</summary>
        private IatSlot Verify(uint rva, PeImport import, ulong? value)
        {
            var expected = import.Name is not null ? catalog.Resolver.Resolve(import.Module, import.Name) : catalog.Resolver.Resolve(import.Module, import.Ordinal ?? 0);
            var named = ImportRef.Format(import.Module, import.Name, import.Ordinal);
            // An unreadable slot resolves to nothing (not to the default value, whose status reads "Resolved").
            var actual = value is { } v ? catalog.ResolveAddress(v) : new AddressResolution(AddressResolutionStatus.NoModule, null, null);
            if (catalog.Target(expected) is { } target)
            {
                var (targetModule, export) = target;
                var forwardedFrom = SameModule(import.Module, targetModule.Name) ? null : import.Module;
                string? problem = null;
                var expectedVa = targetModule.Base + export.Rva;
                if (value is null)
                    problem = "slot not in the dump; named from the import descriptor";
                else if (value != expectedVa)
                {
                    problem = $"the descriptor names {named} (0x{expectedVa:x}) but the slot holds 0x{value:x} ({actual.Display ?? Describe(actual)})";
                    _diagnostics.Add(new(DumpDiagnosticCodes.IatMismatch, $"{module.Name}: IAT slot at RVA 0x{rva:x}: {problem}."));
                }
                return new IatSlot(rva, value, targetModule.Name, export.Name, export.Ordinal, forwardedFrom, problem);
            }
            if (actual.Success)
            {
                var problem = $"the descriptor names {named}, which does not resolve in the loaded modules ({expected.Status}); the slot value resolves to {actual.Display}";
                _diagnostics.Add(new(DumpDiagnosticCodes.IatMismatch, $"{module.Name}: IAT slot at RVA 0x{rva:x}: {problem}."));
                return new IatSlot(rva, value, actual.Module!.Name, actual.Export!.Name, actual.Export.Ordinal, import.Module, problem);
            }
            var unverified = $"{named} could not be verified ({expected.Status}; slot {(value is { } x ? $"holds 0x{x:x}, which {Describe(actual)}" : "not in the dump")})";
            _diagnostics.Add(new(DumpDiagnosticCodes.IatMismatch, $"{module.Name}: IAT slot at RVA 0x{rva:x}: {unverified}."));
            return new IatSlot(rva, value, import.Module, import.Name, import.Ordinal, null, unverified);
        }

        private ulong? ReadSlot(uint rva)
        {
            Span<byte> b = stackalloc byte[8];
            if (!image.TryReadRva(rva, b[..ptr])) return null;
            return ptr == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(b) : BinaryPrimitives.ReadUInt32LittleEndian(b);
        }

        private static bool SameModule(string a, string b) =>
            PeExportResolver.NormalizeModuleName(a) == PeExportResolver.NormalizeModuleName(b);

        private static string Describe(AddressResolution r) => r.Status switch
        {
            AddressResolutionStatus.NoModule => "is not inside any loaded module",
            AddressResolutionStatus.ExportsUnavailable => $"is inside {r.Module!.Name} but its export table is not in the dump",
            AddressResolutionStatus.NotAnExport => $"is inside {r.Module!.Name} but no export starts there",
            _ => "resolves",
        };
    }
}
