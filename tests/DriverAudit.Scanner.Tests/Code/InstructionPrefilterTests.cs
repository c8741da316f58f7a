using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using Iced.Intel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace DriverAudit.Scanner.Tests.Code;

/// <summary>
/// What lets instruction rules skip the whole disassembly (<see cref="CodeFacts.HitsFor"/>): an opcode byte search,
/// then a decode of the x64 .pdata functions around the candidates. Its answer must be the whole map's, restricted to
/// the kinds asked for; it may only say "absent" when the disassembly could not have found the instruction.
/// </summary>
public class InstructionPrefilterTests
{
    private static readonly string[] Msr = [InstructionNames.Wrmsr, InstructionNames.Rdmsr];
    private static readonly string[] Cr0 = ["cr0"];

    private static PeFacts Pe(bool is64, Action<Assembler> build) => new(CodePe.Image(is64, CodePe.Assemble(is64, build)));

    private static IReadOnlyList<RuleMatch> Run(string match, IImageFacts facts) => VocabularyTests.Run(match, facts);

    [Fact]
    public void Iced_decodes_msr_access_and_control_register_writes_only_from_the_searched_opcodes()
    {
        // If an Iced upgrade added another encoding (VEX, an immediate form) the byte search would miss it.
        var seen = new HashSet<uint>();
        foreach (var code in Enum.GetValues<Iced.Intel.Code>())
        {
            var op = code.ToOpCode();
            uint? expected = code.Mnemonic() switch
            {
                Mnemonic.Wrmsr => 0x30,
                Mnemonic.Rdmsr => 0x32,
                Mnemonic.Mov when op.OpCount > 0 && op.Op0Kind == OpCodeOperandKind.cr_reg => 0x22,
                _ => null,
            };
            if (expected is not { } opcode) continue;
            Assert.Equal(EncodingKind.Legacy, op.Encoding);
            Assert.Equal(OpCodeTableKind.T0F, op.Table);
            Assert.Equal(opcode, op.OpCode);
            seen.Add(opcode);
        }
        Assert.Equal([0x22u, 0x30u, 0x32u], seen.Order());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Code_without_the_opcodes_is_not_disassembled_for_msr_and_control_register_rules(bool is64)
    {
        var facts = Pe(is64, a => { a.@in(al, dx); a.@out(dx, al); a.ret(); });
        Assert.Empty(facts.InstructionsFor(Msr, null));
        Assert.Empty(facts.InstructionsFor(null, Cr0));
        Assert.Empty(Run("instruction: {mnemonic: [wrmsr, rdmsr]}", facts));
        Assert.Empty(Run("instruction: {mov-to: [cr0, cr4]}", facts));
        Assert.Equal(0, facts.Code.InstructionsDecoded);
        // in/out are one-byte opcodes: no search rules them out, so that rule disassembles and finds them.
        Assert.Null(facts.Code.HitsFor([InstructionNames.In, InstructionNames.Out], null));
        Assert.Equal(2, Run("instruction: {mnemonic: [in, out]}", facts).Count);
        Assert.True(facts.Code.InstructionsDecoded > 0);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Code_with_the_instruction_is_disassembled_and_reported(bool is64)
    {
        var facts = Pe(is64, a => { a.rdmsr(); a.AddInstruction(Instruction.Create(is64 ? Iced.Intel.Code.Mov_cr_r64 : Iced.Intel.Code.Mov_cr_r32, Register.CR4, is64 ? Register.RAX : Register.EAX)); a.ret(); });
        Assert.Empty(facts.Code.HitsFor([InstructionNames.Wrmsr], null)!);
        Assert.Equal(0, facts.Code.InstructionsDecoded);
        Assert.Equal("rdmsr", Assert.Single(Run("instruction: {mnemonic: [wrmsr, rdmsr]}", facts)).Anchor.Values["mnemonic"]);
        Assert.Equal("mov cr4", Assert.Single(Run("instruction: {mov-to: [cr0, cr4]}", facts)).Anchor.Values["mnemonic"]);
        Assert.Empty(Run("instruction: {mov-to: [cr0]}", facts));
    }

    [Fact]
    public void Opcode_bytes_inside_another_instruction_are_only_a_candidate()
    {
        // mov eax, 0x320F: the bytes 0F 32 are an immediate, not an rdmsr. The search says "maybe", the disassembly "no".
        var facts = Pe(true, a => { a.mov(eax, 0x320F); a.ret(); });
        Assert.Empty(Run("instruction: {mnemonic: [wrmsr, rdmsr]}", facts));
        Assert.True(facts.Code.InstructionsDecoded > 0);
    }

    [Fact]
    public void Arm64_only_mnemonics_need_no_x86_disassembly()
    {
        var facts = Pe(true, a => { a.wrmsr(); a.ret(); });
        Assert.Empty(facts.Code.HitsFor([InstructionNames.Msr, InstructionNames.Mrs], null)!);
        Assert.Empty(Run("instruction: {mnemonic: [msr, mrs]}", facts));
        Assert.Equal(0, facts.Code.InstructionsDecoded);
    }

    public static TheoryData<string> X86AndX64Fixtures()
    {
        var data = new TheoryData<string>();
        foreach (var dir in (string[])["x64", "x86"])
            foreach (var path in Directory.EnumerateFiles(Path.Combine(RepoPaths.Fixtures, "bin", dir)).Order(StringComparer.Ordinal))
                data.Add(dir + "/" + Path.GetFileName(path));
        return data;
    }

    [Theory]
    [MemberData(nameof(X86AndX64Fixtures))]
    public void The_answer_without_the_whole_map_is_the_whole_maps_for_every_kind(string binary)
    {
        using var source = FileImageSource.Open(Path.Combine(RepoPaths.Fixtures, "bin", binary));
        if (PeImage.TryOpen(source).Image is not { } image) return; // the deliberately broken inputs
        (string[]? Mnemonics, string[]? Registers)[] asks = [(Msr, null), ([InstructionNames.Wrmsr], null), ([InstructionNames.Rdmsr], null), (null, Cr0)];
        var whole = new CodeFacts(image).Instructions;
        foreach (var (mnemonics, registers) in asks)
        {
            var facts = new CodeFacts(image);
            if (facts.HitsFor(mnemonics, registers) is not { } partial) continue;
            var kinds = registers is not null ? ["mov"] : mnemonics!;
            var expected = whole.Where(h => kinds.Contains(h.Mnemonic)).ToList();
            Assert.Equal(expected, partial);
        }
    }

    [Fact]
    public void Msr_and_control_register_hits_of_an_x64_driver_come_from_its_pdata_functions_alone()
    {
        using var source = FileImageSource.Open(Path.Combine(RepoPaths.Fixtures, "bin", "x64", "primitives.sys"));
        var image = PeImage.TryOpen(source).Image!;
        var whole = new CodeFacts(image);
        var all = whole.Instructions;
        var partialFacts = new CodeFacts(image);
        var partial = partialFacts.HitsFor(Msr, null);
        Assert.NotNull(partial);
        Assert.Equal(all.Where(h => h.Mnemonic is "wrmsr" or "rdmsr"), partial);
        Assert.NotEmpty(partial);
        Assert.All(partial, h => Assert.NotNull(h.FunctionRva));
        Assert.InRange(partialFacts.InstructionsDecoded, 1, whole.InstructionsDecoded - 1);
        Assert.Equal(all.Where(h => h.Mnemonic == "mov"), partialFacts.HitsFor(null, Cr0));
    }
}
