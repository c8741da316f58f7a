namespace DriverAudit.Scanner.Pe;

/// <summary>Why <see cref="PeImage.TryOpen"/> refused an image.</summary>
internal enum PeOpenStatus
{
    Ok,
    /// <summary>No MZ or no PE\0\0 signature (including an e_lfanew that points outside the image).</summary>
    NotPe,
    /// <summary>Signatures present but a header is invalid (bad optional-header magic, absurd counts, ...).</summary>
    Malformed,
    /// <summary>Headers run past the end of the source, or a header page is missing.</summary>
    Truncated,
}

/// <summary>Outcome of <see cref="PeImage.TryOpen"/>: an image, or a status and a human-readable reason.</summary>
internal readonly record struct PeOpenResult(PeOpenStatus Status, PeImage? Image, string? Reason)
{
    public bool Success => Image is not null;

    internal static PeOpenResult Fail(PeOpenStatus status, string reason) => new(status, null, reason);
}

/// <summary>A problem found while reading a table; the table is read as far as it is sound.</summary>
internal sealed record PeDiagnostic(string Code, string Message)
{
    public override string ToString() => $"{Code}: {Message}";
}

/// <summary>Stable diagnostic codes (tests and reports match on these, not on messages).</summary>
internal static class PeDiagnosticCodes
{
    public const string ImportTableUnreadable = "import-table-unreadable";
    /// <summary>Section headers map the same bytes more than once; whole-image passes read them once.</summary>
    public const string SectionsOverlap = "sections-overlap";
    /// <summary>A per-image work budget (bytes disassembled, strings, findings) was reached; the rest was not analysed.</summary>
    public const string BudgetReached = "budget-reached";
    public const string ImportDescriptorsUnterminated = "import-descriptors-unterminated";
    public const string ImportModuleNameUnreadable = "import-module-name-unreadable";
    public const string ImportThunksUnreadable = "import-thunks-unreadable";
    public const string ImportThunksUnterminated = "import-thunks-unterminated";
    public const string ImportNameUnreadable = "import-name-unreadable";
    public const string NameUnterminated = "name-unterminated";
    public const string DelayImportTableUnreadable = "delay-import-table-unreadable";
    public const string DelayImportBadAddress = "delay-import-bad-address";
    public const string ExportTableUnreadable = "export-table-unreadable";
    public const string ExportCountCapped = "export-count-capped";
    public const string ExportArrayUnreadable = "export-array-unreadable";
    public const string ExportNameUnreadable = "export-name-unreadable";
    public const string LoadConfigUnreadable = "load-config-unreadable";
    public const string DebugDirectoryUnreadable = "debug-directory-unreadable";
    public const string DebugCountCapped = "debug-count-capped";
    public const string CodeViewUnreadable = "codeview-unreadable";
    public const string ResourceUnreadable = "resource-unreadable";
    public const string ResourceLoop = "resource-loop";
    public const string ResourceCountCapped = "resource-count-capped";
    public const string VersionInfoMalformed = "version-info-malformed";
    public const string CertificateTableOutsideFile = "certificate-table-outside-file";
    public const string CertificateEntryMalformed = "certificate-entry-malformed";
    public const string CertificateNotMapped = "certificate-not-mapped";
}

/// <summary>Read status of a lazily parsed table.</summary>
internal enum PeTableStatus
{
    /// <summary>The data directory is empty: the image has no such table.</summary>
    Absent,
    /// <summary>Parsed completely.</summary>
    Ok,
    /// <summary>Parsed partly; see <see cref="PeImage.Diagnostics"/>.</summary>
    Incomplete,
    /// <summary>Declared but nothing could be read (outside the image, or pages missing).</summary>
    Unreadable,
}

/// <summary>One data directory entry as declared (RVA and size; for the certificate table the "RVA" is a file offset).</summary>
internal readonly record struct PeDataDirectory(uint VirtualAddress, uint Size)
{
    public bool IsPresent => VirtualAddress != 0 && Size != 0;
}

/// <summary>One section header. Names are decoded as the loader sees them (NUL-padded, up to 8 bytes).</summary>
internal sealed record PeSection(int Index, string Name, uint Rva, uint VirtualSize, uint RawPointer, uint RawSize, uint Characteristics)
{
    public const uint CntCode = 0x20, MemDiscardable = 0x02000000, MemExecute = 0x20000000, MemRead = 0x40000000, MemWrite = 0x80000000;

    /// <summary>Bytes the section spans in memory: VirtualSize, or SizeOfRawData when VirtualSize is 0 (loader rule).</summary>
    public uint MappedSize => VirtualSize != 0 ? VirtualSize : RawSize;

    public bool Executable => (Characteristics & (MemExecute | CntCode)) != 0;

    public bool Contains(uint rva) => rva >= Rva && (ulong)rva < (ulong)Rva + MappedSize;
}
