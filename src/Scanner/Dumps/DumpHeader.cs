using System.Buffers.Binary;

namespace DriverAudit.Scanner.Dumps;

/// <summary>One entry of PHYSICAL_MEMORY_DESCRIPTOR: a run of consecutive PFNs stored consecutively in the file.</summary>
internal readonly record struct PhysicalRun(ulong BasePage, ulong PageCount);

/// <summary>
/// DUMP_HEADER64 ("PAGEDU64", 0x2000 bytes) or DUMP_HEADER32 ("PAGEDUMP", 0x1000 bytes), see docs/crash-dumps.md §1.
/// Only fields DriverAudit uses are kept.
/// </summary>
internal sealed class DumpHeader
{
    /// <summary>'PAGE': the kernel fills unset header fields with it.</summary>
    public const uint PageFill = 0x45474150;
    public const int Header64Size = 0x2000;
    public const int Header32Size = 0x1000;
    private const uint AttributeEncrypted = 1u << 8;

    public bool Is64 { get; private init; }
    public int HeaderSize => Is64 ? Header64Size : Header32Size;
    public DumpMachine Machine { get; private init; }
    public uint MajorVersion { get; private init; }
    public uint MinorVersion { get; private init; }
    public ulong DirectoryTableBase { get; private init; }
    public ulong PfnDataBase { get; private init; }
    public ulong PsLoadedModuleList { get; private init; }
    public ulong PsActiveProcessHead { get; private init; }
    public uint NumberOfProcessors { get; private init; }
    public uint BugCheckCode { get; private init; }
    public ulong[] BugCheckParameters { get; private init; } = new ulong[4];
    public ulong KdDebuggerDataBlock { get; private init; }
    public uint NumberOfRuns { get; private init; }
    public ulong NumberOfPages { get; private init; }
    /// <summary>Runs as stored (empty when NumberOfRuns is the fill pattern or above the maximum).</summary>
    public PhysicalRun[] Runs { get; private init; } = [];
    public uint RawDumpType { get; private init; }
    public DumpType DumpType => RawDumpType is >= 1 and <= 10 or (uint)DumpType.RawMemory ? (DumpType)RawDumpType : DumpType.Unknown;

    /// <summary>The header a raw memory image would have had: what the locator found, nothing else.</summary>
    internal static DumpHeader ForRawImage(DumpMachine machine, bool pae, ulong directoryTableBase, ulong psLoadedModuleList) => new()
    {
        Is64 = machine != DumpMachine.X86, Machine = machine, PaeEnabled = pae, DirectoryTableBase = directoryTableBase,
        PsLoadedModuleList = psLoadedModuleList, RawDumpType = (uint)DumpType.RawMemory, NumberOfRuns = PageFill,
    };
    public long SystemTimeRaw { get; private init; }
    public uint MiniDumpFields { get; private init; }
    public bool PaeEnabled { get; private init; }
    /// <summary>1 workstation, 2 domain controller, 3 server; null when the field holds the fill pattern.</summary>
    public uint? ProductType { get; private init; }
    public int MaxRuns => Is64 ? 42 : 86;

    public DateTime? SystemTime =>
        SystemTimeRaw > 0 && SystemTimeRaw <= DateTime.MaxValue.ToFileTimeUtc()
            ? DateTime.FromFileTimeUtc(SystemTimeRaw)
            : null;

    /// <summary>Parses the header, or explains why the file is not a usable kernel dump.</summary>
    public static DumpHeader? TryRead(MappedDumpFile file, out DumpOpenError error, out string message)
    {
        Span<byte> sig = stackalloc byte[8];
        var got = file.Read(0, sig);
        error = DumpOpenError.None;
        message = "";
        if (got >= 4 && sig[..4].SequenceEqual("MDMP"u8))
            return Fail(DumpOpenError.UserModeDump, "This is a user-mode minidump ('MDMP'), not a kernel crash dump.", out error, out message);
        if (got >= 4 && sig[..4].SequenceEqual("USER"u8))
            return Fail(DumpOpenError.UserModeDump, "This is a user-mode crash dump ('USER'), not a kernel crash dump.", out error, out message);
        bool is64;
        if (got == 8 && sig.SequenceEqual("PAGEDU64"u8)) is64 = true;
        else if (got == 8 && sig.SequenceEqual("PAGEDUMP"u8)) is64 = false;
        else return Fail(DumpOpenError.NotADump, "No kernel crash-dump signature ('PAGEDU64' or 'PAGEDUMP') at the start of the file.", out error, out message);

        var size = is64 ? Header64Size : Header32Size;
        if (file.Length < size)
            return Fail(DumpOpenError.Truncated, $"The file is {file.Length} bytes, shorter than the 0x{size:X}-byte {(is64 ? "64" : "32")}-bit dump header.", out error, out message);

        var h = new byte[size]; // one header, once: small and bounded
        file.Read(0, h);
        var header = is64 ? Parse64(h) : Parse32(h);

        var attributes = is64 ? U32(h, 0x1050) : U32(h, 0x8A0);
        if (attributes != PageFill && (attributes & AttributeEncrypted) != 0)
            return Fail(DumpOpenError.Encrypted, "The dump's data is encrypted (DUMP_FILE_ATTRIBUTES.EncryptedDumpData); decrypt it first.", out error, out message);

        var machine = is64 ? U32(h, 0x30) : U32(h, 0x20);
        DumpMachine? m = machine switch { 0x8664 => DumpMachine.X64, 0xAA64 => DumpMachine.Arm64, 0x14C => DumpMachine.X86, _ => null };
        if (m is null || (m != DumpMachine.X86) != is64)
            return Fail(DumpOpenError.UnsupportedType, $"Unsupported machine type 0x{machine:X} in a {(is64 ? "64" : "32")}-bit dump header (x64, ARM64 and x86 are supported).", out error, out message);
        return new DumpHeader
        {
            Is64 = header.Is64, Machine = m.Value, MajorVersion = header.MajorVersion, MinorVersion = header.MinorVersion,
            DirectoryTableBase = header.DirectoryTableBase, PfnDataBase = header.PfnDataBase, PsLoadedModuleList = header.PsLoadedModuleList,
            PsActiveProcessHead = header.PsActiveProcessHead, NumberOfProcessors = header.NumberOfProcessors, BugCheckCode = header.BugCheckCode,
            BugCheckParameters = header.BugCheckParameters, KdDebuggerDataBlock = header.KdDebuggerDataBlock, NumberOfRuns = header.NumberOfRuns,
            NumberOfPages = header.NumberOfPages, Runs = header.Runs, RawDumpType = header.RawDumpType, SystemTimeRaw = header.SystemTimeRaw,
            MiniDumpFields = header.MiniDumpFields, PaeEnabled = header.PaeEnabled, ProductType = header.ProductType,
        };
    }

