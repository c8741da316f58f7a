using DriverAudit.Scanner.Dumps;

namespace DriverAudit.TestSupport.Dumps;

/// <summary>A dump written to a temporary file, deleted on dispose.</summary>
public sealed class TempDumpFile : IDisposable
{
    public TempDumpFile(byte[] bytes)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"driveraudit-{Guid.NewGuid():N}.dmp");
        File.WriteAllBytes(Path, bytes);
    }

    public string Path { get; }

    public void Dispose()
    {
        try { File.Delete(Path); } catch (IOException) { }
    }
}

/// <summary>The standard small scenario: ntoskrnl, hal and a driver (INIT zeroed), plus large pages.</summary>
public sealed class DumpScenario
{
    public DumpScenario(DumpArch arch)
    {
        Writer = new DumpWriter(arch);
        var is64 = arch is DumpArch.X64 or DumpArch.Arm64;
        ulong Kva(ulong offset) => (is64 ? 0xFFFFF80000000000 : 0x80000000) + offset;

        Kernel = Writer.AddModule(@"\SystemRoot\system32\ntoskrnl.exe", Kva(0x20_0000), MiniPe.Build(is64, 0x5F3E1A01, 0x00A1B2C3,
            new MiniSection(".text", 0x1000, MiniPe.Pattern(0x2800, 1)),
            new MiniSection(".data", 0x4000, MiniPe.Pattern(0x900, 2)),
            new MiniSection("INIT", 0x5000, MiniPe.Pattern(0x800, 3))));
        Hal = Writer.AddModule(@"\SystemRoot\system32\hal.dll", Kva(0x40_0000), MiniPe.Build(is64, 0x5F3E1A02, 0x6001,
            new MiniSection(".text", 0x1000, MiniPe.Pattern(0x1000, 4))));
        Driver = Writer.AddModule(@"\SystemRoot\System32\drivers\{6A2B0C1D-0000-4000-8000-0123456789AB}.sys", Kva(0x100_0000),
            MiniPe.Build(is64, 0x65A0C0DE, 0x0000BEEF,
                new MiniSection(".text", 0x1000, MiniPe.Pattern(0x1200, 5)),
                new MiniSection(".rdata", 0x3000, MiniPe.Pattern(0x400, 6)),
                new MiniSection("INIT", 0x4000, MiniPe.Pattern(0x600, 7))));
        Writer.ZeroRange(Driver, 0x4000, 0x600); // INIT is discarded after DriverEntry

        // Large pages: only the pages written below are stored; the rest of each large page is missing.
        switch (arch)
        {
            case DumpArch.X64 or DumpArch.Arm64:
                LargeVa = Kva(0x4000_0000); LargePa = 0x2000_0000; LargeSize = 0x20_0000;
                Writer.MapLarge(LargeVa, LargePa, LargeSize);
                HugeVa = Kva(0x8000_0000); HugePa = 0x4000_0000;
                Writer.MapLarge(HugeVa, HugePa, 0x4000_0000);
                Writer.WriteVirtual(HugeVa + HugeOffset, MiniPe.Pattern(0x1000, 9));
                break;
            case DumpArch.X86Pae:
                LargeVa = 0x8400_0000; LargePa = 0x0600_0000; LargeSize = 0x20_0000;
                Writer.MapLarge(LargeVa, LargePa, LargeSize);
                break;
            default:
                LargeVa = 0x8400_0000; LargePa = 0x0800_0000; LargeSize = 0x40_0000;
                Writer.MapLarge(LargeVa, LargePa, LargeSize);
                break;
        }
        Writer.WriteVirtual(LargeVa + LargeOffset, MiniPe.Pattern(0x2000, 8)); // two pages, crossing nothing special
    }

    public DumpWriter Writer { get; }
    public WrittenModule Kernel { get; }
    public WrittenModule Hal { get; }
    public WrittenModule Driver { get; }
    public ulong LargeVa { get; }
    public ulong LargePa { get; }
    public ulong LargeSize { get; }
    /// <summary>Offset inside the large page of the two stored pages (chosen off the first page on purpose).</summary>
    public ulong LargeOffset => LargeSize - 0x3000;
    public ulong HugeVa { get; }
    public ulong HugePa { get; }
    public const ulong HugeOffset = 0x1234_5000;

    internal static KernelDump Open(TempDumpFile file)
    {
        var result = KernelDump.TryOpen(file.Path);
        if (!result.Success) throw new InvalidOperationException($"{result.Error}: {result.Message}");
        return result.Dump!;
    }
}
