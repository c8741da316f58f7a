using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;
using static DriverAudit.Rules.Tests.FakeFacts;

namespace DriverAudit.Rules.Tests;

/// <summary><c>call:</c> argument constraints, allocator signatures, unknown arguments, call anchors and placeholders.</summary>
public class CallFeatureTests
{
    private static readonly ImportFact WithTag = Import("ntoskrnl.exe", "ExAllocatePoolWithTag");
    private static readonly ImportFact Pool2 = Import("ntoskrnl.exe", "ExAllocatePool2");
    private static readonly ImportFact Untagged = Import("ntoskrnl.exe", "ExAllocatePool");
    private static readonly ImportFact Free = Import("ntoskrnl.exe", "ExFreePoolWithTag");

    internal static CallFact Call(ImportFact api, uint site, uint? fn, int ordinal, params ulong?[] args) =>
        new(api, site, fn, ordinal, args, CallShape.Direct);

    private static FakeFacts Image(params CallFact[] calls) => new(imports: calls.Select(c => c.Api).Distinct()) { CallsValue = calls };

    private static IReadOnlyList<string> Keys(string match, FakeFacts facts) =>
        [.. RuleText.LoadOne(match).Evaluate(facts).Select(m => m.Anchor.Key)];

    [Fact]
    public void Tag_strings_are_memory_order_and_integers_are_raw_values()
    {
        var facts = Image(
            Call(WithTag, 0x1010, 0x1000, 0, 0x200, 16, 0x206B6444),   // 'Ddk '
            Call(WithTag, 0x1020, 0x1000, 1, 0x200, 16, 0x74736554),   // 'Test'
            Call(WithTag, 0x1030, 0x1000, 2, 0x200, 16, 0));
        Assert.Equal(["ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1000#0"], Keys("call: {api: ExAllocatePoolWithTag, tag: {eq: \"Ddk \"}}", facts));
        Assert.Equal(["ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1000#1"], Keys("call: {api: ExAllocatePoolWithTag, tag: Test}", facts));
        Assert.Equal(["ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1000#1"], Keys("call: {api: ExAllocatePoolWithTag, tag: 0x74736554}", facts));
        Assert.Equal(
            ["ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1000#0", "ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1000#2"],
            Keys("call: {api: ExAllocatePoolWithTag, tag: {in: [\"Ddk \", \"Wdm \", 0]}}", facts));
        // The trailing space counts: "Ddk" plus a different fourth byte is another tag.
        Assert.Empty(Keys("call: {api: ExAllocatePoolWithTag, tag: \"Ddkx\"}", facts));
        Assert.Equal(["ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1000#1"], Keys("call: {api: ExAllocatePoolWithTag, tag: {not-in: [\"Ddk \", 0]}}", facts));
    }

    [Fact]
    public void Tag_is_argument_2_of_allocators_and_1_of_ExFreePoolWithTag()
    {
        var facts = Image(
            Call(WithTag, 0x1010, 0x1000, 0, 0x200, 0x74736554, 1),   // size happens to equal 'Test'
            Call(Free, 0x1020, 0x1000, 0, 0xdead, 0x74736554));
        Assert.Equal(["ntoskrnl.exe!ExFreePoolWithTag@fn_0x1000#0"],
            Keys("call: {api: [ExAllocatePoolWithTag, ExFreePoolWithTag], tag: Test}", facts));
        Assert.Equal(["ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1000#0"],
            Keys("call: {api: ExAllocatePoolWithTag, arg: {1: {eq: 0x74736554}}}", facts));
    }

    [Fact]
    public void Tags_compare_the_low_32_bits()
    {
        var facts = Image(Call(WithTag, 0x1010, 0x1000, 0, 0x200, 16, 0xFFFF_FFFF_206B_6444));
        Assert.Single(Keys("call: {api: ExAllocatePoolWithTag, tag: \"Ddk \"}", facts));
    }

