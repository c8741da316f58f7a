using DriverAudit.Scanner.Dumps;
using Xunit;

namespace DriverAudit.Scanner.Tests.Dumps;

/// <summary>
/// Issue 16: counting a module's missing pages costs what the dump holds, not the size the module claims. Cost is
/// measured as page-table entries read (KernelDump.PageTableReads), never as time.
/// </summary>
public sealed class ClaimedSizeCostTests
{
    private const uint OneGiB = 0x4000_0000;
    private const int OneGiBPages = (int)(OneGiB / 0x1000);

    public static TheoryData<DumpArch, bool> ArchAndBody => new()
    {
        { DumpArch.X64, false }, { DumpArch.X64, true },
        { DumpArch.X86Pae, false }, { DumpArch.X86Pae, true },
        { DumpArch.X86, false }, { DumpArch.X86, true },
    };

    private static KernelDump Open(DumpScenario s, bool bitmap, out TempDumpFile file)
    {
        file = new TempDumpFile(bitmap ? s.Writer.WriteBitmap() : s.Writer.WriteFull());
        return DumpScenario.Open(file);
    }

    [Theory]
    [MemberData(nameof(ArchAndBody))]
    public void A_module_claiming_one_gibibyte_costs_the_tables_not_the_claim(DumpArch arch, bool bitmap)
    {
        var s = new DumpScenario(arch);
        s.Driver.ListedSize = OneGiB;
        using var dump = Open(s, bitmap, out var file);
        using var _ = file;
        var driver = dump.Modules.Single(m => m.Name == s.Driver.Name);
        Assert.Equal(OneGiB, driver.Size);

        var source = dump.OpenModuleImage(driver);
        var before = dump.PageTableReads;
        var missing = source.CountMissingPages();
        var reads = dump.PageTableReads - before;

        Assert.Equal(OneGiBPages, source.PageCount);
        // Page tables walked once each: a few thousand entry reads, where one walk per claimed page reads ≥ 262,144.
        Assert.InRange(reads, 1, 8_192);
        // What the dump holds in the claimed range: the driver's own pages, the large page's two stored pages and
        // (x86, where the gigabyte reaches the writer's data area) the module-list pages, each read page by page.
        var dataPages = 0;
        for (var va = s.Writer.DataBase; va < s.Writer.DataBase + 0x10000; va += 0x1000)
            if (driver.Contains(va) && dump.ReadVirtual(va, new byte[1]) == 1) dataPages++;
        Assert.Equal(arch == DumpArch.X64 ? 0 : 1, dataPages == 0 ? 0 : 1);
        Assert.Equal((int)(s.Driver.Size / 0x1000) + 2 + dataPages, OneGiBPages - missing);
    }

    [Fact]
    public void Page_tables_that_alias_one_table_are_counted_once_each()
    {
        var s = new DumpScenario(DumpArch.X64);
        s.Driver.ListedSize = OneGiB;
        // Hostile: every free page-directory entry after the driver's points at the driver's page table, so the
        // claimed gigabyte maps the driver's pages 500 times over.
        var pde = s.Writer.Entry(s.Driver.Base, 2);
        var aliased = 0;
        for (var va = s.Driver.Base + 0x20_0000; va < s.LargeVa; va += 0x20_0000)
            if ((s.Writer.Entry(va, 2) & 1) == 0) { s.Writer.SetEntry(va, 2, pde); aliased++; }
        Assert.True(aliased > 400);
        using var dump = Open(s, bitmap: true, out var file);
        using var _ = file;
        var source = dump.OpenModuleImage(dump.Modules.Single(m => m.Name == s.Driver.Name));

        var before = dump.PageTableReads;
        var missing = source.CountMissingPages();
        var reads = dump.PageTableReads - before;

        Assert.InRange(reads, 1, 8_192);
        Assert.Equal((aliased + 1) * (int)(s.Driver.Size / 0x1000) + 2, OneGiBPages - missing);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_one_gibibyte_page_is_counted_from_the_physical_map(bool bitmap)
    {
        var s = new DumpScenario(DumpArch.X64);
        using var dump = Open(s, bitmap, out var file);
        using var _ = file;

        var before = dump.PageTableReads;
        Assert.Equal(1, dump.CountHeldPages(s.HugeVa, OneGiBPages)); // one page of the 1 GiB page was stored
        Assert.InRange(dump.PageTableReads - before, 1, 16);
        Assert.Equal(2, dump.CountHeldPages(s.LargeVa, (int)(s.LargeSize / 0x1000)));
        Assert.Equal(1, dump.CountHeldPages(s.HugeVa + DumpScenario.HugeOffset, 1));
        Assert.Equal(0, dump.CountHeldPages(s.HugeVa, (int)(DumpScenario.HugeOffset / 0x1000)));
    }

    [Theory]
    [MemberData(nameof(ArchAndBody))]
    public void Counts_agree_with_page_by_page_translation_on_any_range(DumpArch arch, bool bitmap)
    {
        var s = new DumpScenario(arch);
        s.Writer.MakeTransition(s.Kernel.Base + 0x3000);
        s.Writer.MakePrototype(s.Kernel.Base + 0x2000);
        s.Writer.DropPhysical(s.Writer.PfnOf(s.Hal.Base + 0x1000));
        using var dump = Open(s, bitmap, out var file);
        using var _ = file;
        var random = new Random(1613);
        var start = s.Kernel.Base - 0x40_0000;
        var one = new byte[1];
        for (var i = 0; i < 60; i++)
        {
            var va = start + (ulong)random.Next(0, 0x2000) * 0x1000;
            var pages = random.Next(1, 0x800);
            long expected = 0;
            for (var p = 0; p < pages; p++)
                if (dump.ReadVirtual(va + (ulong)p * 0x1000, one) == 1) expected++;
            Assert.Equal(expected, dump.CountHeldPages(va, pages));
        }
    }

    [Fact]
    public void Inspect_of_a_dump_whose_modules_claim_one_gibibyte_lists_them_with_exact_counts()
    {
        var s = new DumpScenario(DumpArch.X64);
        foreach (var m in s.Writer.Modules) m.ListedSize = OneGiB;
        using var dir = new TempDir();
        File.WriteAllBytes(Path.Combine(dir.Path, "huge.dmp"), s.Writer.WriteBitmap());

        var outcome = CliRunner.Run(dir.Path, "inspect", "huge.dmp");

        Assert.Equal(0, outcome.ExitCode);
        var driverLine = outcome.Stdout.Split('\n').Single(l => l.Contains(s.Driver.Name, StringComparison.Ordinal) && l.Contains("0x40000000", StringComparison.Ordinal));
        var held = (int)(s.Driver.Size / 0x1000) + 2;
        Assert.Contains($" {OneGiBPages - held}/{OneGiBPages} ", driverLine, StringComparison.Ordinal);
    }
}
