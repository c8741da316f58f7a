using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;
using static DriverAudit.Rules.Tests.FakeFacts;

namespace DriverAudit.Rules.Tests;

/// <summary>The shipped pack (rules/*.yaml, read from disk) loads, follows the catalogue and behaves on typical facts.</summary>
public class DefaultPackTests
{
    private static readonly Lazy<(string[] Files, RuleSet Set)> Pack = new(() =>
    {
        var dir = Path.Combine(RepoRoot(), "rules");
        var files = Directory.GetFiles(dir, "*.yaml").Order(StringComparer.Ordinal).ToArray();
        var sources = files.Select(f => new RuleSource("rules/" + Path.GetFileName(f), File.ReadAllText(f)));
        return (files, RuleSet.Load(sources));
    });

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DriverAudit.sln"))) return dir.FullName;
        throw new InvalidOperationException("DriverAudit.sln not found above " + AppContext.BaseDirectory);
    }

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
                Assert.Matches("^tests/fixtures/bin/(x64|x86)/[A-Za-z0-9_{}-]+\\.sys$", p);
                Assert.True(File.Exists(Path.Combine(RepoRoot(), p)), p);
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

    private static List<RuleMatch> Findings(FakeFacts facts, params string[] ids) =>
        [.. Pack.Value.Set.Evaluate(facts).Where(m => ids.Contains(m.Rule.Id))];
}