    [Fact]
    public void Unknown_arguments_satisfy_no_value_constraint_but_match_unknown_true()
    {
        var facts = Image(
            Call(WithTag, 0x1010, 0x1000, 0, 0x200, 16, null),
            Call(WithTag, 0x1020, 0x1000, 1, null, 16, 0x74736554));
        Assert.Empty(Keys("call: {api: ExAllocatePoolWithTag, tag: {not-in: [0]}, pool-type: {ne: 1}}", facts));
        Assert.Equal(["ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1000#0"], Keys("call: {api: ExAllocatePoolWithTag, tag: {unknown: true}}", facts));
        Assert.Equal(["ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1000#1"], Keys("call: {api: ExAllocatePoolWithTag, tag: {unknown: false}}", facts));
        // unknown: true together with a value constraint: either an unknown value or a matching one.
        Assert.Equal(2, Keys("call: {api: ExAllocatePoolWithTag, tag: {unknown: true, eq: Test}}", facts).Count);
        // Arguments the scanner did not recover at all (beyond Args) are unknown too.
        Assert.Empty(Keys("call: {api: ExAllocatePoolWithTag, arg: {3: {eq: 0}}}", facts));
        Assert.Equal(2, Keys("call: {api: ExAllocatePoolWithTag, arg: {3: {unknown: true}}}", facts).Count);
    }

    [Fact]
    public void Pool_type_applies_to_legacy_allocators_and_pool_flags_to_ExAllocatePool2()
    {
        var facts = Image(
            Call(WithTag, 0x1010, 0x1000, 0, 0x0, 16, 0x63657845),     // NonPagedPool: executable
            Call(WithTag, 0x1020, 0x1000, 1, 0x200, 16, 0x74736554),   // NonPagedPoolNx
            Call(WithTag, 0x1030, 0x1000, 2, 0x1, 16, 0x74736554),     // PagedPool
            Call(WithTag, 0x1040, 0x1000, 3, 0x4, 16, 0x74736554),     // NonPagedPoolCacheAligned: executable
            Call(Untagged, 0x1050, 0x1000, 0, 0x0, 16),
            Call(Pool2, 0x1060, 0x1000, 0, 0x42, 16, 0x6E496E55),      // NON_PAGED | UNINITIALIZED
            Call(Pool2, 0x1070, 0x1000, 1, 0x80, 16, 0x6E496E55));     // NON_PAGED_EXECUTE
        const string execType = "call: {api: [ExAllocatePool, ExAllocatePoolWithTag, ExAllocatePool2], pool-type: {mask: 0x201, eq: 0}}";
        Assert.Equal(
            ["ntoskrnl.exe!ExAllocatePool@fn_0x1000#0", "ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1000#0", "ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1000#3"],
            Keys(execType, facts));
        Assert.Equal(["ntoskrnl.exe!ExAllocatePool2@fn_0x1000#1"], Keys("call: {api: ExAllocatePool2, pool-flags: {has-any: 0x80}}", facts));
        Assert.Equal(["ntoskrnl.exe!ExAllocatePool2@fn_0x1000#0"], Keys("call: {api: ExAllocatePool2, pool-flags: {has-all: [0x40, 0x2]}}", facts));
        Assert.Equal(["ntoskrnl.exe!ExAllocatePool2@fn_0x1000#1"], Keys("call: {api: ExAllocatePool2, pool-flags: {lacks: 0x2}}", facts));
        Assert.Equal(["ntoskrnl.exe!ExAllocatePool2@fn_0x1000#0"], Keys("call: {api: ExAllocatePool2, pool-flags: {mask: 0xC0, eq: 0x40}}", facts));
        Assert.Equal(2, Keys("call: {api: ExAllocatePoolWithTag, pool-type: {in: [0x200, 1]}}", facts).Count);
    }

