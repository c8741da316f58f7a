using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;
using DriverAudit.Rules.Kernel;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Pe;
using Iced.Intel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace DriverAudit.Scanner.Tests.Code;

/// <summary>
/// The names the scanner's instruction and call facts carry are the names the rule compiler accepts (one table in
/// src/Rules): whatever the scanner reports, a rule can ask for, and a rule cannot ask for what it never reports.
/// </summary>
public class VocabularyTests
{
    internal static IReadOnlyList<RuleMatch> Run(string match, IImageFacts facts)
    {
        var text = $"""
            id: TST001
            name: TestRule
            title: Test rule
            level: warning
            precision: high
            description: A rule used by tests.
            help: Do not do that.
            message: "{"{"}mnemonic{"}"} at {"{"}site{"}"}."
            match:
              {match}
            """;
        return RuleSet.Load([new RuleSource("t.yaml", text)]).Evaluate(facts);
    }

    private static void WriteCr(Assembler a, bool is64, int n) =>
        a.AddInstruction(Instruction.Create(is64 ? Iced.Intel.Code.Mov_cr_r64 : Iced.Intel.Code.Mov_cr_r32, Register.CR0 + n, is64 ? Register.RAX : Register.EAX));

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Every_control_register_write_reported_is_a_name_mov_to_accepts_and_back(bool is64)
    {
        // Writes to every architectural control register, and a read of cr2 (a read is ordinary).
        int[] crs = is64 ? [0, 2, 3, 4, 8] : [0, 2, 3, 4];
        var facts = new PeFacts(CodePe.Image(is64, CodePe.Assemble(is64, a =>
        {
            foreach (var n in crs) WriteCr(a, is64, n);
            a.AddInstruction(Instruction.Create(is64 ? Iced.Intel.Code.Mov_r64_cr : Iced.Intel.Code.Mov_r32_cr, is64 ? Register.RAX : Register.EAX, Register.CR2));
            a.ret();
        })));
        var reported = facts.Instructions.Select(i => (i.Mnemonic, i.ControlRegister)).ToList();
        Assert.Equal(crs.Select(n => (InstructionNames.Mov, (string?)$"cr{n}")), reported);
        Assert.All(reported, r => Assert.Contains(r.ControlRegister, InstructionNames.X86ControlRegisters));
        foreach (var n in crs)
            Assert.Equal($"mov cr{n}", Assert.Single(Run($"instruction: {{mov-to: [cr{n}]}}", facts)).Anchor.Values["mnemonic"]);
        // Every x86 register mov-to accepts is one the scanner reports (cr8 exists in 64-bit mode only).
        Assert.Equal(InstructionNames.X86ControlRegisters.Where(r => is64 || r != "cr8"), reported.Select(r => r.ControlRegister));
    }

    [Fact]
    public void String_port_io_is_reported_under_names_a_rule_can_ask_for()
    {
        var facts = new PeFacts(CodePe.Image(true, CodePe.Assemble(true, a => { a.insb(); a.outsd(); a.@in(al, dx); a.ret(); })));
        Assert.Equal([InstructionNames.Insb, InstructionNames.Outsd, InstructionNames.In], facts.Instructions.Select(i => i.Mnemonic));
        Assert.All(facts.Instructions, i => Assert.Contains(i.Mnemonic, InstructionNames.Mnemonics));
        Assert.Equal(["insb", "outsd"], Run("instruction: {mnemonic: [insb, outsd]}", facts).Select(m => m.Anchor.Values["mnemonic"]));
    }

    [Fact]
    public void ExFreePool2_is_a_tagged_pool_api_for_the_scanner_too()
    {
        // ExFreePool2(P, Tag, NULL, 0): the tag in edx.
        var facts = CodePe.Facts(true, a =>
        {
            a.xor(ecx, ecx);
            a.mov(edx, 0x74736554); // 'Test'
            a.xor(r8d, r8d);
            a.xor(r9d, r9d);
            a.AddInstruction(Instruction.Create(Iced.Intel.Code.Call_rm64, new MemoryOperand(Register.RIP, (long)CodePe.Va(true, CodePe.Slot(true, 0)))));
            a.ret();
        }, "ExFreePool2");
        Assert.Equal(1, PoolApis.Find("ntoskrnl.exe", "ExFreePool2")!.TagArg);
        var use = Assert.Single(TagIndex.Build(facts).Tags);
        Assert.Equal(("Test", "ExFreePool2"), (use.Tag, use.Api));
    }
}
