using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;
using static DriverAudit.Rules.Tests.FakeFacts;

namespace DriverAudit.Rules.Tests;

public class AnchorTests
{
    private static readonly FakeFacts Driver = new(
        imports:
        [
            Import("ntoskrnl.exe", "ExAllocatePoolWithTag"),
            Import("NTOSKRNL.EXE", "ExAllocatePool"),
            Import("ntoskrnl.exe", "ExAllocatePoolWithQuota"),
            ImportByOrdinal("HAL.dll", 12),
        ],
        sections:
        [
            Section(0, ".text", 0x1000, Text),
            Section(1, "RWX", 0x2000, Rwx),
            Section(2, ".data", 0x3000, Data),
            Section(3, "RWX", 0x4000, Rwx),
        ],
        exports: [new ExportFact("DriverEntry", 1, 0x1000, null), new ExportFact(null, 5, 0x1010, null)],
        characteristics: new Dictionary<string, bool?> { [Characteristics.Signed] = false, [Characteristics.Cfg] = false });

    private static IReadOnlyList<RuleMatch> Run(string match, string message = "{artifact} matched {value}.", string extra = "") =>
        RuleText.LoadOne(match, message, extra).Evaluate(Driver);

    [Fact]
    public void One_finding_per_matching_import_ordered_by_key()
    {
        var matches = Run("import: ExAllocatePool*", "{artifact} imports {import} from {module}.");
        Assert.Equal(["ntoskrnl.exe!ExAllocatePool", "ntoskrnl.exe!ExAllocatePoolWithQuota", "ntoskrnl.exe!ExAllocatePoolWithTag"],
            matches.Select(m => m.Anchor.Key));
        Assert.All(matches, m => Assert.Equal(AnchorKind.Import, m.Anchor.Kind));
        Assert.Equal("drivers/test.sys imports ExAllocatePool from NTOSKRNL.EXE.", matches[0].Message);
    }

    [Fact]
    public void Import_by_ordinal_anchor()
    {
        var m = Assert.Single(Run("import: hal!#12", "{artifact} imports {import} from {module} ({value})."));
        Assert.Equal("hal.dll!#12", m.Anchor.Key);
        Assert.Equal("drivers/test.sys imports #12 from HAL.dll (hal.dll!#12).", m.Message);
    }

    [Fact]
    public void Section_anchor_counts_same_named_sections()
    {
        var matches = Run("section: {writable: true, executable: true}", "{artifact} has a writable, executable section {section}.");
        Assert.Equal(["RWX#0", "RWX#1"], matches.Select(m => m.Anchor.Key));
        Assert.All(matches, m => Assert.Equal(AnchorKind.Section, m.Anchor.Kind));
        Assert.Equal("drivers/test.sys has a writable, executable section RWX.", matches[0].Message);
    }

    [Fact]
    public void Export_anchor_uses_name_or_ordinal()
    {
        var matches = Run("any: [{export: DriverEntry}, {export: \"#5\"}]", "{artifact} exports {export}.");
        Assert.Equal(["#5", "DriverEntry"], matches.Select(m => m.Anchor.Key));
        Assert.Equal("drivers/test.sys exports #5.", matches[0].Message);
    }

    [Fact]
    public void Image_wide_features_yield_one_image_anchor()
    {
        var m = Assert.Single(Run("all: [{not: {characteristic: signed}}, {header: {machine: x64}}]", "{artifact} is unsigned."));
        Assert.Equal((AnchorKind.Image, "image"), (m.Anchor.Kind, m.Anchor.Key));
        Assert.Equal("drivers/test.sys is unsigned.", m.Message);
    }

    [Fact]
    public void All_takes_the_evidence_of_its_first_child_with_evidence_not_the_product()
    {
        // The header child comes first and has no item evidence; the imports are the primary anchor,
        // and the section child only qualifies the match (no import x section product).
        var matches = Run("all: [{header: {machine: x64}}, {import: \"ExAllocatePoolWith*\"}, {section: {writable: true, executable: true}}]");
        Assert.Equal(["ntoskrnl.exe!ExAllocatePoolWithQuota", "ntoskrnl.exe!ExAllocatePoolWithTag"], matches.Select(m => m.Anchor.Key));
    }

    [Fact]
    public void All_primary_anchor_follows_source_order_not_evaluation_order()
    {
        var matches = Run("all: [{section: {writable: true, executable: true}}, {import: ExAllocatePool}]");
        Assert.Equal(["RWX#0", "RWX#1"], matches.Select(m => m.Anchor.Key));
    }

    [Fact]
    public void Any_takes_the_union_and_dedupes_by_key()
    {
        var matches = Run("any: [{import: ExAllocatePool}, {import: \"ExAllocatePool*\"}, {section: RWX}, {characteristic: signed}]");
        Assert.Equal(
            ["RWX#0", "RWX#1", "ntoskrnl.exe!ExAllocatePool", "ntoskrnl.exe!ExAllocatePoolWithQuota", "ntoskrnl.exe!ExAllocatePoolWithTag"],
            matches.Select(m => m.Anchor.Key));
    }

    [Fact]
    public void Not_contributes_no_evidence()
    {
        var matches = Run("all: [{not: {import: ExFreePool}}, {import: ExAllocatePool}]");
        Assert.Equal(["ntoskrnl.exe!ExAllocatePool"], matches.Select(m => m.Anchor.Key));
    }

    [Fact]
    public void Count_contributes_every_counted_item()
    {
        var matches = Run("count: {of: {import: \"Ex*\"}, min: 2}");
        Assert.Equal(3, matches.Count);
    }

    [Fact]
    public void Per_image_report_collapses_to_one_image_anchor()
    {
        var m = Assert.Single(Run("import: ExAllocatePool*", "{artifact} uses legacy pool APIs.", "report: per-image"));
        Assert.Equal((AnchorKind.Image, "image"), (m.Anchor.Kind, m.Anchor.Key));
        Assert.Equal(RuleReport.PerImage, m.Rule.Report);
    }

    [Fact]
    public void Placeholders_escape_braces_and_value_of_image_anchor_is_the_artifact()
    {
        var m = Assert.Single(Run("not: {characteristic: cfg}", "{{cfg}} is off in {value}."));
        Assert.Equal("{cfg} is off in drivers/test.sys.", m.Message);
    }

    [Fact]
    public void Matches_are_ordered_by_rule_id_then_key()
    {
        var set = RuleText.Load(
            RuleText.Make("import: \"ExAllocatePool*\"", id: "TST002", name: "Second"),
            RuleText.Make("section: RWX", id: "TST001", name: "First"));
        var matches = set.Evaluate(Driver);
        Assert.Equal(
            ["TST001 RWX#0", "TST001 RWX#1", "TST002 ntoskrnl.exe!ExAllocatePool", "TST002 ntoskrnl.exe!ExAllocatePoolWithQuota", "TST002 ntoskrnl.exe!ExAllocatePoolWithTag"],
            matches.Select(m => $"{m.Rule.Id} {m.Anchor.Key}"));
        Assert.Equal(["TST001", "TST002"], set.Rules.Select(r => r.Id));
    }

    [Fact]
    public void No_match_yields_an_empty_list()
    {
        Assert.Empty(Run("import: MmMapIoSpace"));
    }
}
