using DriverAudit.Rules.Facts;

namespace DriverAudit.Scanner.Dumps;

/// <summary>How the IAT of a dump module was found.</summary>
internal enum IatSource
{
    /// <summary>No IAT found (no directory 12, no readable descriptors, no pointer run).</summary>
    None,
    /// <summary>Data directory 12.</summary>
    DataDirectory,
    /// <summary>The FirstThunk arrays of the module's import descriptors (their pages survived).</summary>
    ImportDescriptors,
    /// <summary>Runs of pointers to loaded modules' exports found in non-executable sections.</summary>
    PointerScan,
}

/// <summary>One non-zero IAT slot and what its value resolves to.</summary>
/// <param name="Rva">RVA of the slot in the importing module.</param>
/// <param name="Value">The address the loader wrote (zero-extended on x86); null when the slot's page is missing.</param>
/// <param name="Module">Base name of the module the import lands in, as loaded (e.g. "ntoskrnl.exe"); null when unresolved.</param>
/// <param name="Name">Export name; null for an export by ordinal or an unresolved slot.</param>
/// <param name="Ordinal">Export ordinal when resolved.</param>
/// <param name="DescriptorModule">The DLL the surviving import descriptor names, when it differs from <paramref name="Module"/> (e.g. "HAL.dll" forwarded to ntoskrnl).</param>
/// <param name="Problem">Why the slot is unresolved, or what disagreed; null when all is well.</param>
internal sealed record IatSlot(uint Rva, ulong? Value, string? Module, string? Name, int? Ordinal, string? DescriptorModule, string? Problem)
{
    public bool Resolved => Module is not null;
    /// <summary>"ntoskrnl.exe!ExAllocatePool", "hal.dll!#12" or null.</summary>
    public string? Display => Module is null ? null : ImportRef.Format(Module, Name, Ordinal);
}

/// <summary>The resolved IAT of one dump module.</summary>
/// <param name="Source">Where the IAT was found.</param>
/// <param name="IatRva">RVA of the first slot, when an IAT was found.</param>
/// <param name="Slots">Every non-zero slot, in RVA order (unresolved ones included).</param>
/// <param name="Imports">Import facts for rules: resolved slots in RVA order, then delay-load imports from their descriptors.</param>
/// <param name="Diagnostics">Unresolved slots, descriptor/value mismatches, unreadable IAT pages.</param>
internal sealed record IatResolution(
    IatSource Source,
    uint? IatRva,
    IReadOnlyList<IatSlot> Slots,
    IReadOnlyList<ImportFact> Imports,
    IReadOnlyList<DumpDiagnostic> Diagnostics)
{
    public int UnresolvedCount => Slots.Count(s => !s.Resolved);
}
