using System.Text.Json;
using DriverAudit.Scanner.Dumps;
using Xunit;

namespace DriverAudit.Scanner.Tests.Dumps;

/// <summary>Raw images name no KdDebuggerDataBlock: the KDBG is searched for in ntoskrnl's data, so MmUnloadedDrivers is read (docs/crash-dumps.md §6).</summary>
public sealed class RawImageKdbgTests
{
    private const string GuidDriver = "{0C1D2E3F-4A5B-4C6D-8E9F-A0B1C2D3E4F5}.sys";
    private static readonly DateTime First = new(2024, 4, 30, 8, 15, 0, DateTimeKind.Utc);
    private static readonly DateTime Second = new(2024, 5, 1, 11, 59, 30, DateTimeKind.Utc);

    /// <summary>RawImageTests' machine with a 4 KiB ntoskrnl .data (RVA 0x1000: the list head at +0, the KDBG at +0x800) and two unloaded drivers.</summary>
    private static DumpWriter Scenario(DumpArch arch, bool encoded = false)
    {
        var w = RawImageTests.Scenario(arch, dataSize: 0x1000);
        var k = w.Modules[0];
        w.KdbgModuleList = w.PsLoadedModuleList;
        w.KdbgAt = k.Base + 0x1800;
        w.KdbgEncoded = encoded;
        ulong K(ulong o) => (arch == DumpArch.X64 ? 0xFFFFF80000000000 : 0x80000000) + o;
        w.MemoryUnloadedDrivers.Add(("dump_storport.sys", K(0x200_0000), K(0x201_8000), First));
        w.MemoryUnloadedDrivers.Add((GuidDriver, K(0x210_0000), K(0x210_6000), Second));
        return w;
    }

    private static KernelDump Open(TempDir dir, string name, byte[] bytes)
    {
        var result = KernelDump.TryOpen(dir.File(name, bytes));
        Assert.True(result.Success, result.Message);
        return result.Dump!;
    }

    [Theory]
    [InlineData(DumpArch.X64)]
    [InlineData(DumpArch.X86Pae)]
    [InlineData(DumpArch.X86)]
    public void The_KDBG_is_found_in_ntoskrnl_data_and_the_unloaded_list_read(DumpArch arch)
    {
        var w = Scenario(arch);
        using var dir = new TempDir();
        using var dump = Open(dir, "memory.raw", w.WriteRaw());
        Assert.Equal(w.MemoryUnloadedDrivers.Select(u => new UnloadedDriver(u.Name, false, u.Start, u.End - u.Start, u.Time)), dump.UnloadedDrivers);
        Assert.Empty(dump.Diagnostics);
        Assert.Contains($"KDBG at 0x{w.KdbgAt:X} in ntoskrnl's .data (found by search: tag 'KDBG', KernBase = ntoskrnl)", dump.LocatorNotes);
    }

    [Fact]
    public void An_encoded_KDBG_means_no_list_and_says_how_much_was_searched()
    {
        using var dir = new TempDir();
        using var dump = Open(dir, "memory.raw", Scenario(DumpArch.X64, encoded: true).WriteRaw());
        Assert.Empty(dump.UnloadedDrivers);
        Assert.Empty(dump.Diagnostics);
        Assert.Contains("KDBG: none decoded in ntoskrnl's writable data sections (4 KiB searched; Windows 8 and later keep it encoded), so unloaded drivers are not listed", dump.LocatorNotes);
    }

    [Fact]
    public void A_KDBG_tag_naming_another_kernel_base_is_passed_over()
    {
        var w = Scenario(DumpArch.X64);
        var decoy = new byte[0x20];
        BitConverter.GetBytes(0x4742444Bu).CopyTo(decoy, 0x10);
        BitConverter.GetBytes(0x380u).CopyTo(decoy, 0x14);
        BitConverter.GetBytes(0xFFFFF80012340000UL).CopyTo(decoy, 0x18);
        var image = w.WriteRaw();
        var pa = (int)w.Translate(w.Modules[0].Base + 0x1400);
        decoy.CopyTo(image, pa);
        using var dir = new TempDir();
        using var dump = Open(dir, "memory.raw", image);
        Assert.Equal(2, dump.UnloadedDrivers.Count);
        Assert.Contains($"KDBG at 0x{w.KdbgAt:X} in ntoskrnl's .data (found by search: tag 'KDBG', KernBase = ntoskrnl)", dump.LocatorNotes);
    }

    [Fact]
    public void A_raw_image_reports_the_unloaded_drivers_a_complete_dump_of_the_same_machine_does()
    {
        var w = Scenario(DumpArch.X64);
        using var dir = new TempDir();
        dir.File("memory.raw", w.WriteRaw());
        dir.File("full.dmp", w.WriteFull());
        var raw = CliRunner.ScanResultsByModule(dir.Path, "memory.raw");
        Assert.Equal(CliRunner.ScanResultsByModule(dir.Path, "full.dmp"), raw);
        Assert.Contains($"DA7001 {GuidDriver} (unloaded)", raw);
    }
}
