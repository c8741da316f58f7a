namespace DriverAudit.Rules.Facts;

/// <summary>One imported function. Module keeps the case it has in the image; comparisons ignore case.</summary>
/// <param name="Module">DLL name as written in the import table, e.g. "ntoskrnl.exe".</param>
/// <param name="Name">Function name; null for an import by ordinal.</param>
/// <param name="Ordinal">Ordinal for an import by ordinal; null for an import by name.</param>
/// <param name="Delayed">True for delay-load imports.</param>
/// <param name="SlotRva">RVA of the IAT slot this import is bound through, when known.</param>
public sealed record ImportFact(string Module, string? Name, int? Ordinal, bool Delayed, uint? SlotRva = null)
{
    /// <summary>Stable anchor, e.g. "ntoskrnl.exe!ExAllocatePool" or "hal.dll!#12" (module lower-cased).</summary>
    public string Key => $"{Module.ToLowerInvariant()}!{(Name ?? "#" + Ordinal)}";
}

/// <summary>One exported symbol.</summary>
public sealed record ExportFact(string? Name, int Ordinal, uint Rva, string? Forwarder);

/// <summary>One section header, as the image declares it.</summary>
public sealed record SectionFact(int Index, string Name, uint Rva, uint VirtualSize, uint RawSize, uint Characteristics)
{
    public const uint MemDiscardable = 0x02000000, MemExecute = 0x20000000, MemRead = 0x40000000, MemWrite = 0x80000000;
    public const uint CntCode = 0x00000020;

    public bool Readable => (Characteristics & MemRead) != 0;
    public bool Writable => (Characteristics & MemWrite) != 0;
    public bool Executable => (Characteristics & (MemExecute | CntCode)) != 0;
    public bool Discardable => (Characteristics & MemDiscardable) != 0;
    public bool PageAligned => Rva % 0x1000 == 0;
}

/// <summary>File and optional header facts.</summary>
/// <param name="Machine">"x86", "x64", "arm64", "arm" or "0x{value:x4}" for anything else.</param>
/// <param name="Subsystem">"native", "windows-gui", "windows-cui", "efi-boot-service-driver", ... or "0x{value}".</param>
public sealed record HeaderFact(
    string Machine,
    string Subsystem,
    bool Is64Bit,
    ushort FileCharacteristics,
    ushort DllCharacteristics,
    uint SectionAlignment,
    uint FileAlignment,
    ulong ImageBase,
    uint SizeOfImage,
    uint TimeDateStamp,
    uint CheckSum);
