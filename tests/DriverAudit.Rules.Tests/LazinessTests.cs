using DriverAudit.Rules.Facts;
using static DriverAudit.Rules.Tests.FakeFacts;

namespace DriverAudit.Rules.Tests;

/// <summary>The engine reads only the facts a rule needs, cheapest first, and DisplayName only for findings.</summary>
public class LazinessTests
{
    private static FakeFacts NewFacts() => new(
        imports: [Import("ntoskrnl.exe", "ExAllocatePool")],
        sections: [Section(0, ".text", 0x1000, Text)],
        exports: [new ExportFact("DriverEntry", 1, 0x1000, null)],
        characteristics: new Dictionary<string, bool?> { [Characteristics.Signed] = false });

    [Fact]
    public void Import_only_rule_reads_only_imports()
    {
        var facts = NewFacts();
        Assert.Empty(RuleText.LoadOne("import: ExFreePool").Evaluate(facts));
        Assert.Equal((1, 0, 0, 0, 0, 0), (facts.ImportReads, facts.SectionReads, facts.ExportReads, facts.HeaderReads, facts.CharacteristicReads, facts.DisplayNameReads));
    }

    [Fact]
    public void Display_name_is_read_once_per_image_when_there_are_findings()
    {
        var facts = NewFacts();
        var set = RuleText.Load(
            RuleText.Make("import: ExAllocatePool", id: "TST001", name: "One"),
            RuleText.Make("section: .text", id: "TST002", name: "Two"));
        Assert.Equal(2, set.Evaluate(facts).Count);
        Assert.Equal(1, facts.DisplayNameReads);
    }

    [Fact]
    public void All_tests_cheap_features_first_and_stops_at_the_first_false()
    {
        var facts = NewFacts();
        // Written expensive-first; the characteristic (false: the image is not signed) is tested first.
        // The one import read is the rule set's index pass (the rule requires ExAllocatePool, which is imported).
        var set = RuleText.LoadOne("all: [{section: .text}, {export: DriverEntry}, {import: ExAllocatePool}, {characteristic: signed}]");
        Assert.Empty(set.Evaluate(facts));
        Assert.Equal((1, 1, 0, 0), (facts.CharacteristicReads, facts.ImportReads, facts.SectionReads, facts.ExportReads));
    }

    [Fact]
    public void Any_tests_imports_before_sections_and_stops_at_the_first_true()
    {
        var facts = NewFacts();
        var set = RuleText.LoadOne("any: [{section: {writable: true}}, {import: ExAllocatePool}]");
        // Test phase: imports only. Collect phase re-reads the true child, and tests the section child.
        Assert.Single(set.Evaluate(facts));
        Assert.Equal(0, facts.HeaderReads);
        Assert.Equal(0, facts.ExportReads);

        var cheap = NewFacts();
        var miss = RuleText.LoadOne("any: [{section: {writable: true}}, {header: {machine: x86}}, {import: ExFreePool}]");
        Assert.Empty(miss.Evaluate(cheap));
        Assert.Equal((1, 1, 1), (cheap.HeaderReads, cheap.ImportReads, cheap.SectionReads));
    }

    [Fact]
    public void Header_rule_reads_only_the_header()
    {
        var facts = NewFacts();
        Assert.Single(RuleText.LoadOne("header: {machine: x64, dll-characteristics: {has: NX_COMPAT}}").Evaluate(facts));
        Assert.Equal((1, 0, 0, 0, 0), (facts.HeaderReads, facts.ImportReads, facts.SectionReads, facts.ExportReads, facts.CharacteristicReads));
    }

    [Fact]
    public void Evaluating_without_findings_allocates_only_the_per_image_context()
    {
        var facts = new FakeFacts(
            imports: Enumerable.Range(0, 200).Select(i => Import("ntoskrnl.exe", "Fn" + i)),
            sections: Enumerable.Range(0, 20).Select(i => Section(i, ".s" + i, (uint)(i + 1) * 0x1000, Text)),
            characteristics: new Dictionary<string, bool?> { [Characteristics.Signed] = true });
        var set = RuleText.Load(
            RuleText.Make("any: [{import: \"Ex*\"}, {import: /^Zw(Read|Write)/}, {import: \"hal!#12\"}]", id: "TST001", name: "One"),
            RuleText.Make("all: [{section: {writable: true}}, {not: {characteristic: signed}}]", id: "TST002", name: "Two"),
            RuleText.Make("count: {of: {import: \"Fn1*\"}, min: 500}", id: "TST003", name: "Three"));
        Assert.Empty(set.Evaluate(facts)); // warm up (regex engine state, JIT)

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++) set.Evaluate(facts);
        long perImage = (GC.GetAllocatedBytesForCurrentThread() - before) / 100;
        Assert.InRange(perImage, 0, 256);
    }

    [Fact]
    public void Evaluation_is_thread_safe_and_deterministic()
    {
        var set = RuleText.Load(
            RuleText.Make("import: ExAllocatePool", id: "TST001", name: "One"),
            RuleText.Make("all: [{rule: TST001}, {not: {characteristic: signed}}]", id: "TST002", name: "Two"),
            RuleText.Make("section: \".t*\"", id: "TST003", name: "Three"));
        var expected = string.Join("|", set.Evaluate(NewFacts()).Select(m => $"{m.Rule.Id}:{m.Anchor.Key}:{m.Message}"));
        var results = new string[64];
        Parallel.For(0, results.Length, i =>
            results[i] = string.Join("|", set.Evaluate(NewFacts()).Select(m => $"{m.Rule.Id}:{m.Anchor.Key}:{m.Message}")));
        Assert.Equal(3, expected.Split('|').Length);
        Assert.All(results, r => Assert.Equal(expected, r));
    }
}
