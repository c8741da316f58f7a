using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;
using DriverAudit.TestSupport;
using static DriverAudit.Rules.Tests.FakeFacts;

namespace DriverAudit.Rules.Tests;

/// <summary>The shipped pack (rules/*.yaml, read from disk) loads, follows the catalogue and behaves on typical facts.</summary>
public class DefaultPackTests
{
    private static readonly Lazy<(string[] Files, RuleSet Set)> Pack = new(() =>
    {
        var dir = RepoPaths.Rules;
        var files = Directory.GetFiles(dir, "*.yaml").Order(StringComparer.Ordinal).ToArray();
        var sources = files.Select(f => new RuleSource("rules/" + Path.GetFileName(f), File.ReadAllText(f)));
        return (files, RuleSet.Load(sources));
    });

    internal static RuleSet Set => Pack.Value.Set;

    private static Rule Rule(string id) => Assert.Single(Pack.Value.Set.Rules, r => r.Id == id);

    [Fact]
    public void Every_rule_file_loads_and_is_named_after_its_id()
    {
        var (files, set) = Pack.Value;
        Assert.Equal(files.Length, set.Rules.Count);
        Assert.Equal(files.Select(Path.GetFileNameWithoutExtension), set.Rules.Select(r => r.Id));
        Assert.All(set.Rules, r => Assert.Matches("^DA[0-9]{4}$", r.Id));
    }

