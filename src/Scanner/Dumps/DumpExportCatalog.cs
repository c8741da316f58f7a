using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Dumps;

/// <summary>Why an address did not resolve to an export.</summary>
internal enum AddressResolutionStatus
{
    Resolved,
    /// <summary>No loaded module contains the address.</summary>
    NoModule,
    /// <summary>The containing module's headers or export table are not in the dump (paged out, filtered, triage).</summary>
    ExportsUnavailable,
    /// <summary>The module's export table is readable but no export starts at that address.</summary>
    NotAnExport,
}

/// <summary>Where a kernel address lands: a loaded module and, when resolved, the (non-forwarder) export starting there.</summary>
internal readonly record struct AddressResolution(AddressResolutionStatus Status, DumpModule? Module, PeExport? Export)
{
    /// <remarks>Checks the parts too: a default value (Status 0 = Resolved, no module) must never read as a success.</remarks>
    public bool Success => Status == AddressResolutionStatus.Resolved && Module is not null && Export is not null;
    /// <summary>"ntoskrnl.exe!ExAllocatePool", "hal.dll!#12", or null.</summary>
    public string? Display => Module is null || Export is null ? null : ImportRef.Format(Module.Name, Export.Name, Export.Ordinal);
}

/// <summary>
/// The export tables of a dump's loaded modules, built lazily on first use and shared by every module of the
/// dump (ntoskrnl's table is read once, however many drivers import from it). Only the pages holding a
/// module's headers and export directory are read. Not thread-safe: one dump's modules are analysed in turn.
/// </summary>
internal sealed class DumpExportCatalog
{
    private readonly KernelDump _dump;
    private readonly Dictionary<int, PeExports> _exports = [];
    private Dictionary<string, DumpModule>? _byName;

    public DumpExportCatalog(KernelDump dump)
    {
        _dump = dump;
        Resolver = new PeExportResolver(name => FindLoaded(name) is { } m ? ExportsOf(m) : null);
    }

    /// <summary>Follows forwarders between loaded modules ("hal.KeGetCurrentIrql" → ntoskrnl).</summary>
    public PeExportResolver Resolver { get; }

    /// <summary>Export tables opened so far (for tests and the benchmark: lazy means few).</summary>
    public int OpenedTables => _exports.Count;

    /// <summary>The first loaded module (load order) with this name, compared as <see cref="PeExportResolver.NormalizeModuleName"/> does.</summary>
    public DumpModule? FindLoaded(string name)
    {
        if (_byName is null)
        {
            _byName = new Dictionary<string, DumpModule>(StringComparer.Ordinal);
            foreach (var m in _dump.Modules) _byName.TryAdd(PeExportResolver.NormalizeModuleName(m.Name), m);
        }
        return _byName.GetValueOrDefault(PeExportResolver.NormalizeModuleName(name));
    }

    /// <summary>The module's export table; <see cref="PeTableStatus.Unreadable"/> when its headers or directory are missing.</summary>
    public PeExports ExportsOf(DumpModule module)
    {
        if (_exports.TryGetValue(module.Index, out var cached)) return cached;
        PeExports exports;
        if (!module.ImageAvailable) exports = PeExports.Empty(PeTableStatus.Unreadable);
        else
        {
            var open = PeImage.TryOpen(_dump.OpenModuleImage(module));
            // The image is dropped after reading the table: only the parsed exports are kept.
            exports = open.Image is { } image ? image.Exports : PeExports.Empty(PeTableStatus.Unreadable);
        }
        _exports[module.Index] = exports;
        return exports;
    }

    /// <summary>Maps an IAT slot value to <c>module!export</c> through the export table of the module holding it.</summary>
    public AddressResolution ResolveAddress(ulong va)
    {
        var module = _dump.FindModule(va);
        if (module is null) return new(AddressResolutionStatus.NoModule, null, null);
        var exports = ExportsOf(module);
        var export = exports.FindByRva((uint)(va - module.Base));
        if (export is not null) return new(AddressResolutionStatus.Resolved, module, export);
        return exports.Status is PeTableStatus.Ok or PeTableStatus.Absent
            ? new(AddressResolutionStatus.NotAnExport, module, null)
            : new(AddressResolutionStatus.ExportsUnavailable, module, null);
    }

    /// <summary>The VA an export resolves to after forwarders, or null when the chain does not end in a loaded module's export.</summary>
    public (DumpModule Module, PeExport Export)? Target(ExportResolution resolution)
    {
        if (!resolution.Success || resolution.Export is null) return null;
        var module = FindLoaded(resolution.Module);
        return module is null ? null : (module, resolution.Export);
    }
}
