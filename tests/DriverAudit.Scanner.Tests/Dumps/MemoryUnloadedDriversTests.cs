using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Cli;
using DriverAudit.Scanner.Dumps;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.RulePack;
using Xunit;

namespace DriverAudit.Scanner.Tests.Dumps;

/// <summary>Issue 13: MmUnloadedDrivers read through KDBG in dumps that hold memory, as the triage list is.</summary>
public sealed class MemoryUnloadedDriversTests
{
    private static readonly RuleSet Pack = RuleSet.Load(RuleSources.Embedded());
    private const string GuidDriver = "{0C1D2E3F-4A5B-4C6D-8E9F-A0B1C2D3E4F5}.sys";
    private static readonly DateTime First = new(2024, 4, 30, 8, 15, 0, DateTimeKind.Utc);
    private static readonly DateTime Second = new(2024, 5, 1, 11, 59, 30, DateTimeKind.Utc);

    private static DumpScenario Scenario(DumpArch arch)
    {
        var s = new DumpScenario(arch);
        s.Writer.KdbgModuleList = s.Writer.PsLoadedModuleList;
        var is64 = arch == DumpArch.X64;
        ulong K(ulong o) => (is64 ? 0xFFFFF80000000000 : 0x80000000) + o;
        s.Writer.MemoryUnloadedDrivers.Add(("dump_storport.sys", K(0x200_0000), K(0x201_8000), First));
        s.Writer.MemoryUnloadedDrivers.Add((GuidDriver, K(0x210_0000), K(0x210_6000), Second));
        return s;
    }

    private static KernelDump Open(byte[] bytes, out TempDumpFile file)
    {
        file = new TempDumpFile(bytes);
        return DumpScenario.Open(file);
    }

    public static TheoryData<DumpArch, string> Bodies => new()
    {
        { DumpArch.X64, "full" }, { DumpArch.X64, "bitmap" }, { DumpArch.X64, "range" },
        { DumpArch.X86Pae, "full" }, { DumpArch.X86, "bitmap" },
    };

    private static byte[] Write(DumpWriter w, string body) => body switch
    {
        "full" => w.WriteFull(),
        "bitmap" => w.WriteBitmap(),
        _ => w.WriteRange(8),
    };

    [Theory]
    [MemberData(nameof(Bodies))]
    public void The_kernels_list_is_read_with_full_names_and_times(DumpArch arch, string body)
    {
        var s = Scenario(arch);
        using var dump = Open(Write(s.Writer, body), out var file);
        using var _ = file;

        var expected = s.Writer.MemoryUnloadedDrivers.Select(u => new UnloadedDriver(u.Name, false, u.Start, u.End - u.Start, u.Time));
        Assert.Equal(expected, dump.UnloadedDrivers);
        Assert.DoesNotContain(dump.Diagnostics, d => d.Code == DumpDiagnosticCodes.UnloadedDrivers);
    }

    [Fact]
    public void Scan_reports_the_unloaded_guid_driver_as_triage_does()
    {
        var s = Scenario(DumpArch.X64);
        using var t = new TempDir();
        var path = t.File("MEMORY.DMP", s.Writer.WriteFull());
        var report = new InputAnalyzer(Pack, new ScanOptions(1, RuleLevel.Error, false, ComputeHashes: false)).Analyze(new InputFile(path, "MEMORY.DMP", Explicit: true));

        var unloaded = report.Artifacts.Where(a => a.Capture == "unloaded").ToList();
        Assert.Equal(["dump_storport.sys (unloaded)", $"{GuidDriver} (unloaded)"], unloaded.Select(a => a.ModuleName));
        Assert.Contains(unloaded[1].Findings, f => f.Rule.Id == "DA7001");
        Assert.DoesNotContain(unloaded[0].Findings, f => f.Rule.Id == "DA7001");
    }

    [Fact]
    public void Inspect_lists_them_with_their_unload_times()
    {
        var s = Scenario(DumpArch.X64);
        using var t = new TempDir();
        t.File("MEMORY.DMP", s.Writer.WriteBitmap());
        var text = CliRunner.Run(t.Path, "inspect", "MEMORY.DMP").Stdout;
        Assert.Contains("unloaded drivers (2):", text, StringComparison.Ordinal);
        Assert.Contains("2024-05-01 11:59:30Z", text, StringComparison.Ordinal);
        Assert.Contains(GuidDriver, text, StringComparison.Ordinal);
        var json = CliRunner.Run(t.Path, "inspect", "MEMORY.DMP", "--json").Stdout;
        Assert.Contains("\"unloadTime\":\"2024-04-30T08:15:00Z\"", json.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public void Without_a_readable_kdbg_there_is_no_list_and_no_complaint()
    {
        var s = Scenario(DumpArch.X64);
        s.Writer.KdbgEncoded = true; // Windows 8+ keeps the block encoded in memory
        using var dump = Open(s.Writer.WriteFull(), out var file);
        using var _ = file;
        Assert.Empty(dump.UnloadedDrivers);
        Assert.DoesNotContain(dump.Diagnostics, d => d.Code == DumpDiagnosticCodes.UnloadedDrivers);
    }

    [Fact]
    public void A_huge_count_is_capped_at_the_kernels_fifty()
    {
        var s = Scenario(DumpArch.X64);
        s.Writer.MemoryUnloadedCountOverride = 0x7FFF_FFFF;
        using var dump = Open(s.Writer.WriteFull(), out var file);
        using var _ = file;
        // The two real entries, then zeroed slots: skipped as implausible, each a diagnostic, at most 50 read.
        Assert.Equal(2, dump.UnloadedDrivers.Count);
        Assert.Contains(dump.Diagnostics, d => d.Code == DumpDiagnosticCodes.UnloadedDrivers && d.Message.Contains("at most 50", StringComparison.Ordinal));
        Assert.True(dump.Diagnostics.Count(d => d.Code == DumpDiagnosticCodes.UnloadedDrivers) <= 50);
    }

    [Fact]
    public void An_array_pointer_outside_the_dump_is_a_diagnostic()
    {
        var s = Scenario(DumpArch.X64);
        s.Writer.MemoryUnloadedArrayOverride = 0xFFFF_F800_7FFF_0000;
        using var dump = Open(s.Writer.WriteFull(), out var file);
        using var _ = file;
        Assert.Empty(dump.UnloadedDrivers);
        Assert.Contains(dump.Diagnostics, d => d.Code == DumpDiagnosticCodes.UnloadedDrivers && d.Message.Contains("not in the dump", StringComparison.Ordinal));
    }
}