    [Fact]
    public void Catalogue_names_and_levels()
    {
        var expected = new Dictionary<string, (string Name, RuleLevel Level)>
        {
            ["DA1001"] = ("UntaggedPoolAllocation", RuleLevel.Warning),
            ["DA1002"] = ("DefaultPoolTag", RuleLevel.Warning),
            ["DA1003"] = ("DeprecatedPoolApi", RuleLevel.Note),
            ["DA1004"] = ("ExecutableNonPagedPool", RuleLevel.Warning),
            ["DA1005"] = ("UninitializedPoolFlag", RuleLevel.Note),
            ["DA2001"] = ("WritableExecutableSection", RuleLevel.Error),
            ["DA2002"] = ("SectionNotPageAligned", RuleLevel.Warning),
            ["DA2003"] = ("IatInExecutableSection", RuleLevel.Warning),
            ["DA2004"] = ("NxCompatMissing", RuleLevel.Warning),
            ["DA3001"] = ("PhysicalMemoryMapping", RuleLevel.Warning),
            ["DA3002"] = ("PhysicalMemorySection", RuleLevel.Error),
            ["DA3003"] = ("MsrAccess", RuleLevel.Error),
            ["DA3004"] = ("PortIo", RuleLevel.Warning),
            ["DA3005"] = ("ControlRegisterWrite", RuleLevel.Error),
            ["DA3006"] = ("ProcessTermination", RuleLevel.Warning),
            ["DA3007"] = ("DynamicImportResolution", RuleLevel.Note),
            ["DA3008"] = ("PackedCode", RuleLevel.Warning),
            ["DA4001"] = ("DeviceWithoutSecureDescriptor", RuleLevel.Warning),
            ["DA4002"] = ("WorldAccessibleDevice", RuleLevel.Warning),
            ["DA4003"] = ("UnprotectedSymbolicLink", RuleLevel.Warning),
            ["DA5001"] = ("UnsignedDriver", RuleLevel.Warning),
            ["DA5002"] = ("TestSignedDriver", RuleLevel.Warning),
            ["DA5003"] = ("NoStackCookie", RuleLevel.Warning),
            ["DA5004"] = ("NoControlFlowGuard", RuleLevel.Note),
            ["DA5005"] = ("BannedCrtApi", RuleLevel.Warning),
            ["DA6001"] = ("KnownVulnerableDriver", RuleLevel.Error),
            ["DA7001"] = ("DriverNotFromDriverStore", RuleLevel.Warning),
        };
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), Pack.Value.Set.Rules.Select(r => r.Id));
        foreach (var (id, (name, level)) in expected)
            Assert.Equal((name, level), (Rule(id).Name, Rule(id).Level));
    }

    [Fact]
    public void Metadata_is_complete_for_sarif()
    {
        foreach (var rule in Pack.Value.Set.Rules)
        {
            Assert.InRange(rule.Description.Length, 40, 1024);
            Assert.Contains("```", rule.Help);
            Assert.NotEmpty(rule.References);
            Assert.All(rule.References, r => Assert.True(
                r.StartsWith("https://learn.microsoft.com/", StringComparison.Ordinal) || r == "https://www.loldrivers.io/", r));
            Assert.InRange(rule.Tags.Count + rule.Cwe.Count, 1, 10);
            Assert.NotEmpty(rule.MatchExamples.Concat(rule.NoMatchExamples));
            Assert.All(rule.MatchExamples.Concat(rule.NoMatchExamples), p =>
            {
                Assert.Matches("^tests/fixtures/bin/(x64|x86|arm64)/[A-Za-z0-9_{}-]+\\.sys$", p);
                Assert.True(File.Exists(Path.Combine(RepoPaths.Root, p)), p);
            });
            if (rule.Tags.Contains("security")) Assert.NotNull(rule.SecuritySeverity);
        }
        Assert.NotNull(Rule("DA2001").SecuritySeverity);
    }

    [Fact]
    public void Pool_rules_on_legacy_and_modern_imports()
    {
        var legacy = new FakeFacts(imports:
        [
            Import("ntoskrnl.exe", "ExAllocatePool"), Import("ntoskrnl.exe", "ExAllocatePoolWithTag"),
            Import("ntoskrnl.exe", "ExFreePoolWithTag"), Import("ntoskrnl.exe", "_wcsnicmp"),
        ]);
        var modern = new FakeFacts(imports: [Import("ntoskrnl.exe", "ExAllocatePool2"), Import("ntoskrnl.exe", "ExFreePoolWithTag")]);

        var legacyFindings = Findings(legacy, "DA1001", "DA1003");
        Assert.Equal(
            ["DA1001 ntoskrnl.exe!ExAllocatePool", "DA1003 ntoskrnl.exe!ExAllocatePool", "DA1003 ntoskrnl.exe!ExAllocatePoolWithTag"],
            legacyFindings.Select(m => $"{m.Rule.Id} {m.Anchor.Key}"));
        Assert.Equal("drivers/test.sys imports ExAllocatePool from ntoskrnl.exe; its allocations are charged to pool tag 'None' and cannot be attributed to this driver.",
            legacyFindings[0].Message);
        Assert.Empty(Findings(modern, "DA1001", "DA1003"));
    }

    [Fact]
    public void Image_rules_on_a_hardened_and_a_weak_driver()
    {
        var hardened = new FakeFacts(
            header: MakeHeader(dllCharacteristics: 0x4160),
            sections: [Section(0, ".text", 0x1000, Text), Section(1, ".data", 0x2000, Data)],
            characteristics: Characteristics.Known.ToDictionary(k => k, k => (bool?)(k != Characteristics.IatInExecutableSection)));
        Assert.Empty(Findings(hardened, "DA2001", "DA2002", "DA2003", "DA2004", "DA5001", "DA5003", "DA5004"));

        var weak = new FakeFacts(
            header: MakeHeader(dllCharacteristics: 0x0040, sectionAlignment: 0x80),
            sections: [Section(0, ".text", 0x280, Rwx), Section(1, "INIT", 0x1000, Text)],
            characteristics: Characteristics.Known.ToDictionary(k => k, k => (bool?)(k == Characteristics.IatInExecutableSection)));
        Assert.Equal(
            ["DA2001 .text#0", "DA2002 .text#0", "DA2003 image", "DA2004 image", "DA5001 image", "DA5003 image", "DA5004 image"],
            Findings(weak, "DA2001", "DA2002", "DA2003", "DA2004", "DA5001", "DA5003", "DA5004").Select(m => $"{m.Rule.Id} {m.Anchor.Key}"));
    }

    [Fact]
    public void Unknown_signing_state_is_not_reported_as_unsigned()
    {
        Assert.Empty(Findings(new FakeFacts(), "DA5001", "DA5003", "DA5004", "DA2003"));
    }

    [Fact]
    public void Primitive_and_crt_rules()
    {
        var facts = new FakeFacts(imports:
        [
            Import("ntoskrnl.exe", "MmGetSystemRoutineAddress"), Import("ntoskrnl.exe", "IoCreateUnprotectedSymbolicLink"),
            Import("ntoskrnl.exe", "strcpy"), Import("ntoskrnl.exe", "swprintf"), Import("ntoskrnl.exe", "RtlStringCchCopyW"),
            Import("msvcrt.dll", "strcat"),
        ]);
        Assert.Equal(
            ["DA3007 ntoskrnl.exe!MmGetSystemRoutineAddress", "DA4003 ntoskrnl.exe!IoCreateUnprotectedSymbolicLink",
             "DA5005 ntoskrnl.exe!strcpy", "DA5005 ntoskrnl.exe!swprintf"],
            Findings(facts, "DA3007", "DA4003", "DA5005").Select(m => $"{m.Rule.Id} {m.Anchor.Key}"));
    }

    [Fact]
    public void Every_message_is_a_complete_sentence_naming_the_artifact()
    {
        foreach (var rule in Pack.Value.Set.Rules)
        {
            Assert.Contains("{artifact}", rule.MessageTemplate);
            Assert.EndsWith(".", rule.MessageTemplate);
        }
    }

    private static readonly ImportFact WithTag = Import("ntoskrnl.exe", "ExAllocatePoolWithTag");
    private static readonly ImportFact Pool2 = Import("ntoskrnl.exe", "ExAllocatePool2");

    /// <summary>The tags_* fixture matrix (expected/tags.json), as the call-site analysis should report it.</summary>
    private static FakeFacts TagsMatrix() => new(imports: [WithTag, Pool2, Import("ntoskrnl.exe", "ExFreePoolWithTag")])
    {
        CallsValue =
        [
            CallFeatureTests.Call(WithTag, 0x1100, 0x1100, 0, 1, null, 0x706C6548),          // C1 Help
            CallFeatureTests.Call(WithTag, 0x1210, 0x1200, 0, 0x200, 16, 0x67655278),        // C2 xReg
            CallFeatureTests.Call(WithTag, 0x1350, 0x1300, 0, 0x200, 64, 0x74736554),        // C5 Test
            CallFeatureTests.Call(WithTag, 0x1360, 0x1300, 1, 0x200, 72, null),              // C6 unknown
            CallFeatureTests.Call(WithTag, 0x1370, 0x1300, 2, 0, 88, 0x63657845),            // C7 Exec, NonPagedPool
            CallFeatureTests.Call(Pool2, 0x1380, 0x1300, 0, 0x42, 96, 0x6E496E55),           // C8 UNINITIALIZED
            CallFeatureTests.Call(Pool2, 0x1390, 0x1300, 1, 0x40, 100, 0x326F6F50),          // C9
            CallFeatureTests.Call(WithTag, 0x13a0, 0x1300, 3, 0x200, 8, 0x206B6444),         // C10 'Ddk '
            CallFeatureTests.Call(WithTag, 0x13b0, 0x1300, 4, 0x200, 8, 0),                  // C11 0
        ],
    };

    [Fact]
    public void Call_rules_on_the_tags_matrix()
    {
        Assert.Equal(
            [
                "DA1002 ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1300#3", "DA1002 ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1300#4",
                "DA1004 ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1300#2",
                "DA1005 ntoskrnl.exe!ExAllocatePool2@fn_0x1300#0",
            ],
            Findings(TagsMatrix(), "DA1002", "DA1004", "DA1005").Select(m => $"{m.Rule.Id} {m.Anchor.Key}"));
        var ddk = Findings(TagsMatrix(), "DA1002")[0];
        Assert.Equal("drivers/test.sys calls ExAllocatePoolWithTag with pool tag 'Ddk ' in the function at 0x1300 (call at 0x13a0); the allocation cannot be attributed to this driver.", ddk.Message);
        Assert.Equal("drivers/test.sys calls ExAllocatePoolWithTag with pool type or flags 0x0 (executable non-paged pool) in the function at 0x1300 (call at 0x1370).",
            Findings(TagsMatrix(), "DA1004")[0].Message);
    }

    [Fact]
    public void Executable_pool_flag_of_ExAllocatePool2_is_DA1004()
    {
        var facts = new FakeFacts(imports: [Pool2]) { CallsValue = [CallFeatureTests.Call(Pool2, 0x1010, 0x1000, 0, 0x80, 16, 0x74736554)] };
        Assert.Equal(["DA1004"], Findings(facts, "DA1002", "DA1004", "DA1005").Select(m => m.Rule.Id));
    }

    /// <summary>primitives.sys as the scanner should describe it.</summary>
    private static FakeFacts Primitives(bool withSddl = true) => new(imports:
        [.. new[] { "MmMapIoSpace", "IoCreateDevice", "IoCreateSymbolicLink", "ZwOpenSection", "ZwMapViewOfSection", "RtlInitUnicodeString" }
            .Select(n => Import("ntoskrnl.exe", n))])
    {
        StringsValue = withSddl
            ? [new StringFact(@"\Device\PhysicalMemory", true, 0x3000, ".rdata"), new StringFact("D:P(A;;GA;;;WD)", true, 0x3040, ".rdata")]
            : [new StringFact(@"\Device\PhysicalMemory", true, 0x3000, ".rdata")],
        ReferencedStringRvas = new HashSet<uint> { 0x3000, 0x3040 },
        InstructionsValue =
        [
            new InstructionFact(0x1010, "rdmsr", null, 0x1000), new InstructionFact(0x1020, "wrmsr", null, 0x1000),
            new InstructionFact(0x1110, "in", null, 0x1100), new InstructionFact(0x1120, "out", null, 0x1100),
            new InstructionFact(0x1210, "mov", "cr0", 0x1200), new InstructionFact(0x1220, "mov", "cr4", 0x1200),
            new InstructionFact(0x1230, "mov", "cr8", 0x1200),
        ],
    };

    [Fact]
    public void Primitive_and_device_rules_on_primitives()
    {
        Assert.Equal(
            [
                "DA3001 ntoskrnl.exe!MmMapIoSpace", "DA3002 \\Device\\PhysicalMemory#utf16",
                "DA3003 rdmsr@fn_0x1000#0", "DA3003 wrmsr@fn_0x1000#0", "DA3004 in@fn_0x1100#0", "DA3004 out@fn_0x1100#0",
                "DA3005 mov@cr0@fn_0x1200#0", "DA3005 mov@cr4@fn_0x1200#0", "DA4002 D:P(A;;GA;;;WD)#utf16",
            ],
            Findings(Primitives(), "DA3001", "DA3002", "DA3003", "DA3004", "DA3005", "DA3006", "DA4001", "DA4002").Select(m => $"{m.Rule.Id} {m.Anchor.Key}"));
        Assert.Equal("drivers/test.sys executes wrmsr 1 time(s) in the function at 0x1000 (first at 0x1020); check that no request chooses the register or the value.",
            Findings(Primitives(), "DA3003")[1].Message);
        // Without any SDDL string the device is reported by DA4001, not DA4002.
        Assert.Equal(["DA4001 ntoskrnl.exe!IoCreateDevice"],
            Findings(Primitives(withSddl: false), "DA4001", "DA4002").Select(m => $"{m.Rule.Id} {m.Anchor.Key}"));
    }

    [Theory]
    [InlineData("D:P(A;;GA;;;SY)(A;;GA;;;BA)", false)]
    [InlineData("D:P(A;;GA;;;SY)(A;;GR;;;BU)", true)]
    [InlineData("D:(A;;GA;;;S-1-1-0)", true)]
    [InlineData("D:P(D;;GA;;;WD)(A;;GA;;;SY)", false)]
    [InlineData("O:BAD:P(A;;GA;;;WD)", false)]
    public void World_accessible_sddl(string sddl, bool expected)
    {
        var facts = new FakeFacts { StringsValue = [new StringFact(sddl, true, 0x3000, ".rdata")], ReferencedStringRvas = new HashSet<uint> { 0x3000 } };
        Assert.Equal(expected, Findings(facts, "DA4002").Count == 1);
    }

    [Fact]
    public void World_accessible_sddl_counts_only_when_the_code_uses_it()
    {
        // wdmsec.lib's table: all seven SDDL_DEVOBJ_* strings are linked in, the driver uses the admin-only one.
        string[] table =
        [
            "D:P", "D:P(A;;GA;;;SY)", "D:P(A;;GA;;;SY)(A;;GRGX;;;BA)", "D:P(A;;GA;;;SY)(A;;GA;;;BA)",
            "D:P(A;;GA;;;SY)(A;;GRGWGX;;;BA)(A;;GR;;;WD)", "D:P(A;;GA;;;SY)(A;;GRGWGX;;;BA)(A;;GRGW;;;WD)(A;;GR;;;RC)",
            "D:P(A;;GA;;;SY)(A;;GRGWGX;;;BA)(A;;GRGWGX;;;WD)(A;;GRGWGX;;;RC)",
        ];
        var strings = table.Select((s, i) => new StringFact(s, true, 0x3000 + (uint)i * 0x80, ".rdata")).ToList();
        var adminOnly = new FakeFacts { StringsValue = strings, ReferencedStringRvas = new HashSet<uint> { 0x3000 + 3 * 0x80 } };
        Assert.Empty(Findings(adminOnly, "DA4002"));
        var world = new FakeFacts { StringsValue = strings, ReferencedStringRvas = new HashSet<uint> { 0x3000 + 5 * 0x80 } };
        Assert.Equal(["D:P(A;;GA;;;SY)(A;;GRGWGX;;;BA)(A;;GRGW;;;WD)(A;;GR;;;RC)#utf16"], Findings(world, "DA4002").Select(m => m.Anchor.Key));
    }

    [Fact]
    public void Code_rules_are_reported_not_evaluated_when_the_code_is_not()
    {
        var facts = new FakeFacts(imports: [Import("ntoskrnl.exe", "ExAllocatePoolWithTag")])
        {
            StringsValue = [new StringFact("D:P(A;;GA;;;WD)", true, 0x3000, ".rdata")],
            CodeNotEvaluatedValue = "no code analysis for ARM64 images",
        };
        var notEvaluated = new List<Rule>();
        var matches = Set.Evaluate(facts, notEvaluated);
        Assert.DoesNotContain(matches, m => m.Rule.Id is "DA3003" or "DA3004" or "DA3005" or "DA4002" or "DA1004");
        // Every rule reading code whose import prerequisites hold; DA1005 needs other imports, DA4003 none of this image's.
        Assert.Equal(["DA1002", "DA1004", "DA3003", "DA3004", "DA3005", "DA4002"], notEvaluated.Select(r => r.Id).Where(id => id != "DA1005"));
        // The same image with its code analysed: nothing is "not evaluated".
        var analysed = new List<Rule>();
        Set.Evaluate(new FakeFacts(imports: [Import("ntoskrnl.exe", "ExAllocatePoolWithTag")]), analysed);
        Assert.Empty(analysed);
    }

    [Fact]
    public void Process_termination_without_protection_check()
    {
        var bare = new FakeFacts(imports: [Import("ntoskrnl.exe", "ZwTerminateProcess")]);
        var checkedFacts = new FakeFacts(imports: [Import("ntoskrnl.exe", "ZwTerminateProcess"), Import("ntoskrnl.exe", "PsIsProtectedProcessLight")]);
        Assert.Equal(["ntoskrnl.exe!ZwTerminateProcess"], Findings(bare, "DA3006").Select(m => m.Anchor.Key));
        Assert.Empty(Findings(checkedFacts, "DA3006"));
    }

    [Fact]
    public void Test_signed_driver_names_the_signer()
    {
        var signer = new SignerFact("CN=\"WDKTestCert fixtures,133700000000000000\"", "CN=\"WDKTestCert fixtures,133700000000000000\"", "01", "ab",
            DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch.AddYears(50), IsTestCertificate: false);
        var facts = new FakeFacts { SignatureValue = new SignatureFact([signer], "sha256", null) };
        var finding = Assert.Single(Findings(facts, "DA5002"));
        Assert.Equal("drivers/test.sys is signed with the test certificate CN=\"WDKTestCert fixtures,133700000000000000\"; it loads only when test signing is enabled.", finding.Message);
        Assert.Empty(Findings(new FakeFacts { SignatureValue = new SignatureFact([signer with { Subject = "CN=Contoso", IsTestCertificate = false }], "sha256", null) }, "DA5002"));
    }

    [Fact]
    public void Known_vulnerable_needs_the_list_and_warns_without_it()
    {
        var warning = Assert.Single(Set.Warnings, w => w.File == "rules/DA6001.yaml");
        Assert.Contains("@known-vulnerable", warning.Message);
        const string hash = "0000000000000000000000000000000000000000000000000000000000000abc";
        Assert.Empty(Findings(new FakeFacts { FileSha256Value = hash }, "DA6001"));

        var withList = RuleSet.Load(
            [new RuleSource("rules/DA6001.yaml", File.ReadAllText(Path.Combine(RepoPaths.Rules, "DA6001.yaml")))],
            new RuleLoadOptions { ResolveList = (r, _) => r == "@known-vulnerable" ? new ListContent($"[{{\"KnownVulnerableSamples\": [{{\"Authentihash\": {{\"SHA256\": \"{hash}\"}}}}]}}]", "drivers.json") : null });
        Assert.Empty(withList.Warnings);
        Assert.Single(withList.Evaluate(new FakeFacts { AuthenticodeSha256Value = hash }));
        Assert.Empty(withList.Evaluate(new FakeFacts { FileSha256Value = hash }));   // an Authentihash entry is not a file hash
    }

    [Theory]
    [InlineData("dump", "tcpip.sys", @"\SystemRoot\System32\drivers\tcpip.sys", false)]
    [InlineData("dump", "ntoskrnl.exe", @"\SystemRoot\system32\ntoskrnl.exe", false)]
    [InlineData("dump", "mydrv.sys", @"\SystemRoot\System32\DriverStore\FileRepository\mydrv.inf_amd64_0123\mydrv.sys", false)]
    [InlineData("dump", "mydrv.sys", @"\??\C:\WINDOWS\system32\drivers\mydrv.sys", false)]
    [InlineData("dump", "mydrv.sys", @"\??\C:\Users\me\AppData\Local\Temp\mydrv.sys", true)]
    [InlineData("dump", "mydrv.sys", @"\SystemRoot\System32\drivers\sub\mydrv.sys", false)]
    [InlineData("dump", "WdFilter.sys", @"\SystemRoot\system32\drivers\wd\WdFilter.sys", false)]
    [InlineData("dump", "mydrv.sys", @"\??\d:\windows\SYSTEM32\DRIVERS\mydrv.sys", false)]
    [InlineData("dump", "mydrv.sys", @"\??\E:\Windows\System32\DriverStore\FileRepository\a.inf_x\sub\mydrv.sys", false)]
    [InlineData("dump", "kdcom.dll", @"\SystemRoot\System32\kdcom.dll", false)]
    [InlineData("dump", "mydrv.sys", @"\SystemRoot\System32\drivers\..\..\Temp\mydrv.sys", true)]
    [InlineData("dump", "mydrv.sys", @"\SystemRoot\System32\Tasks\mydrv.sys", true)]
    [InlineData("dump", "mydrv.sys", @"\SystemRoot\System32\DriverStore\Temp\mydrv.sys", true)]
    [InlineData("dump", "mydrv.sys", @"\??\C:\Windows\Temp\mydrv.sys", true)]
    [InlineData("dump", "mydrv.sys", @"\SystemRoot\System32\driversX\mydrv.sys", true)]
    [InlineData("dump", "{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F}.sys", @"\SystemRoot\System32\drivers\{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F}.sys", true)]
    [InlineData("dump", "2f4e1d6c-6b3a-4c1f-9e8d-7a1b2c3d4e5f", @"\SystemRoot\System32\drivers\2f4e1d6c-6b3a-4c1f-9e8d-7a1b2c3d4e5f", true)]
    [InlineData("file", "{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F}.sys", @"C:\tmp\{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F}.sys", false)]
    [InlineData("unloaded", "{2F4E1D6C-6B", "{2F4E1D6C-6B", true)]
    [InlineData("unloaded", "2f4e1d6c-6b3", "2f4e1d6c-6b3", true)]
    [InlineData("unloaded", "dam.sys", "dam.sys", false)]
    [InlineData("unloaded", "mcupdate_Gen", "mcupdate_Gen", false)]
    public void Driver_not_from_driver_store(string origin, string name, string path, bool expected)
    {
        var facts = new FakeFacts { ModuleValue = new ModuleFact(origin, name, path, origin == "dump" ? 0xfffff80000000000 : null) };
        Assert.Equal(expected, Findings(facts, "DA7001").Count == 1);
    }

    [Fact]
    public void Only_rules_on_module_provenance_run_on_listed_modules()
    {
        Assert.Equal(["DA7001"], Pack.Value.Set.ModuleOnlyRuleIds);
        var guid = new FakeFacts { ModuleValue = new ModuleFact("unloaded", "{2F4E1D6C-6B", "{2F4E1D6C-6B", 0xfffff80002100000) };
        Assert.Equal(["DA7001"], Pack.Value.Set.EvaluateModuleOnly(guid).Select(m => m.Rule.Id));
        var mixed = RuleSet.Load([new RuleSource("r.yaml", """
            id: X0001
            name: Mixed
            title: t
            level: warning
            precision: high
            description: A dump module that does not import ExAllocatePool2.
            help: Nothing to do.
            message: "{artifact} does not import ExAllocatePool2."
            match:
              all:
                - module: {origin: dump}
                - not: {import: ExAllocatePool2}
            """)]);
        Assert.Empty(mixed.ModuleOnlyRuleIds);
        Assert.Empty(mixed.EvaluateModuleOnly(new FakeFacts { ModuleValue = new ModuleFact("dump", "a.sys", "a.sys", 0) }));
        Assert.Single(mixed.Evaluate(new FakeFacts { ModuleValue = new ModuleFact("dump", "a.sys", "a.sys", 0) }));
    }

    private static List<RuleMatch> Findings(FakeFacts facts, params string[] ids) =>
        [.. Pack.Value.Set.Evaluate(facts).Where(m => ids.Contains(m.Rule.Id))];
}
