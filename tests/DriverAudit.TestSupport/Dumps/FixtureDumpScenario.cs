namespace DriverAudit.TestSupport.Dumps;

/// <summary>
/// The founding case as a dump: the mingw fixture kernel (ntoskrnl.exe, hal.dll with a forwarder) and
/// drivers, bound by <see cref="LoaderSim"/>, with INIT zeroed where the import descriptors live.
/// </summary>
public sealed class FixtureDumpScenario
{
    public const string GuidName = "{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F}.sys";
    /// <summary>The same GUID driver again, with data directory 12 cleared: only the pointer scan finds its IAT.</summary>
    public const string GuidNoDirName = "{0D15EA5E-0000-4000-8000-00000000BEEF}.sys";

    public FixtureDumpScenario(DumpArch arch, Action<FixtureDumpScenario>? beforeDiscard = null)
    {
        Writer = new DumpWriter(arch);
        var is64 = arch is DumpArch.X64 or DumpArch.Arm64;
        // ARM64: the x64 fake kernel, HAL and GUID driver (IAT binding and the module list do not depend on the code's
        // machine) next to the ARM64 pool_legacy.sys.
        var dir = is64 ? "x64" : "x86";
        ulong Kva(ulong offset) => (is64 ? 0xFFFFF80000000000 : 0x80000000) + offset;
        byte[] Fixture(string name) => File.ReadAllBytes(RepoPaths.Fixture(dir, name));

        Kernel = Writer.AddModule(@"\SystemRoot\system32\ntoskrnl.exe", Kva(0x20_0000), Fixture("kernel/ntoskrnl.exe"));
        Hal = Writer.AddModule(@"\SystemRoot\system32\hal.dll", Kva(0x40_0000), Fixture("kernel/hal.dll"));
        Guid = Writer.AddModule(@"\SystemRoot\System32\drivers\" + GuidName, Kva(0x100_0000), Fixture(GuidName));
        GuidNoDir = Writer.AddModule(@"\??\C:\ProgramData\Vendor\" + GuidNoDirName, Kva(0x110_0000), Fixture(GuidName));
        Modern = Writer.AddModule(@"\SystemRoot\System32\drivers\pool_modern.sys", Kva(0x120_0000), Fixture("pool_modern.sys"));
        Legacy = Writer.AddModule(@"\SystemRoot\System32\drivers\pool_legacy.sys", Kva(0x130_0000), arch == DumpArch.Arm64 ? File.ReadAllBytes(RepoPaths.Fixture("arm64", "pool_legacy.sys")) : Fixture("pool_legacy.sys"));
        (string, string[])[] halImports = [("hal.dll", ["KeGetCurrentIrql", "HalMakeBeep"]), ("ntoskrnl.exe", ["ExAllocatePool2"])];
        HalUser = Writer.AddModule(@"\SystemRoot\System32\drivers\haluser.sys", Kva(0x140_0000), ImportPe.Build(is64, 0x60000001, true, halImports));
        HalUserDescriptors = Writer.AddModule(@"\SystemRoot\System32\drivers\haldesc.sys", Kva(0x150_0000), ImportPe.Build(is64, 0x60000002, false, halImports));
        HalUserScan = Writer.AddModule(@"\SystemRoot\System32\drivers\halscan.sys", Kva(0x160_0000), ImportPe.Build(is64, 0x60000003, false, halImports));

        LoaderSim.BindAll(Writer);
        beforeDiscard?.Invoke(this);
        LoaderSim.ZeroSection(Writer, Guid, "INIT");
        LoaderSim.ZeroSection(Writer, GuidNoDir, "INIT");
        LoaderSim.ClearDirectory(Writer, GuidNoDir, 12);
        LoaderSim.ZeroSection(Writer, HalUserScan, "INIT");
    }

    public DumpWriter Writer { get; }
    public WrittenModule Kernel { get; }
    public WrittenModule Hal { get; }
    public WrittenModule Guid { get; }
    public WrittenModule GuidNoDir { get; }
    public WrittenModule Modern { get; }
    public WrittenModule Legacy { get; }
    /// <summary>Imports hal.dll!KeGetCurrentIrql (forwarded to ntoskrnl), hal.dll!HalMakeBeep, ntoskrnl.exe!ExAllocatePool2; directory 12 set, descriptors intact.</summary>
    public WrittenModule HalUser { get; }
    /// <summary>Same imports, no directory 12, descriptors intact.</summary>
    public WrittenModule HalUserDescriptors { get; }
    /// <summary>Same imports, no directory 12, INIT (descriptors) zeroed.</summary>
    public WrittenModule HalUserScan { get; }

    public byte[] Write(string kind) => kind switch
    {
        "full" => Writer.WriteFull(),
        "bitmap" => Writer.WriteBitmap(),
        "triage" => Writer.WriteTriage(),
        "range8" => Writer.WriteRange(8),
        "range9" => Writer.WriteRange(9),
        "range10" => Writer.WriteRange(10),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}