    private static DumpHeader Parse64(byte[] h)
    {
        var runs = U32(h, 0x88);
        return new DumpHeader
        {
            Is64 = true,
            MajorVersion = U32(h, 0x08),
            MinorVersion = U32(h, 0x0C),
            DirectoryTableBase = U64(h, 0x10),
            PfnDataBase = U64(h, 0x18),
            PsLoadedModuleList = U64(h, 0x20),
            PsActiveProcessHead = U64(h, 0x28),
            NumberOfProcessors = U32(h, 0x34),
            BugCheckCode = U32(h, 0x38),
            BugCheckParameters = [U64(h, 0x40), U64(h, 0x48), U64(h, 0x50), U64(h, 0x58)],
            KdDebuggerDataBlock = U64(h, 0x80),
            NumberOfRuns = runs,
            NumberOfPages = U64(h, 0x90),
            Runs = ReadRuns(h, runs, 42, 0x98, 16, wide: true),
            RawDumpType = U32(h, 0xF98),
            SystemTimeRaw = (long)U64(h, 0xFA8),
            MiniDumpFields = U32(h, 0x1038),
            PaeEnabled = false,
            ProductType = U32(h, 0x1040) is var p and not PageFill and not 0 ? p : null,
        };
    }

    private static DumpHeader Parse32(byte[] h)
    {
        var runs = U32(h, 0x64);
        return new DumpHeader
        {
            Is64 = false,
            MajorVersion = U32(h, 0x08),
            MinorVersion = U32(h, 0x0C),
            DirectoryTableBase = U32(h, 0x10),
            PfnDataBase = U32(h, 0x14),
            PsLoadedModuleList = U32(h, 0x18),
            PsActiveProcessHead = U32(h, 0x1C),
            NumberOfProcessors = U32(h, 0x24),
            BugCheckCode = U32(h, 0x28),
            BugCheckParameters = [U32(h, 0x2C), U32(h, 0x30), U32(h, 0x34), U32(h, 0x38)],
            KdDebuggerDataBlock = U32(h, 0x60),
            NumberOfRuns = runs,
            NumberOfPages = U32(h, 0x68),
            Runs = ReadRuns(h, runs, 86, 0x6C, 8, wide: false),
            RawDumpType = U32(h, 0xF88),
            SystemTimeRaw = (long)U64(h, 0xFC0),
            MiniDumpFields = U32(h, 0xF8C),
            PaeEnabled = h[0x5C] == 1,
            ProductType = U32(h, 0xF94) is var p and not PageFill and not 0 ? p : null,
        };
    }

    private static PhysicalRun[] ReadRuns(byte[] h, uint count, int max, int first, int stride, bool wide)
    {
        if (count == PageFill || count > max) return [];
        var runs = new PhysicalRun[count];
        for (var i = 0; i < runs.Length; i++)
        {
            var at = first + i * stride;
            runs[i] = wide ? new PhysicalRun(U64(h, at), U64(h, at + 8)) : new PhysicalRun(U32(h, at), U32(h, at + 4));
        }
        return runs;
    }

    private static DumpHeader? Fail(DumpOpenError e, string m, out DumpOpenError error, out string message)
    {
        error = e;
        message = m;
        return null;
    }

    private static uint U32(byte[] h, int at) => BinaryPrimitives.ReadUInt32LittleEndian(h.AsSpan(at, 4));
    private static ulong U64(byte[] h, int at) => BinaryPrimitives.ReadUInt64LittleEndian(h.AsSpan(at, 8));
}
