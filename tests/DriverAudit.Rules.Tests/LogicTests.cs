using DriverAudit.Rules.Facts;
using static DriverAudit.Rules.Tests.FakeFacts;

namespace DriverAudit.Rules.Tests;

public class LogicTests
{
    /// <summary>signed = true, cfg = false, has-stack-cookie unknown.</summary>
    private static readonly FakeFacts Facts = new(
        imports: [Import("ntoskrnl.exe", "ZwOpenSection"), Import("ntoskrnl.exe", "ZwMapViewOfSection"), Import("ntoskrnl.exe", "ZwClose")],
        characteristics: new Dictionary<string, bool?> { [Characteristics.Signed] = true, [Characteristics.Cfg] = false });

    private const string T = "{characteristic: signed}", F = "{characteristic: cfg}", U = "{characteristic: has-stack-cookie}";

    [Theory]
    [InlineData($"all: [{T}, {T}]", true)]
    [InlineData($"all: [{T}, {F}]", false)]
    [InlineData($"all: [{T}, {U}]", false)]
    [InlineData($"not: {{all: [{T}, {U}]}}", false)] // unknown, negated: still unknown
    [InlineData($"not: {{all: [{F}, {U}]}}", true)]  // false wins over unknown in all
    [InlineData($"any: [{F}, {T}]", true)]
    [InlineData($"any: [{F}, {F}]", false)]
    [InlineData($"not: {{any: [{F}, {U}]}}", false)]
    [InlineData($"any: [{U}, {T}]", true)] // true wins over unknown in any
    [InlineData($"not: {T}", false)]
    [InlineData($"not: {F}", true)]
    [InlineData($"at-least: {{n: 2, of: [{T}, {F}, {T}]}}", true)]
    [InlineData($"at-least: {{n: 2, of: [{T}, {F}, {F}]}}", false)]
    [InlineData($"at-least: {{n: 2, of: [{T}, {U}, {F}]}}", false)]
    [InlineData($"not: {{at-least: {{n: 2, of: [{T}, {U}, {F}]}}}}", false)] // unknown: one more could make it
    [InlineData($"not: {{at-least: {{n: 2, of: [{F}, {U}, {F}]}}}}", true)]  // false: cannot reach 2
    [InlineData("count: {of: {import: \"Zw*\"}, min: 3}", true)]
    [InlineData("count: {of: {import: \"Zw*\"}, min: 4}", false)]
    [InlineData("count: {of: {import: \"Zw*\"}, max: 2}", false)]
    [InlineData("count: {of: {import: \"Zw*\"}, min: 1, max: 3}", true)]
    [InlineData("count: {of: {import: \"Ex*\"}, max: 0}", true)]
    [InlineData("count: {of: {section: \"*\"}, max: 0}", true)]
    [InlineData("all: [{import: ZwOpenSection}, {import: ZwMapViewOfSection}, {not: {import: ZwUnmapViewOfSection}}]", true)]
    public void Operators(string match, bool expected) => Assert.Equal(expected, RuleText.Matches(match, Facts));

    [Fact]
    public void Rule_reference_reuses_another_rules_match()
    {
        var set = RuleText.Load(
            RuleText.Make("import: ZwOpenSection", id: "TST001", name: "Base"),
            RuleText.Make("all: [{rule: TST001}, {import: ZwClose}]", id: "TST002", name: "Derived"),
            RuleText.Make("all: [{rule: TST002}, {import: ZwNope}]", id: "TST003", name: "Never"));
        var ids = set.Evaluate(Facts).Select(m => m.Rule.Id).ToList();
        Assert.Equal(["TST001", "TST002"], ids);
    }

    [Fact]
    public void Rule_reference_carries_the_evidence_of_the_referenced_rule()
    {
        var set = RuleText.Load(
            RuleText.Make("import: ZwOpenSection", id: "TST001", name: "Base"),
            RuleText.Make("all: [{characteristic: signed}, {rule: TST001}]", id: "TST002", name: "Derived", message: "{artifact} imports {import}."));
        var derived = Assert.Single(set.Evaluate(Facts), m => m.Rule.Id == "TST002");
        Assert.Equal("ntoskrnl.exe!ZwOpenSection", derived.Anchor.Key);
        Assert.Equal("drivers/test.sys imports ZwOpenSection.", derived.Message);
    }

    [Fact]
    public void Referenced_rule_is_evaluated_once_per_image()
    {
        var facts = new FakeFacts(characteristics: new Dictionary<string, bool?> { [Characteristics.Signed] = false });
        var set = RuleText.Load(
            RuleText.Make("not: {characteristic: signed}", id: "TST001", name: "Base"),
            RuleText.Make("rule: TST001", id: "TST002", name: "UsesBase"),
            RuleText.Make("any: [{rule: TST001}, {rule: TST002}]", id: "TST003", name: "UsesBoth"));
        Assert.Equal(3, set.Evaluate(facts).Count);
        Assert.Equal(1, facts.CharacteristicReads);
    }
}