    [Fact]
    public void Call_anchor_values_fill_the_placeholders()
    {
        var facts = Image(
            Call(WithTag, 0x1a2b, 0x1a00, 0, 0x0, 16, 0x0a6B6444),
            Call(WithTag, 0x1b00, null, 0, 0x200, 16, null),
            Call(Untagged, 0x1c00, 0x1a00, 0, null, 16));
        var set = RuleText.LoadOne("call: {api: [ExAllocatePoolWithTag, ExAllocatePool]}",
            message: "{artifact}: {api} from {module} tag '{tag}' type {pool-type} at {site} in {function} [{value}] {import}.");
        Assert.Equal(
            [
                "drivers/test.sys: ExAllocatePool from ntoskrnl.exe tag 'None' type unknown at 0x1c00 in 0x1a00 [ntoskrnl.exe!ExAllocatePool@fn_0x1a00#0] ExAllocatePool.",
                "drivers/test.sys: ExAllocatePoolWithTag from ntoskrnl.exe tag 'Ddk\\x0A' type 0x0 at 0x1a2b in 0x1a00 [ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1a00#0] ExAllocatePoolWithTag.",
                "drivers/test.sys: ExAllocatePoolWithTag from ntoskrnl.exe tag 'unknown' type 0x200 at 0x1b00 in unknown [ntoskrnl.exe!ExAllocatePoolWithTag@nofn#0] ExAllocatePoolWithTag.",
            ],
            set.Evaluate(facts).Select(m => m.Message));
        Assert.All(set.Evaluate(facts), m => Assert.Equal(AnchorKind.Call, m.Anchor.Kind));
    }

    [Fact]
    public void Calls_are_not_read_when_no_api_is_imported()
    {
        var facts = new FakeFacts(imports: [Import("ntoskrnl.exe", "IoCreateDevice")]) { CallsValue = [Call(WithTag, 0x1010, 0x1000, 0, 0, 16, 0)] };
        // A wildcard api has no index entry, so the feature's own import check is what protects Calls.
        Assert.Empty(RuleText.LoadOne("call: {api: \"ExAllocatePoolWith*\", tag: 0}").Evaluate(facts));
        Assert.Equal(0, facts.CallReads);
    }

    [Fact]
    public void Same_name_in_ntoskrnl_and_ntdll_is_told_apart_by_module_and_not_lost_without_one()
    {
        var kernel = Import("ntoskrnl.exe", "ZwTerminateProcess");
        var user = Import("ntdll.dll", "ZwTerminateProcess");
        var facts = new FakeFacts(imports: [kernel, user])
        {
            CallsValue = [Call(kernel, 0x1010, 0x1000, 0, null, 0), Call(user, 0x1020, 0x1000, 0, null, 1)],
        };
        Assert.Equal(["ntdll.dll!ZwTerminateProcess", "ntoskrnl.exe!ZwTerminateProcess"], Keys("import: ZwTerminateProcess", facts));
        Assert.Equal(["ntoskrnl.exe!ZwTerminateProcess"], Keys("import: ntoskrnl!ZwTerminateProcess", facts));
        Assert.Equal(["ntdll.dll!ZwTerminateProcess"], Keys("import: ntdll.dll!ZwTerminateProcess", facts));
        Assert.Equal(["ntoskrnl.exe!ZwTerminateProcess@fn_0x1000#0"], Keys("call: {api: ntoskrnl!ZwTerminateProcess}", facts));
        Assert.Equal(["ntdll.dll!ZwTerminateProcess@fn_0x1000#0"], Keys("call: {api: ZwTerminateProcess, arg: {1: {eq: 1}}}", facts));

        // The index is by name only: an image importing the name from ntdll alone still reaches a
        // ntoskrnl-qualified rule, which then says no by module.
        var userOnly = new FakeFacts(imports: [user]);
        Assert.Empty(Keys("import: ntoskrnl!ZwTerminateProcess", userOnly));
        Assert.Equal(["ntdll.dll!ZwTerminateProcess"], Keys("import: ZwTerminateProcess", userOnly));
    }

    [Fact]
    public void Count_counts_call_sites()
    {
        var facts = Image(
            Call(WithTag, 0x1010, 0x1000, 0, 0x200, 16, 1),
            Call(WithTag, 0x1020, 0x1000, 1, 0x200, 16, 2),
            Call(WithTag, 0x1030, 0x2000, 0, 0x200, 16, 3));
        Assert.True(RuleText.Matches("count: {of: {call: {api: ExAllocatePoolWithTag}}, min: 3}", facts));
        Assert.False(RuleText.Matches("count: {of: {call: {api: ExAllocatePoolWithTag}}, min: 4}", facts));
    }
}
