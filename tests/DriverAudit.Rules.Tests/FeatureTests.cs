using DriverAudit.Rules.Facts;
using static DriverAudit.Rules.Tests.FakeFacts;

namespace DriverAudit.Rules.Tests;

public class ImportFeatureTests
{
    private static readonly FakeFacts Driver = new(imports:
    [
        Import("ntoskrnl.exe", "ExAllocatePool"),
        Import("NTOSKRNL.EXE", "ZwReadVirtualMemory"),
        Import("HAL.dll", "KeStallExecutionProcessor"),
        ImportByOrdinal("hal.dll", 12),
        Import("netio.sys", "WskRegister", delayed: true),
        ImportByOrdinal("ndis.sys", 7, delayed: true),
    ]);

    [Theory]
    [InlineData("import: ExAllocatePool", true)]
    [InlineData("import: exallocatepool", false)] // function names are case-sensitive
    [InlineData("import: ExAllocatePoolWithTag", false)]
    [InlineData("import: ntoskrnl.exe!ExAllocatePool", true)]
    [InlineData("import: ntoskrnl!ExAllocatePool", true)] // extension optional
    [InlineData("import: NtOsKrnl.EXE!ExAllocatePool", true)] // module case-insensitive
    [InlineData("import: ntoskrnl.sys!ExAllocatePool", false)] // a different extension is a different module
    [InlineData("import: hal!ExAllocatePool", false)]
    [InlineData("import: hal.dll!KeStall*", true)]
    [InlineData("import: \"*!KeStall*\"", true)]
    [InlineData("import: nt*!Zw?eadVirtualMemory", true)]
    [InlineData("import: ExAllocate?", false)]
    [InlineData("import: /^Zw(Read|Write)VirtualMemory$/", true)]
    [InlineData("import: /^zw(read|write)virtualmemory$/", false)]
    [InlineData("import: /^zw(read|write)virtualmemory$/i", true)]
    [InlineData("import: ntoskrnl!/^Ex/", true)]
    [InlineData("import: hal!/^Ex/", false)]
    [InlineData("import: hal.dll!#12", true)]
    [InlineData("import: hal!#12", true)]
    [InlineData("import: hal.dll!#13", false)]
    [InlineData("import: ntoskrnl.exe!#12", false)]
    [InlineData("import: \"#7\"", true)] // ordinal from any module
    [InlineData("import: {name: WskRegister, delayed: true}", true)]
    [InlineData("import: {name: WskRegister, delayed: false}", false)]
    [InlineData("import: {name: ExAllocatePool, delayed: true}", false)]
    [InlineData("import: {module: netio, delayed: true}", true)]
    [InlineData("import: {module: ndis.sys, ordinal: 7}", true)]
    [InlineData("import: {module: ndis.sys, ordinal: 8}", false)]
    [InlineData("import: {ordinal: 12, delayed: false}", true)]
    [InlineData("import: {module: \"n*\", name: \"Wsk*\"}", true)]
    [InlineData("import: {module: /^NET/i, name: WskRegister}", true)]
    [InlineData("import: {module: /^NET/, name: WskRegister}", true)] // module patterns always ignore case
    [InlineData("import: {module: ntoskrnl.exe}", true)]
    [InlineData("import: {module: fltmgr.sys}", false)]
    public void Import_forms(string match, bool expected) => Assert.Equal(expected, RuleText.Matches(match, Driver));

    [Fact]
    public void Import_with_extensionless_module_in_image_matches_pattern_with_extension()
    {
        var facts = new FakeFacts(imports: [Import("ntoskrnl", "ExAllocatePool")]);
        Assert.True(RuleText.Matches("import: ntoskrnl.exe!ExAllocatePool", facts));
        Assert.True(RuleText.Matches("import: ntoskrnl!ExAllocatePool", facts));
        Assert.False(RuleText.Matches("import: ntoskrnl.exe.bak!ExAllocatePool", facts));
    }
}

public class ExportFeatureTests
{
    private static readonly FakeFacts Driver = new(exports:
    [
        new ExportFact("DriverEntry", 1, 0x1000, null),
        new ExportFact("DllInitialize", 2, 0x1100, null),
        new ExportFact(null, 9, 0x1200, null),
        new ExportFact("ExAllocatePoolCompat", 3, 0, "NTOSKRNL.ExAllocatePool"),
    ]);

    [Theory]
    [InlineData("export: DriverEntry", true)]
    [InlineData("export: driverentry", false)]
    [InlineData("export: /^Dll/", true)]
    [InlineData("export: Dll*", true)]
    [InlineData("export: \"#9\"", true)]
    [InlineData("export: \"#10\"", false)]
    [InlineData("export: {ordinal: 2}", true)]
    [InlineData("export: {name: DriverEntry, ordinal: 2}", false)]
    [InlineData("export: {forwarder: true}", true)]
    [InlineData("export: {name: DriverEntry, forwarder: true}", false)]
    [InlineData("export: {name: DriverEntry, forwarder: false}", true)]
    [InlineData("export: {forwarder: \"ntoskrnl.*\"}", true)]
    [InlineData("export: {forwarder: \"hal.*\"}", false)]
    public void Export_forms(string match, bool expected) => Assert.Equal(expected, RuleText.Matches(match, Driver));
}

