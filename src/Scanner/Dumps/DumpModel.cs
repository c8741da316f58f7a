namespace DriverAudit.Scanner.Dumps;

/// <summary>DUMP_TYPE from the header (mindumpdef.h). Values are the on-disk numbers.</summary>
internal enum DumpType
{
    Unknown = 0,
    Full = 1,
    Summary = 2,
    HeaderOnly = 3,
    Triage = 4,
    BitmapFull = 5,
    BitmapKernel = 6,
    Automatic = 7,
    /// <summary>'RDMP' range dump of kernel memory (WinDbg <c>.dump /k</c>, kdmp-parser's KernelMemoryDump).</summary>
    RangeKernel = 8,
    /// <summary>'RDMP' range dump of kernel and user memory (<c>.dump /ka</c>).</summary>
    RangeKernelAndUser = 9,
    /// <summary>'RDMP' range dump of all memory (<c>.dump /f</c>).</summary>
    RangeComplete = 10,
    /// <summary>Not an on-disk value: a raw physical memory image without any header.</summary>
    RawMemory = 0x100,
}

/// <summary>Processor architecture of the dumped system.</summary>
internal enum DumpMachine
{
    X86,
    X64,
    /// <summary>Windows on ARM (machine 0xAA64): 64-bit, the same DUMP_HEADER64 layout as x64.</summary>
    Arm64,
}

/// <summary>Why <see cref="KernelDump.TryOpen"/> refused a file.</summary>
internal enum DumpOpenError
{
    None,
    /// <summary>The file could not be opened or mapped (missing, denied, locked).</summary>
    IoError,
    /// <summary>No kernel-dump signature.</summary>
    NotADump,
    /// <summary>A user-mode minidump or user crash dump ('MDMP', 'USER').</summary>
    UserModeDump,
    /// <summary>A kernel dump of a type or machine this reader does not handle.</summary>
    UnsupportedType,
    /// <summary>The dump's data is encrypted (DUMP_FILE_ATTRIBUTES.EncryptedDumpData).</summary>
    Encrypted,
    /// <summary>The file ends before the structures needed to use it.</summary>
    Truncated,
    /// <summary>A structure the dump cannot be read without is malformed.</summary>
    Corrupt,
    /// <summary>A recognised memory-image format DriverAudit does not read (hibernation file, LiME, ELF core, AFF4, VM state).</summary>
    UnsupportedFormat,
    /// <summary>A raw memory image in which no kernel page-table root, kernel or module list could be found.</summary>
    NoKernelFound,
}

/// <summary>Something malformed or missing in a dump, reported instead of thrown.</summary>
/// <param name="Code">Stable code, see <see cref="DumpDiagnosticCodes"/>.</param>
internal readonly record struct DumpDiagnostic(string Code, string Message)
{
    public override string ToString() => $"{Code}: {Message}";
}

/// <summary>Stable diagnostic codes (tests and reports match on them; never renumber).</summary>
internal static class DumpDiagnosticCodes
{
    public const string RunTable = "DMP001";
    public const string FileTruncated = "DMP002";
    public const string Bitmap = "DMP003";
    public const string ModuleListHead = "DMP010";
    public const string ModuleListCycle = "DMP011";
    public const string ModuleListTooLong = "DMP012";
    public const string ModuleEntryUnreadable = "DMP013";
    public const string ModuleListLink = "DMP014";
    public const string ModuleName = "DMP015";
    public const string ModuleSize = "DMP016";
    public const string ModuleBase = "DMP017";
    public const string Kdbg = "DMP020";
    public const string Triage = "DMP030";
    public const string TriageDataBlocks = "DMP031";
    public const string UnloadedDrivers = "DMP032";
    public const string RangeBlock = "DMP035";
    /// <summary>A VMware saved state beside a .vmem could not be used (unreadable, or its CR3 did not validate).</summary>
    public const string SavedState = "DMP036";
    public const string HeaderField = "DMP040";
    public const string IatNotFound = "DMP050";
    public const string IatUnresolved = "DMP051";
    public const string IatMismatch = "DMP052";
    public const string IatUnreadable = "DMP053";
    public const string IatZeroOnly = "DMP054";
    public const string IatShort = "DMP055";
}

/// <summary>The outcome of <see cref="KernelDump.TryOpen"/>: a dump, or an error and a message that says why.</summary>
internal sealed class DumpOpenResult
{
    private DumpOpenResult(KernelDump? dump, DumpOpenError error, string message)
    {
        Dump = dump;
        Error = error;
        Message = message;
    }

    public KernelDump? Dump { get; }
    public DumpOpenError Error { get; }
    public string Message { get; }
    public bool Success => Dump is not null;

    internal static DumpOpenResult Ok(KernelDump dump) => new(dump, DumpOpenError.None, "");
    internal static DumpOpenResult Fail(DumpOpenError error, string message) => new(null, error, message);
}

/// <summary>A kernel module recorded in a dump (loaded-module list, or a triage dump's driver list).</summary>
/// <param name="Index">Position in load order (0 is ntoskrnl in a well-formed list).</param>
/// <param name="Name">Base name, e.g. "ntoskrnl.exe".</param>
/// <param name="FullPath">FullDllName as recorded (may equal <paramref name="Name"/> when the path is absent).</param>
/// <param name="Base">DllBase (x86 addresses are zero-extended).</param>
/// <param name="Size">SizeOfImage.</param>
/// <param name="TimeDateStamp">IMAGE_FILE_HEADER.TimeDateStamp from the in-memory header, or from the triage entry; null when unknown.</param>
/// <param name="CheckSum">OptionalHeader.CheckSum from the in-memory header, else the loader entry's copy; null when unknown.</param>
/// <param name="ImageAvailable">False when the dump holds none of the module's bytes (a triage dump whose data blocks copied nothing of it).</param>
/// <param name="EntryAddress">VA of the KLDR_DATA_TABLE_ENTRY (0 for triage dumps).</param>
internal sealed record DumpModule(
    int Index,
    string Name,
    string FullPath,
    ulong Base,
    uint Size,
    uint? TimeDateStamp,
    uint? CheckSum,
    bool ImageAvailable,
    ulong EntryAddress)
{
    /// <summary>True when <paramref name="va"/> lies in [Base, Base+Size).</summary>
    public bool Contains(ulong va) => va >= Base && va - Base < Size;
}
