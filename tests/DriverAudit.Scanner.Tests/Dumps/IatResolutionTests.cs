using System.Text.Json;
using DriverAudit.Scanner.Dumps;
using DriverAudit.Scanner.Pe;
using Xunit;

namespace DriverAudit.Scanner.Tests.Dumps;

public sealed class IatResolutionTests
{
    public static TheoryData<DumpArch, string> Formats => new()
    {
        { DumpArch.X64, "full" },
        { DumpArch.X64, "bitmap" },
        { DumpArch.X86Pae, "full" },
        { DumpArch.X86Pae, "bitmap" },
        { DumpArch.X86, "full" },
        { DumpArch.X86, "bitmap" },
    };

    /// <summary>Export RVAs of the fixture kernel as the pefile oracle read them (not our parser).</summary>
    private static Dictionary<string, uint> OracleExports(DumpArch arch, string image)
    {
        var dir = arch == DumpArch.X64 ? "x64" : "x86";
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "expected", dir, "kernel", image + ".json")));
        return doc.RootElement.GetProperty("exports").EnumerateArray()
            .Where(e => e.GetProperty("forwarder").ValueKind == JsonValueKind.Null)
            .ToDictionary(e => e.GetProperty("name").GetString()!, e => e.GetProperty("rva").GetUInt32());
    }

    private static string[] OracleImportNames(DumpArch arch, string file)
    {
        var dir = arch == DumpArch.X64 ? "x64" : "x86";
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "expected", dir, Path.ChangeExtension(file, ".json"))));
        return [.. doc.RootElement.GetProperty("imports").EnumerateArray().Select(i => i.GetProperty("name").GetString()!)];
    }

    private static (KernelDump Dump, DumpExportCatalog Catalog) Open(TempDumpFile file)
    {
        var dump = DumpScenario.Open(file);
        return (dump, new DumpExportCatalog(dump));
    }

    private static IatResolution Resolve(KernelDump dump, DumpExportCatalog catalog, string name, out PeImage image)
    {
        var module = dump.Modules.Single(m => m.Name == name);
        image = PeImage.TryOpen(dump.OpenModuleImage(module)).Image ?? throw new InvalidOperationException("headers missing");
        return IatResolver.Resolve(image, module, catalog, dump.Machine == DumpMachine.X64);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Guid_driver_with_zeroed_INIT_is_resolved_through_directory_12(DumpArch arch, string kind)
    {
        var s = new FixtureDumpScenario(arch);
        using var file = new TempDumpFile(s.Write(kind));
        var (dump, catalog) = Open(file);
        using var owner = dump;

        var iat = Resolve(dump, catalog, FixtureDumpScenario.GuidName, out var image);

        Assert.Empty(image.Imports.Imports); // the descriptors really are gone
        Assert.Equal(IatSource.DataDirectory, iat.Source);
        Assert.Equal(image.IatDirectory.VirtualAddress, iat.IatRva);
        Assert.Empty(iat.Diagnostics);
        var nt = OracleExports(arch, "ntoskrnl");
        Assert.Equal(OracleImportNames(arch, FixtureDumpScenario.GuidName).Order(StringComparer.Ordinal), iat.Imports.Select(i => i.Name!).Order(StringComparer.Ordinal));
        Assert.All(iat.Slots, slot =>
        {
            Assert.Equal("ntoskrnl.exe", slot.Module);
            Assert.Equal(s.Kernel.Base + nt[slot.Name!], slot.Value);
        });
        Assert.Contains(iat.Imports, i => i.Key == "ntoskrnl.exe!ExAllocatePool" && !i.Delayed && i.SlotRva is not null);
        Assert.Equal(1, catalog.OpenedTables); // only ntoskrnl's export table was read
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Without_directory_12_or_descriptors_the_pointer_scan_finds_the_IAT(DumpArch arch, string kind)
    {
        var s = new FixtureDumpScenario(arch);
        using var file = new TempDumpFile(s.Write(kind));
        var (dump, catalog) = Open(file);
        using var owner = dump;

        var withDir = Resolve(dump, catalog, FixtureDumpScenario.GuidName, out _);
        var iat = Resolve(dump, catalog, FixtureDumpScenario.GuidNoDirName, out var image);

        Assert.False(image.IatDirectory.IsPresent);
        Assert.Empty(image.Imports.Imports);
        Assert.Equal(IatSource.PointerScan, iat.Source);
        Assert.Equal(withDir.IatRva, iat.IatRva);
        Assert.Equal(withDir.Imports.Select(i => (i.Key, i.SlotRva)), iat.Imports.Select(i => (i.Key, i.SlotRva)));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Surviving_descriptors_are_used_and_agree_with_the_slot_values(DumpArch arch, string kind)
    {
        var s = new FixtureDumpScenario(arch);
        using var file = new TempDumpFile(s.Write(kind));
        var (dump, catalog) = Open(file);
        using var owner = dump;

        var modern = Resolve(dump, catalog, "pool_modern.sys", out var image);
        Assert.Equal(IatSource.DataDirectory, modern.Source);
        Assert.Empty(modern.Diagnostics);
        Assert.Equal(image.Imports.Imports.Select(i => $"ntoskrnl.exe!{i.Name}").Order(StringComparer.Ordinal), modern.Imports.Select(i => i.Key).Order(StringComparer.Ordinal));
        Assert.Equal(OracleImportNames(arch, "pool_modern.sys").Order(StringComparer.Ordinal), modern.Imports.Select(i => i.Name!).Order(StringComparer.Ordinal));

        var descriptors = Resolve(dump, catalog, "haldesc.sys", out _);
        Assert.Equal(IatSource.ImportDescriptors, descriptors.Source);
        Assert.Equal(ImportPe.IatRva, descriptors.IatRva);
        Assert.Empty(descriptors.Diagnostics);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void A_HAL_import_forwarded_to_ntoskrnl_is_reported_as_ntoskrnl(DumpArch arch, string kind)
    {
        var s = new FixtureDumpScenario(arch);
        using var file = new TempDumpFile(s.Write(kind));
        var (dump, catalog) = Open(file);
        using var owner = dump;
        var nt = OracleExports(arch, "ntoskrnl");
        var hal = OracleExports(arch, "hal");

        foreach (var name in new[] { "haluser.sys", "haldesc.sys", "halscan.sys" })
        {
            var iat = Resolve(dump, catalog, name, out _);
            Assert.Empty(iat.Diagnostics);
            Assert.Equal(["ntoskrnl.exe!KeGetCurrentIrql", "hal.dll!HalMakeBeep", "ntoskrnl.exe!ExAllocatePool2"], iat.Slots.Select(x => x.Display));
            var irql = iat.Slots[0];
            Assert.Equal(s.Kernel.Base + nt["KeGetCurrentIrql"], irql.Value);
            Assert.Equal(s.Hal.Base + hal["HalMakeBeep"], iat.Slots[1].Value);
            // Only where the descriptor survives can the report say the image asked HAL for it.
            Assert.Equal(name == "halscan.sys" ? null : "hal.dll", irql.DescriptorModule);
        }
        Assert.Equal(IatSource.PointerScan, Resolve(dump, catalog, "halscan.sys", out _).Source);
    }

    [Theory]
    [InlineData(DumpArch.X64)]
    [InlineData(DumpArch.X86Pae)]
    [InlineData(DumpArch.X86)]
    public void Unresolvable_slots_are_reported_with_their_RVA_and_value(DumpArch arch)
    {
        ulong junk = arch == DumpArch.X64 ? 0xFFFFF800DEAD0000 : 0xDEAD0000, inside = 0;
        uint slot0 = 0, slot1 = 0;
        var s = new FixtureDumpScenario(arch, sc =>
        {
            var image = LoaderSim.Open(sc.Guid);
            var slots = image.Imports.Imports.Select(i => i.SlotRva).Order().ToArray();
            (slot0, slot1) = (slots[0], slots[1]);
            inside = sc.Kernel.Base + 0x1001; // inside ntoskrnl, not an export
            LoaderSim.WriteSlot(sc.Writer, sc.Guid, slot0, junk);
            LoaderSim.WriteSlot(sc.Writer, sc.Guid, slot1, inside);
        });
        using var file = new TempDumpFile(s.Write("full"));
        var (dump, catalog) = Open(file);
        using var owner = dump;

        var iat = Resolve(dump, catalog, FixtureDumpScenario.GuidName, out _);

        Assert.Equal(2, iat.UnresolvedCount);
        Assert.Equal(2, iat.Imports.Count); // the two good slots still count
        var bad = iat.Slots.Where(x => !x.Resolved).ToList();
        Assert.Equal([(slot0, (ulong?)junk), (slot1, (ulong?)inside)], bad.Select(b => (b.Rva, b.Value)));
        var messages = iat.Diagnostics.Where(d => d.Code == DumpDiagnosticCodes.IatUnresolved).Select(d => d.Message).ToList();
        Assert.Equal(2, messages.Count);
        Assert.Contains(messages, m => m.Contains($"0x{slot0:x}") && m.Contains($"0x{junk:x}") && m.Contains("not inside any loaded module"));
        Assert.Contains(messages, m => m.Contains($"0x{slot1:x}") && m.Contains($"0x{inside:x}") && m.Contains("no export starts there"));
    }

    [Fact]
    public void A_slot_that_disagrees_with_its_descriptor_keeps_the_descriptor_name_and_is_reported()
    {
        var s = new FixtureDumpScenario(DumpArch.X64, sc =>
        {
            var import = LoaderSim.Open(sc.Modern).Imports.Imports.Single(i => i.Name == "ExAllocatePool2");
            var legacyVa = sc.Kernel.Base + OracleExports(DumpArch.X64, "ntoskrnl")["ExAllocatePool"];
            LoaderSim.WriteSlot(sc.Writer, sc.Modern, import.SlotRva, legacyVa); // hooked / rebound slot
        });
        using var file = new TempDumpFile(s.Write("bitmap"));
        var (dump, catalog) = Open(file);
        using var owner = dump;

        var iat = Resolve(dump, catalog, "pool_modern.sys", out _);

        Assert.Contains(iat.Imports, i => i.Key == "ntoskrnl.exe!ExAllocatePool2");
        Assert.DoesNotContain(iat.Imports, i => i.Key == "ntoskrnl.exe!ExAllocatePool");
        var d = Assert.Single(iat.Diagnostics);
        Assert.Equal(DumpDiagnosticCodes.IatMismatch, d.Code);
        Assert.Contains("ntoskrnl.exe!ExAllocatePool)", d.Message);
    }

    [Fact]
    public void Missing_export_table_pages_leave_slots_unresolved_not_errors()
    {
        var s = new FixtureDumpScenario(DumpArch.X64, sc =>
        {
            var edata = LoaderSim.Open(sc.Kernel).Sections.Single(x => x.Name == ".edata");
            sc.Writer.DropPhysical(sc.Writer.PfnOf(sc.Kernel.Base + edata.Rva));
        });
        using var file = new TempDumpFile(s.Write("bitmap"));
        var (dump, catalog) = Open(file);
        using var owner = dump;

        var iat = Resolve(dump, catalog, FixtureDumpScenario.GuidName, out _);

        Assert.Equal(4, iat.Slots.Count);
        Assert.All(iat.Slots, x => Assert.Contains("export table is not in the dump", x.Problem));
        Assert.Empty(iat.Imports);
        // The HAL import still resolves: hal's table is there, only the forward target's is not.
        Assert.Contains(Resolve(dump, catalog, "halscan.sys", out _).Slots, x => x.Display == "hal.dll!HalMakeBeep");
    }

    [Fact]
    public void Triage_dumps_have_no_images_to_resolve()
    {
        var s = new FixtureDumpScenario(DumpArch.X64);
        using var file = new TempDumpFile(s.Write("triage"));
        var (dump, catalog) = Open(file);
        using var owner = dump;

        Assert.False(dump.HasMemory);
        Assert.Equal(s.Writer.Modules.Select(m => m.Name), dump.Modules.Select(m => m.Name));
        Assert.False(PeImage.TryOpen(dump.OpenModuleImage(dump.Modules[2])).Success);
        Assert.Equal(AddressResolutionStatus.ExportsUnavailable, catalog.ResolveAddress(s.Kernel.Base + 0x1050).Status);
    }

    [Fact]
    public void A_module_that_imports_nothing_has_no_IAT_to_miss_but_a_wiped_IAT_is_reported()
    {
        // GuidNoDir: directory 12 cleared and INIT (descriptors) zeroed; wiping .idata too leaves nothing to find.
        var s = new FixtureDumpScenario(DumpArch.X64, sc => LoaderSim.ZeroSection(sc.Writer, sc.GuidNoDir, ".idata"));
        using var file = new TempDumpFile(s.Write("full"));
        var (dump, catalog) = Open(file);
        using var owner = dump;

        var kernel = Resolve(dump, catalog, "ntoskrnl.exe", out _); // the fixture kernel imports nothing
        Assert.Equal(IatSource.None, kernel.Source);
        Assert.Empty(kernel.Diagnostics);

        var wiped = Resolve(dump, catalog, FixtureDumpScenario.GuidNoDirName, out _);
        Assert.Equal(IatSource.None, wiped.Source);
        Assert.Contains(wiped.Diagnostics, d => d.Code == DumpDiagnosticCodes.IatNotFound);
    }
}

public sealed class IatCompletenessTests
{
    private static IatResolution Resolve(KernelDump dump, string name)
    {
        var module = dump.Modules.Single(m => m.Name == name);
        var image = PeImage.TryOpen(dump.OpenModuleImage(module)).Image ?? throw new InvalidOperationException("headers missing");
        return IatResolver.Resolve(image, module, new DumpExportCatalog(dump), dump.Machine == DumpMachine.X64);
    }

    [Theory]
    [InlineData(DumpArch.X64)]
    [InlineData(DumpArch.X86Pae)]
    public void An_IAT_of_zeros_is_a_diagnostic_not_zero_slots_in_silence(DumpArch arch)
    {
        var s = new FixtureDumpScenario(arch, sc =>
        {
            var dir = LoaderSim.Open(sc.Guid).IatDirectory;
            sc.Writer.ZeroRange(sc.Guid, dir.VirtualAddress, (int)dir.Size); // wiped after binding
        });
        using var file = new TempDumpFile(s.Write("full"));
        using var dump = DumpScenario.Open(file);

        var iat = Resolve(dump, FixtureDumpScenario.GuidName);
        Assert.Equal(IatSource.DataDirectory, iat.Source);
        Assert.Empty(iat.Slots);
        var d = Assert.Single(iat.Diagnostics);
        Assert.Equal(DumpDiagnosticCodes.IatZeroOnly, d.Code);
        Assert.Contains("holds only zeros", d.Message);
        // The intact modules say nothing of the kind.
        Assert.DoesNotContain(Resolve(dump, "pool_modern.sys").Diagnostics, x => x.Code is DumpDiagnosticCodes.IatZeroOnly or DumpDiagnosticCodes.IatShort);
    }

    [Fact]
    public void Fewer_resolving_slots_than_the_descriptors_name_is_a_diagnostic()
    {
        var s = new FixtureDumpScenario(DumpArch.X64, sc =>
        {
            var import = LoaderSim.Open(sc.HalUser).Imports.Imports.Single(i => i.Name == "HalMakeBeep");
            LoaderSim.WriteSlot(sc.Writer, sc.HalUser, import.SlotRva, 0); // one slot never bound
        });
        using var file = new TempDumpFile(s.Write("bitmap"));
        using var dump = DumpScenario.Open(file);

        var iat = Resolve(dump, "haluser.sys");
        var d = Assert.Single(iat.Diagnostics, x => x.Code == DumpDiagnosticCodes.IatShort);
        Assert.Contains("name 3 imports but only 2 IAT slots resolve", d.Message);
        Assert.DoesNotContain(Resolve(dump, "haldesc.sys").Diagnostics, x => x.Code == DumpDiagnosticCodes.IatShort);
    }
}