public class SectionFeatureTests
{
    private static readonly FakeFacts Driver = new(sections:
    [
        Section(0, ".text", 0x1000, Text),
        Section(1, ".data", 0x2000, Data),
        Section(2, "RWX", 0x3000, Rwx),
        Section(3, "INIT", 0x4080, Text | SectionFact.MemDiscardable),
    ]);

    [Theory]
    [InlineData("section: .text", true)]
    [InlineData("section: .TEXT", false)] // section names are case-sensitive
    [InlineData("section: \".t*\"", true)]
    [InlineData("section: /^\\.(text|data)$/", true)]
    [InlineData("section: {writable: true, executable: true}", true)]
    [InlineData("section: {name: .data, executable: true}", false)]
    [InlineData("section: {name: INIT, discardable: true}", true)]
    [InlineData("section: {name: INIT, discardable: false}", false)]
    [InlineData("section: {page-aligned: false}", true)]
    [InlineData("section: {name: .text, page-aligned: false}", false)]
    [InlineData("section: {readable: false}", false)]
    [InlineData("section: {name: .data, readable: true, writable: true, executable: false}", true)]
    public void Section_forms(string match, bool expected) => Assert.Equal(expected, RuleText.Matches(match, Driver));

    [Fact]
    public void Cnt_code_alone_counts_as_executable()
    {
        var facts = new FakeFacts(sections: [Section(0, "PAGE", 0x1000, SectionFact.CntCode | SectionFact.MemWrite)]);
        Assert.True(RuleText.Matches("section: {writable: true, executable: true}", facts));
    }
}

public class HeaderFeatureTests
{
    private static FakeFacts With(HeaderFact header) => new(header: header);

    [Theory]
    [InlineData("header: {machine: x64}", true)]
    [InlineData("header: {machine: X64}", true)]
    [InlineData("header: {machine: [x86, arm64]}", false)]
    [InlineData("header: {machine: [x86, x64]}", true)]
    [InlineData("header: {machine: 0x8664}", true)] // the raw value of a named machine is that machine
    [InlineData("header: {subsystem: native}", true)]
    [InlineData("header: {subsystem: [windows-gui, windows-cui]}", false)]
    [InlineData("header: {dll-characteristics: {has: [NX_COMPAT, DYNAMIC_BASE]}}", true)]
    [InlineData("header: {dll-characteristics: {has: GUARD_CF}}", false)]
    [InlineData("header: {dll-characteristics: {lacks: [NX_COMPAT]}}", false)]
    [InlineData("header: {dll-characteristics: {has: HIGH_ENTROPY_VA, lacks: [GUARD_CF, FORCE_INTEGRITY]}}", true)]
    [InlineData("header: {characteristics: {has: [EXECUTABLE_IMAGE, LARGE_ADDRESS_AWARE], lacks: DLL}}", true)]
    [InlineData("header: {characteristics: {has: [DLL]}}", false)]
    [InlineData("header: {section-alignment: {lt: 0x1000}}", false)]
    [InlineData("header: {section-alignment: {ge: 4096, le: 0x1000}}", true)]
    [InlineData("header: {section-alignment: {eq: 0x1000}, file-alignment: {gt: 0x100, ne: 0x1000}}", true)]
    [InlineData("header: {machine: x64, subsystem: native, dll-characteristics: {lacks: [NX_COMPAT]}}", false)]
    public void Header_forms(string match, bool expected) => Assert.Equal(expected, RuleText.Matches(match, With(MakeHeader())));

    [Fact]
    public void Raw_machine_values_compare_numerically()
    {
        var facts = With(MakeHeader(machine: 0x01c4));
        Assert.True(RuleText.Matches("header: {machine: 0x1c4}", facts));
        Assert.False(RuleText.Matches("header: {machine: 0x1c0}", facts));
    }

    [Fact]
    public void Small_section_alignment_matches_lt()
    {
        Assert.True(RuleText.Matches("header: {section-alignment: {lt: 0x1000}}", With(MakeHeader(sectionAlignment: 0x80))));
    }
}

public class CharacteristicFeatureTests
{
    [Theory]
    [InlineData(true, "characteristic: signed", true)]
    [InlineData(false, "characteristic: signed", false)]
    [InlineData(null, "characteristic: signed", false)]
    [InlineData(true, "not: {characteristic: signed}", false)]
    [InlineData(false, "not: {characteristic: signed}", true)]
    [InlineData(null, "not: {characteristic: signed}", false)] // not unknown is unknown, never a finding
    [InlineData(null, "not: {not: {characteristic: signed}}", false)]
    public void Three_valued(bool? value, string match, bool expected)
    {
        var facts = new FakeFacts(characteristics: new Dictionary<string, bool?> { [Characteristics.Signed] = value });
        Assert.Equal(expected, RuleText.Matches(match, facts));
    }

    [Fact]
    public void Every_known_characteristic_is_accepted_and_asked_by_its_name()
    {
        foreach (var name in Characteristics.Known)
        {
            var facts = new FakeFacts(characteristics: new Dictionary<string, bool?> { [name] = true });
            Assert.True(RuleText.Matches($"characteristic: {name}", facts), name);
            Assert.Equal([name], facts.CharacteristicsAsked);
        }
    }
}
