using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;

namespace DriverAudit.Rules.Tests;

/// <summary>module, string, version-info, signature, hash (inline) and instruction features.</summary>
public class ImageFeatureTests
{
    private static FakeFacts Dump(string name, string path) => new() { ModuleValue = new ModuleFact("dump", name, path, 0xfffff80012340000) };

    [Theory]
    [InlineData("module: {origin: dump}", true)]
    [InlineData("module: {origin: file}", false)]
    [InlineData("module: {name: \"GUIDDRV.SYS\"}", true)]
    [InlineData("module: {name: \"*.sys\", path: \"*\\\\temp\\\\*\"}", true)]
    [InlineData("module: {path: \"!\\\\SystemRoot\\\\System32\\\\drivers\\\\*\"}", true)]
    [InlineData("module: {path: [\"!*\\\\Temp\\\\*\", \"!*\\\\drivers\\\\*\"]}", false)]
    [InlineData("module: {path: \"/\\\\\\\\AppData\\\\\\\\/i\"}", true)]
    [InlineData("module: {path: \"*\\\\Program Files\\\\*\"}", false)]
    public void Module_origin_name_and_path(string match, bool expected)
    {
        Assert.Equal(expected, RuleText.Matches(match, Dump("guiddrv.sys", @"\??\C:\Users\me\AppData\Local\Temp\guiddrv.sys")));
    }

    [Fact]
    public void Module_negation_excludes_the_driver_directories_case_insensitively()
    {
        const string match = "module: {origin: dump, path: \"!\\\\SystemRoot\\\\System32\\\\drivers\\\\*\"}";
        Assert.False(RuleText.Matches(match, Dump("tcpip.sys", @"\SystemRoot\system32\DRIVERS\tcpip.sys")));
        Assert.True(RuleText.Matches(match, Dump("x.sys", @"\??\C:\tmp\x.sys")));
        Assert.False(RuleText.Matches(match, new FakeFacts { ModuleValue = new ModuleFact("file", "x.sys", @"C:\tmp\x.sys", null) }));
    }

    private static FakeFacts WithStrings(params StringFact[] strings) => new() { StringsValue = strings };

    [Fact]
    public void String_literals_are_case_sensitive_substrings_in_either_encoding()
    {
        var facts = WithStrings(
            new StringFact(@"\Device\PhysicalMemory", true, 0x3000, ".rdata"),
            new StringFact("Copying to \\DosDevices\\Foo", false, 0x3100, ".rdata"));
        Assert.True(RuleText.Matches("string: \"PhysicalMemory\"", facts));
        Assert.False(RuleText.Matches("string: \"physicalmemory\"", facts));
        Assert.True(RuleText.Matches("string: {text: \"\\\\device\\\\physicalmemory\", ignore-case: true}", facts));
        Assert.True(RuleText.Matches("string: {utf16: \"\\\\Device\\\\PhysicalMemory\", whole: true}", facts));
        Assert.False(RuleText.Matches("string: {utf16: \"\\\\Device\\\\Physical\", whole: true}", facts));
        Assert.False(RuleText.Matches("string: {ascii: \"PhysicalMemory\"}", facts));
        Assert.True(RuleText.Matches("string: {ascii: \"DosDevices\"}", facts));
        Assert.True(RuleText.Matches("string: {regex: \"/^copying to /i\", encoding: ascii}", facts));
        Assert.False(RuleText.Matches("string: {regex: \"/^copying to /i\", encoding: utf16}", facts));
    }

    [Fact]
    public void String_anchors_are_the_value_with_utf16_marked_and_deduplicated()
    {
        var facts = WithStrings(
            new StringFact("D:P(A;;GA;;;WD)", true, 0x3000, ".rdata"),
            new StringFact("D:P(A;;GA;;;WD)", false, 0x3100, ".data"),
            new StringFact("D:P(A;;GA;;;WD)", true, 0x3200, ".rdata"));
        var matches = RuleText.LoadOne("string: {regex: \"/^D:P/\"}", message: "{artifact} has {string} in {section}.").Evaluate(facts);
        Assert.Equal(["D:P(A;;GA;;;WD)", "D:P(A;;GA;;;WD)#utf16"], matches.Select(m => m.Anchor.Key));
        Assert.All(matches, m => Assert.Equal(AnchorKind.String, m.Anchor.Kind));
        Assert.Equal("drivers/test.sys has D:P(A;;GA;;;WD) in .data.", matches[0].Message);
    }

    [Fact]
    public void Version_info_keys_ignore_case_and_missing_keys_never_match()
    {
        var facts = new FakeFacts { VersionInfoValue = new Dictionary<string, string> { ["CompanyName"] = "Micro-Star INT'L CO., LTD.", ["FileVersion"] = "4.6.2" } };
        Assert.True(RuleText.Matches("version-info: {CompanyName: \"*micro-star*\"}", facts));
        Assert.True(RuleText.Matches("version-info: {companyname: \"*Micro-Star*\", FileVersion: \"4.*\"}", facts));
        Assert.False(RuleText.Matches("version-info: {CompanyName: \"*Micro-Star*\", FileVersion: \"5.*\"}", facts));
        Assert.True(RuleText.Matches("version-info: {CompanyName: \"!Microsoft*\"}", facts));
        Assert.False(RuleText.Matches("version-info: {ProductName: \"!Microsoft*\"}", facts));
    }

