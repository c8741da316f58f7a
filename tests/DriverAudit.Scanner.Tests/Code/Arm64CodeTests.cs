using System.Globalization;
using System.Text.RegularExpressions;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Cli;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Pe;
using DriverAudit.Scanner.RulePack;
using Xunit;

namespace DriverAudit.Scanner.Tests.Code;

/// <summary>
/// ARM64 code analysis on the clang-built fixtures (tests/fixtures/bin/arm64): call sites agree with llvm-objdump,
/// system-register accesses are the instruction facts, port I/O is "not applicable", and ARM32 says "not evaluated".
/// The tag matrix itself is FixtureCodeTests (expected/tags.json lists the ARM64 binaries).
/// </summary>
public partial class Arm64CodeTests
{
    private static readonly RuleSet Pack = RuleSet.Load(RuleSources.Embedded());

    [GeneratedRegex(@"^\s*([0-9a-f]+):\s+(?:[0-9a-f]{2} ){4}\s*(\S+)\s*(.*)$")]
    private static partial Regex Line();

    private static Dictionary<ulong, (string Mnemonic, string Operands)> Listing(string name)
    {
        var map = new Dictionary<ulong, (string, string)>();
        foreach (var raw in File.ReadLines(Path.Combine(RepoPaths.Fixtures, "expected", "arm64", name + ".objdump.txt")))
            if (Line().Match(raw) is { Success: true } m)
                map[ulong.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture)] = (m.Groups[2].Value, m.Groups[3].Value);
        return map;
    }

    [Theory]
    [InlineData("tags_O0")]
    [InlineData("tags_O2")]
    [InlineData("tags_Os")]
    [InlineData("wrappers_O0")]
    public void Every_recovered_call_site_is_a_branch_in_the_llvm_objdump_listing(string name)
    {
        var (image, source) = FixtureCodeTests.Open($"arm64/{name}.sys");
        using (source)
        {
            var listing = Listing(name);
            var facts = new CodeFacts(image);
            Assert.Null(facts.NotEvaluatedReason);
            Assert.NotEmpty(facts.CallSites);
            foreach (var site in facts.CallSites)
            {
                var (mnemonic, operands) = listing[image.ImageBase + site.SiteRva];
                if ((site.Shape & CallSiteShape.ViaThunk) != 0)
                {
                    // bl/b to a thunk: adrp x16; ldr x16, [x16, #off]; br x16.
                    Assert.Contains(mnemonic, (string[])["bl", "b"]);
                    var thunk = ulong.Parse(operands.Split(' ')[0][2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    Assert.Equal("adrp", listing[thunk].Mnemonic);
                    Assert.Equal("ldr", listing[thunk + 4].Mnemonic);
                    Assert.Equal("br", listing[thunk + 8].Mnemonic);
                    Assert.Equal((site.Shape & CallSiteShape.TailCall) != 0, mnemonic == "b");
                }
                else Assert.Equal((site.Shape & CallSiteShape.TailCall) != 0 ? "br" : "blr", mnemonic);
            }
        }
    }

    [Fact]
    public void O0_code_reloads_the_import_pointer_and_the_tag_from_stack_slots()
    {
        // RegisterReuse at -O0 spills the IAT value to [sp] and the tag to [sp, #28], reloading both per call.
        var (image, source) = FixtureCodeTests.Open("arm64/tags_O0.sys");
        using (source)
        {
            var sites = new CodeFacts(image).CallSitesOf("ExAllocatePoolWithTag").Where(s => s.Arg(2) == ArgValue.Known(0x67655278)).ToList();
            Assert.Equal(3, sites.Count);
            Assert.Equal([0x10UL, 0x20UL, 0x30UL], sites.Select(s => s.Arg(1).Value));
            Assert.All(sites, s => Assert.Equal(CallSiteShape.ViaRegister, s.Shape));
        }
    }

    [Fact]
    public void System_register_accesses_are_the_instruction_facts_with_their_register_names()
    {
        var (image, source) = FixtureCodeTests.Open("arm64/primitives.sys");
        using (source)
        {
            var hits = new CodeFacts(image).Instructions.Select(h => h.ControlRegister is { } r ? $"{h.Mnemonic} {r}" : h.Mnemonic).ToList();
            // Not cntvct_el0 (an EL0 counter) and not msr DAIFSet (interrupt masking): ordinary kernel code.
            Assert.Equal(["msr sctlr_el1", "msr ttbr0_el1", "msr vbar_el1", "msr pan", "mrs mpidr_el1"], hits);
            Assert.All(new CodeFacts(image).Instructions, h => Assert.NotNull(h.FunctionRva));
        }
    }

    private static (string[] Findings, string[] NotEvaluated, string[] Messages) Scan(string path)
    {
        var analyzer = new InputAnalyzer(Pack, new ScanOptions(1, RuleLevel.Note, false, ComputeHashes: false));
        var report = analyzer.Analyze(new InputFile(path, Path.GetFileName(path), Explicit: true));
        var artifact = Assert.Single(report.Artifacts);
        var notes = artifact.Notifications.Where(n => n.Code == NotificationCodes.RuleNotEvaluated).ToList();
        return ([.. artifact.Findings.Select(f => $"{f.Rule.Id} {f.Anchor.Key}").Order(StringComparer.Ordinal)],
            [.. notes.Select(n => n.RuleId!)], [.. artifact.Findings.Select(f => f.Message).Concat(notes.Select(n => n.Message))]);
    }

    [Fact]
    public void Msr_rules_fire_on_arm64_and_port_io_is_not_applicable()
    {
        var (findings, notEvaluated, messages) = Scan(RepoPaths.Fixture("arm64", "primitives.sys"));
        var code = findings.Where(f => f.StartsWith("DA300", StringComparison.Ordinal)).ToList();
        Assert.Equal(
        [
            "DA3003 mrs@mpidr_el1@fn_0x1020#0", "DA3003 msr@pan@fn_0x1018#0", "DA3003 msr@sctlr_el1@fn_0x1000#0",
            "DA3003 msr@ttbr0_el1@fn_0x1008#0", "DA3003 msr@vbar_el1@fn_0x1010#0",
            "DA3005 msr@pan@fn_0x1018#0", "DA3005 msr@sctlr_el1@fn_0x1000#0", "DA3005 msr@ttbr0_el1@fn_0x1008#0", "DA3005 msr@vbar_el1@fn_0x1010#0",
        ], code);
        Assert.Contains(messages, m => m.Contains("executes msr sctlr_el1 1 time(s)", StringComparison.Ordinal));
        // Port I/O does not exist on ARM64: said, not silent.
        Assert.Equal(["DA3004"], notEvaluated);
        Assert.Contains(messages, m => m.Contains("DA3004 PortIo not evaluated: not applicable to ARM64 images", StringComparison.Ordinal));
    }

    [Fact]
    public void Arm32_pool_call_sites_are_unknown_not_zero()
    {
        var pe = new PeBuilder(is64Bit: false) { Machine = 0x01C4 }
            .AddSection(".text", PeBuilder.TextCharacteristics, new byte[0x200])
            .Import("ntoskrnl.exe", "ExAllocatePoolWithTag", "ExFreePoolWithTag");
        using var t = new TempDir();
        var path = t.File("arm32.sys", pe.Build().File);
        using var source = DriverAudit.Scanner.Images.FileImageSource.Open(path);
        var image = PeImage.TryOpen(source).Image!;
        var tags = TagIndex.Build(image, PeFacts.ImportsOf(image));
        Assert.Equal("no code analysis for ARM32 images", tags.CodeNotEvaluated);

        var json = CliRunner.Run(RepoPaths.Root, ["tags", path, "--format", "json"]);
        var line = json.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).Single(e => e.TryGetProperty("unknownTagSites", out _));
        Assert.Equal(System.Text.Json.JsonValueKind.Null, line.GetProperty("unknownTagSites").ValueKind);
        Assert.Equal("no code analysis for ARM32 images", line.GetProperty("codeNotEvaluated").GetString());
    }
}
