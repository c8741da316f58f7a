using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Cli;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.RulePack;
using Xunit;

namespace DriverAudit.Scanner.Tests.Code;

/// <summary>
/// The failure classes found on real drivers (issue 10), each reproduced by a mingw fixture, through the whole
/// analyzer with the default pack. Every one of these fixtures gave wrong results before function-bounded
/// code analysis, strings from code sections, /GS from code and packed detection (see tests/fixtures/README.md).
/// </summary>
public class RealDriverClassTests
{
    private static readonly RuleSet Pack = RuleSet.Load(RuleSources.Embedded());
    private static readonly string[] Judged = ["DA3002", "DA3003", "DA3004", "DA3005", "DA3008", "DA4001", "DA4002", "DA5003"];

    private static (string[] Findings, string[] NotEvaluated, string[] Messages) Scan(string arch, string name)
    {
        var analyzer = new InputAnalyzer(Pack, new ScanOptions(1, RuleLevel.Error, false, ComputeHashes: false));
        var report = analyzer.Analyze(new InputFile(RepoPaths.Fixture(arch, name), $"{arch}/{name}", Explicit: true));
        var artifact = Assert.Single(report.Artifacts);
        Assert.True(artifact.Analyzed);
        var judged = artifact.Findings.Where(f => Judged.Contains(f.Rule.Id)).ToList();
        return (
            [.. judged.Select(f => $"{f.Rule.Id} {f.Anchor.Key}")],
            [.. artifact.Notifications.Where(n => n.Code == NotificationCodes.RuleNotEvaluated).Select(n => n.RuleId!)],
            [.. judged.Select(f => f.Message)]);
    }

    [Theory]
    [InlineData("x64")]
    [InlineData("x86")]
    public void Strings_merged_into_code_are_found_and_the_used_sddl_judged(string arch)
    {
        var (findings, notEvaluated, _) = Scan(arch, "strings_in_code.sys");
        Assert.Equal(["DA3002 \\Device\\PhysicalMemory#utf16", "DA4002 D:P(A;;GA;;;WD)#utf16", "DA5003 image"], findings);
        Assert.Empty(notEvaluated);
    }

    [Theory]
    [InlineData("x64")]
    [InlineData("x86")]
    public void A_linked_in_sddl_table_is_not_the_sddl_the_driver_uses(string arch)
    {
        // Before: three DA4002 findings (the table's world-accessible entries).
        var (findings, _, _) = Scan(arch, "wdmsec_table.sys");
        Assert.Equal(["DA5003 image"], findings);
    }

    [Theory]
    [InlineData("x64")]
    [InlineData("x86")]
    public void Port_io_opcodes_inside_import_data_in_code_are_not_instructions(string arch)
    {
        // Before: three DA3004 findings from the hint/name table in INIT.
        var (findings, notEvaluated, _) = Scan(arch, "imports_in_code.sys");
        Assert.Equal(["DA5003 image"], findings);
        Assert.Empty(notEvaluated);
    }

    [Fact]
    public void Port_io_behind_jump_tables_is_found_once_per_function_with_a_count_x64()
    {
        var (findings, _, messages) = Scan("x64", "jump_table.sys");
        Assert.Equal(["DA3004 in@fn_0x1000#0", "DA5003 image"], findings);
        Assert.Equal("x64/jump_table.sys executes in 5 time(s) in the function at 0x1000 (first at 0x1030); check that no request chooses the port.", messages[0]);
    }

    [Fact]
    public void Port_io_behind_jump_tables_is_found_once_per_function_with_a_count_x86()
    {
        // AsmSwitch (0x1000): MSVC-shaped table inside .text, cases reachable only through it; PortSwitch (0x1040): GCC's.
        var (findings, _, messages) = Scan("x86", "jump_table.sys");
        Assert.Equal(["DA3004 in@fn_0x1000#0", "DA3004 in@fn_0x1040#0", "DA3004 out@fn_0x1000#0", "DA5003 image"], findings);
        Assert.Contains("executes in 2 time(s) in the function at 0x1000", messages[0]);
        Assert.Contains("executes in 5 time(s) in the function at 0x1040", messages[1]);
    }

    [Theory]
    [InlineData("x64")]
    [InlineData("x86")]
    public void A_gs_cookie_read_by_code_is_a_stack_cookie_without_load_config(string arch)
    {
        var (findings, _, _) = Scan(arch, "gs_cookie.sys");
        Assert.Empty(findings);
    }

    [Theory]
    [InlineData("x64")]
    [InlineData("x86")]
    public void Packed_code_is_named_and_code_rules_say_not_evaluated(string arch)
    {
        // Before: over 200 DA3004 findings decoded from random bytes.
        var (findings, notEvaluated, _) = Scan(arch, "packed.sys");
        Assert.Equal(["DA3008 image", "DA5003 image"], findings);
        Assert.Equal(["DA3003", "DA3004", "DA3005", "DA4002"], notEvaluated);
    }

    [Theory]
    [InlineData("x64")]
    [InlineData("x86")]
    public void Unpacked_fixtures_are_not_packed(string arch)
    {
        foreach (var f in Directory.EnumerateFiles(Path.Combine(RepoPaths.Fixtures, "bin", arch), "*.sys"))
        {
            if (Path.GetFileName(f) is "packed.sys" or "not_a_pe.sys" or "truncated_headers.sys" or "truncated_imports.sys") continue;
            var (findings, notEvaluated, _) = Scan(arch, Path.GetFileName(f));
            Assert.DoesNotContain("DA3008 image", findings);
            Assert.Empty(notEvaluated);
        }
    }
}