    private static SignerFact Signer(string subject, bool test) =>
        new(subject, subject, "01", "ab", DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch.AddYears(80), test);

    [Fact]
    public void Signature_signer_issuer_test_and_present()
    {
        var testSigned = new FakeFacts { SignatureValue = new SignatureFact([Signer("CN=\"WDKTestCert build,1337\"", true)], "sha256", null) };
        var release = new FakeFacts { SignatureValue = new SignatureFact([Signer("C=US, O=Contoso Drivers Ltd, CN=Contoso Drivers Ltd", false)], "sha256", null) };
        var unsigned = new FakeFacts();

        Assert.Equal((true, false, false), Eval("signature: {signer: \"*wdktestcert*\"}"));
        Assert.Equal((true, false, false), Eval("signature: {test: true}"));
        Assert.Equal((false, true, false), Eval("signature: {test: false, issuer: \"*Contoso*\"}"));
        Assert.Equal((true, true, false), Eval("signature: {present: true}"));
        Assert.Equal((false, false, true), Eval("signature: {present: false}"));
        // All constraints must hold for one signer.
        Assert.Equal((false, false, false), Eval("signature: {signer: \"*Contoso*\", test: true}"));

        (bool, bool, bool) Eval(string match) =>
            (RuleText.Matches(match, testSigned), RuleText.Matches(match, release), RuleText.Matches(match, unsigned));

        var finding = Assert.Single(RuleText.LoadOne("signature: {test: true}", message: "{artifact} signer {signer}.").Evaluate(testSigned));
        Assert.Equal((AnchorKind.Image, "image", "drivers/test.sys signer CN=\"WDKTestCert build,1337\"."), (finding.Anchor.Kind, finding.Anchor.Key, finding.Message));
    }

    [Fact]
    public void Inline_hashes_compare_ignoring_case_and_a_missing_hash_is_unknown()
    {
        const string sha = "a9b74665dbe8c7af9b4b301d7d8d0434248c884feb6541174103120b28248673";
        const string auth = "10f7c6b0b3a33d337f487fcf3b07606da3ca43b2c1661367b2f252c020fba5aa";
        var facts = new FakeFacts { FileSha256Value = sha, AuthenticodeSha256Value = auth, AuthenticodeSha1Value = new string('1', 40) };
        Assert.True(RuleText.Matches($"hash: {{sha256: [\"{sha.ToUpperInvariant()}\"]}}", facts));
        Assert.False(RuleText.Matches($"hash: {{sha256: {auth}}}", facts));
        Assert.True(RuleText.Matches($"hash: {{authentihash: {auth}}}", facts));
        Assert.True(RuleText.Matches($"hash: {{authentihash: [{new string('2', 64)}, {new string('1', 40)}]}}", facts));

        // A dump module has no file hash: unknown, so even 'not' does not report it.
        var dump = new FakeFacts();
        Assert.False(RuleText.Matches($"hash: {{sha256: {sha}}}", dump));
        Assert.False(RuleText.Matches($"not: {{hash: {{sha256: {sha}}}}}", dump));
        Assert.True(RuleText.Matches($"not: {{hash: {{sha256: {sha}}}}}", new FakeFacts { FileSha256Value = auth }));
    }

    private static InstructionFact Insn(uint rva, string mnemonic, string? cr = null, uint? fn = 0x1000) => new(rva, mnemonic, cr, fn);

    [Fact]
    public void Instructions_by_mnemonic_and_control_register_with_stable_keys()
    {
        var facts = new FakeFacts
        {
            InstructionsValue =
            [
                Insn(0x1030, "wrmsr"), Insn(0x1010, "wrmsr"), Insn(0x1020, "rdmsr"), Insn(0x2010, "wrmsr", fn: 0x2000),
                Insn(0x3000, "in", fn: null), Insn(0x3010, "out", fn: null),
                Insn(0x1040, "mov", "cr0"), Insn(0x1050, "mov", "cr8"), Insn(0x1060, "mov", "cr4"),
            ],
        };
        var set = RuleText.LoadOne("instruction: {mnemonic: wrmsr}", message: "{artifact} {mnemonic} at {site} in {function}.");
        var found = set.Evaluate(facts);
        Assert.Equal(["wrmsr@fn_0x1000#0", "wrmsr@fn_0x1000#1", "wrmsr@fn_0x2000#0"], found.Select(m => m.Anchor.Key));
        Assert.Equal("drivers/test.sys wrmsr at 0x1010 in 0x1000.", found[0].Message); // ordinals follow address order
        Assert.Equal(["in@nofn#0", "out@nofn#0"], RuleText.LoadOne("instruction: {mnemonic: [in, out]}").Evaluate(facts).Select(m => m.Anchor.Key));
        var crs = RuleText.LoadOne("instruction: {mov-to: [cr0, cr4]}", message: "{artifact} {mnemonic}.").Evaluate(facts);
        Assert.Equal(["mov@cr0@fn_0x1000#0", "mov@cr4@fn_0x1000#0"], crs.Select(m => m.Anchor.Key));
        Assert.Equal("drivers/test.sys mov cr0.", crs[0].Message);
        Assert.True(RuleText.Matches("instruction: rdmsr", facts));
    }
}
