using System.Text.Json;
using DriverAudit.Scanner.Dumps;
using Xunit;

namespace DriverAudit.Scanner.Tests.Dumps;

/// <summary>x64 LA57 (5-level paging): detected without a header flag, in crash dumps and raw images (docs/crash-dumps.md §4).</summary>
public sealed class FiveLevelPagingTests
{
    /// <summary>A module only 57-bit addresses can hold (non-canonical with 4 levels).</summary>
    private const ulong HighBase = 0xFF80_0000_1000_0000;

    private static DumpWriter Scenario()
    {
        var w = RawImageTests.Scenario(DumpArch.X64, fiveLevel: true);
        w.AddModule(@"\SystemRoot\system32\drivers\high.sys", HighBase, MiniPe.Build(true, 0x5F3E1A07, 0x6007, new MiniSection(".text", 0x1000, MiniPe.Pattern(0x1000, 7))));
        return w;
    }

    private static void AssertExact(DumpWriter w, KernelDump dump)
    {
        Assert.Equal(w.Modules.Select(m => (m.FullPath, m.Base, m.Size)), dump.Modules.Select(m => (m.FullPath, m.Base, m.Size)));
        Assert.Empty(dump.Diagnostics);
        foreach (var m in w.Modules.Skip(1)) // every byte of every driver through the 5-level walk (ntoskrnl's .text holds the list head)
        {
            using var image = dump.OpenModuleImage(dump.Modules.Single(x => x.Base == m.Base));
            var bytes = new byte[image.Length];
            Assert.Equal(bytes.Length, image.Read(0, bytes));
            Assert.Equal(m.Loaded, bytes);
        }
    }

    private static KernelDump Open(TempDir dir, string name, byte[] bytes)
    {
        var result = KernelDump.TryOpen(dir.File(name, bytes));
        Assert.True(result.Success, result.Message);
        return result.Dump!;
    }

    [Theory]
    [InlineData("full")]
    [InlineData("bitmap")]
    [InlineData("range")]
    public void A_crash_dump_with_5_level_tables_is_read_with_5_levels(string body)
    {
        var w = Scenario();
        using var dir = new TempDir();
        using var dump = Open(dir, "MEMORY.DMP", body switch { "full" => w.WriteFull(), "bitmap" => w.WriteBitmap(), _ => w.WriteRange(8) });
        AssertExact(w, dump);
        Assert.Equal(["paging: 5-level (LA57): PsLoadedModuleList does not translate with 4 levels, it does with 5"], dump.LocatorNotes);
        Assert.True(dump.TryTranslate(HighBase + 0x1000, out var pa));
        Assert.Equal(w.Translate(HighBase + 0x1000), pa);
    }

    [Fact]
    public void A_4_level_dump_is_not_read_with_5_levels()
    {
        var w = RawImageTests.Scenario(DumpArch.X64);
        using var dir = new TempDir();
        using var dump = Open(dir, "MEMORY.DMP", w.WriteFull());
        Assert.Equal(4, dump.Modules.Count);
        Assert.Empty(dump.LocatorNotes);
        Assert.False(dump.TryTranslate(HighBase, out _)); // non-canonical with 4 levels
    }

    [Fact]
    public void An_unreadable_list_keeps_the_4_level_diagnostics_when_5_levels_do_not_help()
    {
        var bytes = Scenario().WriteFull();
        bytes.AsSpan(0x2000, 0x1000).Clear(); // the PML5 (PFN 0x10, the first page after the header): neither walk can start
        using var dir = new TempDir();
        using var dump = Open(dir, "MEMORY.DMP", bytes);
        Assert.Empty(dump.Modules);
        Assert.Empty(dump.LocatorNotes);
        Assert.Contains(dump.Diagnostics, d => d.Code == DumpDiagnosticCodes.ModuleListHead);
    }

    [Theory]
    [InlineData(0x100)]
    [InlineData(0x1ED)]
    [InlineData(0x1FE)]
    public void A_raw_image_with_a_self_referencing_PML5_is_read(int selfMap)
    {
        var w = Scenario();
        using var dir = new TempDir();
        using var dump = Open(dir, "memory.raw", w.WriteRaw(selfMap));
        AssertExact(w, dump);
        Assert.Equal($"page-table root: self-referencing PML5 (5-level paging, LA57) at physical 0x10000, index 0x{selfMap:X}", dump.LocatorNotes[0]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_vmem_is_read_with_the_saved_CR3_and_CR4_LA57(bool cr4Saved)
    {
        var w = Scenario();
        using var dir = new TempDir();
        // CR4 with LA57 (bit 12) and PAE: only the 5-level reading is tried; without a saved CR4 both are.
        dir.File("vm.vmss", w.WriteVmss(cr4: cr4Saved ? 0x3516F8UL : null));
        using var dump = Open(dir, "vm.vmem", w.WriteRaw(selfMap: false));
        Assert.Equal(w.Modules.Count, dump.Modules.Count);
        Assert.Equal($"page-table root: CR3 0x{w.DirectoryTableBase:X} of vCPU 0 in VMware saved state 'vm.vmss', read with 5-level paging (LA57)", dump.LocatorNotes[0]);
    }

    [Fact]
    public void A_saved_CR4_without_LA57_is_believed()
    {
        var w = Scenario();
        using var dir = new TempDir();
        dir.File("vm.vmss", w.WriteVmss(cr4: 0x3506F8)); // PAE, no LA57: the 4-level reading only, which fails
        var result = KernelDump.TryOpen(dir.File("vm.vmem", w.WriteRaw(selfMap: false)));
        Assert.Equal(DumpOpenError.NoKernelFound, result.Error);
        Assert.DoesNotContain("5-level", result.Message);
    }

    [Fact]
    public void A_5_level_dump_scans_like_the_4_level_dump_of_the_same_machine()
    {
        using var dir = new TempDir();
        dir.File("four.dmp", RawImageTests.Scenario(DumpArch.X64).WriteFull());
        dir.File("five.dmp", RawImageTests.Scenario(DumpArch.X64, fiveLevel: true).WriteFull());
        dir.File("five.raw", RawImageTests.Scenario(DumpArch.X64, fiveLevel: true).WriteRaw(0x1C4));
        var four = CliRunner.ScanResultsByModule(dir.Path, "four.dmp");
        Assert.Contains("DA7001 " + FixtureDumpScenario.GuidName, four);
        Assert.Equal(four, CliRunner.ScanResultsByModule(dir.Path, "five.dmp"));
        Assert.Equal(four, CliRunner.ScanResultsByModule(dir.Path, "five.raw"));
    }
}
