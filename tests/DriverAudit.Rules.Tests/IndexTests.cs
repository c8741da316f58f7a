using DriverAudit.Rules.Facts;
using static DriverAudit.Rules.Tests.FakeFacts;

namespace DriverAudit.Rules.Tests;

/// <summary>The import index and cost ordering keep expensive facts unread unless a rule can still match.</summary>
public class IndexTests
{
    private static FakeFacts Expensive(params ImportFact[] imports) => new(imports: imports)
    {
        CallsValue = [CallFeatureTests.Call(Import("ntoskrnl.exe", "ExAllocatePoolWithTag"), 0x1010, 0x1000, 0, 0, 16, 0)],
        InstructionsValue = [new InstructionFact(0x1000, "wrmsr", null, 0x1000)],
        StringsValue = [new StringFact("D:P(A;;GA;;;WD)", true, 0x3000, ".rdata")],
        FileSha256Value = new string('a', 64),
        AuthenticodeSha256Value = new string('b', 64),
        SignatureValue = new SignatureFact([], null, null),
    };

    private static int ExpensiveReads(FakeFacts f) =>
        f.CallReads + f.InstructionReads + f.StringReads + f.HashReads + f.SignatureReads + f.VersionInfoReads + f.ModuleReads;

    /// <summary>Every expensive feature guarded by an import the image lacks.</summary>
    private static readonly string[] Guarded =
    [
        "all: [{instruction: wrmsr}, {import: MmMapIoSpace}]",
        "all: [{string: \"D:P\"}, {import: IoCreateDevice}, {import: IoCreateSymbolicLink}]",
        "all: [{hash: {sha256: " + new string('a', 64) + "}}, {any: [{import: ZwOpenSection}, {import: ZwMapViewOfSection}]}]",
        "call: {api: [ExAllocatePoolWithTag, ExAllocatePool2], tag: 0}",
        "all: [{signature: {test: true}}, {rule: TST001}]",
        "all: [{version-info: {CompanyName: \"*\"}}, {count: {of: {import: KeBugCheckEx}, min: 1}}]",
        "all: [{module: {origin: dump}}, {not: {import: X}}, {import: HalMakeBeep}]",
    ];

    private static Engine.RuleSet GuardedSet() =>
        RuleText.Load([.. Guarded.Select((m, i) => RuleText.Make(m, id: $"TST{i + 1:000}", name: $"Rule{i + 1}"))]);

    [Fact]
    public void Rules_whose_import_prerequisite_is_missing_read_nothing_but_the_imports_once()
    {
        var facts = Expensive(Import("ntoskrnl.exe", "KeInitializeEvent"), Import("ntoskrnl.exe", "ExAllocatePool2x"));
        Assert.Empty(GuardedSet().Evaluate(facts));
        Assert.Equal(0, ExpensiveReads(facts));
        Assert.Equal((1, 0, 0, 0, 0, 0), (facts.ImportReads, facts.SectionReads, facts.ExportReads, facts.HeaderReads, facts.CharacteristicReads, facts.DisplayNameReads));
    }

    [Fact]
    public void Prerequisite_present_the_rule_is_evaluated_and_matches()
    {
        var facts = Expensive(Import("ntoskrnl.exe", "MmMapIoSpace"), Import("ntoskrnl.exe", "ExAllocatePoolWithTag"));
        Assert.Equal(["TST001", "TST004"], GuardedSet().Evaluate(facts).Select(m => m.Rule.Id));
        // TST005 is a candidate (its rule: reference's prerequisite holds), so its cheaper signature test runs.
        Assert.Equal(1, facts.SignatureReads);
        Assert.Equal(0, facts.StringReads + facts.HashReads + facts.VersionInfoReads + facts.ModuleReads);
        Assert.True(facts.InstructionReads > 0 && facts.CallReads > 0);
    }

    [Fact]
    public void Import_names_are_exact_and_case_sensitive_in_the_index()
    {
        var facts = Expensive(Import("ntoskrnl.exe", "mmmapiospace"));
        Assert.Empty(GuardedSet().Evaluate(facts));
        Assert.Equal(0, facts.InstructionReads);
    }

    [Fact]
    public void An_image_that_cannot_hold_a_matching_string_is_ruled_out_before_its_strings_are_read()
    {
        var facts = new FakeFacts { StringsValue = [new StringFact(@"C:\Windows", false, 0x3000, ".rdata"), new StringFact("xD:P(A;;GA;;;WD)", true, 0x3100, ".rdata")] };
        Assert.Empty(RuleText.LoadOne("string: {regex: '/^D:P\\(A;/', encoding: utf16}").Evaluate(facts));
        Assert.Empty(RuleText.LoadOne("string: {text: \"physicalmemory\", ignore-case: true}").Evaluate(facts));
        Assert.Equal(0, facts.StringReads);
        Assert.Equal([new StringNeedle("D:P(A;", false, true, false, true), new StringNeedle("physicalmemory", true, false, true, true)], facts.NeedlesAsked);

        // A needle that may be there: the strings are read and decide.
        Assert.Single(RuleText.LoadOne("string: {text: \"D:P\", whole: false}").Evaluate(facts));
        Assert.True(facts.StringReads > 0);

        // A regex with no anchored literal has no needle: nothing to ask, the strings decide.
        var open = new FakeFacts { StringsValue = facts.StringsValue };
        Assert.Single(RuleText.LoadOne("string: {regex: '/Windows$/'}").Evaluate(open));
        Assert.Empty(open.NeedlesAsked);
    }

    [Fact]
    public void Each_string_question_carries_the_distinct_needles_of_the_rules_that_may_still_match()
    {
        var sddl = new StringNeedle("D:", false, true, true, true);
        var physical = new StringNeedle(@"\Device\PhysicalMemory", true, false, true, true);
        var set = RuleText.Load(
            RuleText.Make("string: {regex: '/^D:[A-Z]*\\(/'}", id: "TST001", name: "Rule1"),
            RuleText.Make("all: [{import: IoCreateDevice}, {not: {string: {regex: '/^D:[A-Z]*\\(A;/'}}}]", id: "TST002", name: "Rule2"),
            RuleText.Make("all: [{string: {text: \"\\\\Device\\\\PhysicalMemory\", ignore-case: true}}, {import: ZwOpenSection}]", id: "TST003", name: "Rule3"),
            RuleText.Make("all: [{string: {regex: '/^D:/'}}, {rule: TST003}]", id: "TST004", name: "Rule4"),
            RuleText.Make("import: KeBugCheckEx", id: "TST005", name: "Rule5"));
        // TST003 is not a candidate (no ZwOpenSection): its needle is not searched for; "D:" (three rules) once.
        var facts = new FakeFacts(imports: [Import("ntoskrnl.exe", "IoCreateDevice")]) { StringsValue = [new StringFact("nothing here", false, 0x3000, ".rdata")] };
        set.Evaluate(facts);
        Assert.NotEmpty(facts.AlongWith);
        Assert.All(facts.AlongWith, along => Assert.Equal([sddl], along));
        // With ZwOpenSection TST003 (and TST004, which refers to it) may match: both needles, each once.
        facts = new FakeFacts(imports: [Import("ntoskrnl.exe", "ZwOpenSection")]) { StringsValue = facts.StringsValue };
        set.Evaluate(facts);
        Assert.All(facts.AlongWith, along => Assert.Equal([sddl, physical], along.OrderBy(n => n.Text, StringComparer.Ordinal)));
        // A selection leaves out the needles of the rules it does not run, but not those of the rules they refer to.
        facts = new FakeFacts(imports: [Import("ntoskrnl.exe", "ZwOpenSection")]) { StringsValue = facts.StringsValue };
        set.Select(r => r.Id == "TST004").Evaluate(facts);
        Assert.NotEmpty(facts.AlongWith);
        Assert.All(facts.AlongWith, along => Assert.Equal([sddl, physical], along.OrderBy(n => n.Text, StringComparer.Ordinal)));
        facts = new FakeFacts(imports: [Import("ntoskrnl.exe", "ZwOpenSection")]) { StringsValue = facts.StringsValue };
        set.Select(r => r.Id == "TST001").Evaluate(facts);
        Assert.All(facts.AlongWith, along => Assert.Equal([sddl], along));
    }

    [Fact]
    public void Rules_without_a_prerequisite_are_always_evaluated()
    {
        // any with one unguarded branch, not, a wildcard import, min 0 count: no prerequisite.
        string[] open =
        [
            "any: [{import: MmMapIoSpace}, {instruction: wrmsr}]",
            "not: {import: MmMapIoSpace}",
            "all: [{import: \"MmMap*\"}, {instruction: wrmsr}]",
        ];
        foreach (var match in open)
        {
            var facts = Expensive(Import("ntoskrnl.exe", "MmMapIoSpaceEx"));
            Assert.Single(RuleText.LoadOne(match).Evaluate(facts));
        }
    }

    [Fact]
    public void Cheap_features_run_before_expensive_ones_inside_a_rule()
    {
        var facts = Expensive(Import("ntoskrnl.exe", "MmMapIoSpace"));
        // Written expensive-first; the header (x64, not x86) fails first, so nothing expensive is read.
        Assert.Empty(RuleText.LoadOne("all: [{instruction: wrmsr}, {string: x}, {hash: {sha256: " + new string('a', 64) + "}}, {header: {machine: x86}}]").Evaluate(facts));
        Assert.Equal((1, 0), (facts.HeaderReads, ExpensiveReads(facts)));
    }

    [Fact]
    public void Default_pack_reads_no_call_or_hash_fact_unless_an_allocator_is_imported()
    {
        // Instructions (DA3003-DA3005) and strings (DA4002) have no import prerequisite, so they are read;
        // call rules wait for an allocator import, and DA6001's list is empty without --hash-list.
        var plain = Expensive(Import("ntoskrnl.exe", "KeInitializeEvent"), Import("ntoskrnl.exe", "ExFreePoolWithTag"));
        DefaultPackTests.Set.Evaluate(plain);
        Assert.Equal((0, 0), (plain.CallReads, plain.HashReads));

        var allocating = Expensive(Import("ntoskrnl.exe", "ExAllocatePoolWithTag"));
        var found = DefaultPackTests.Set.Evaluate(allocating);
        Assert.True(allocating.CallReads > 0);
        Assert.Contains(found, m => m.Rule.Id == "DA1002");
    }
}
