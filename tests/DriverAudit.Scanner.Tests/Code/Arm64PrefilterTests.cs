using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Code.Arm64;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using Xunit;

namespace DriverAudit.Scanner.Tests.Code;

/// <summary>
/// What lets instruction rules skip the ARM64 analysis (<see cref="CodeFacts.HitsFor"/> on ARM64): port I/O and x86
/// MSR rules need no decoding at all (the rule is "not applicable" there), and msr/mrs rules none when no executable
/// word has a system-register move encoding (<see cref="A64SystemMoves"/>). The answer must be the whole analysis's.
/// </summary>
public class Arm64PrefilterTests
{
    private static readonly string[] MsrMrs = [InstructionNames.Msr, InstructionNames.Mrs];
    private static readonly string[] PortIo = [InstructionNames.In, InstructionNames.Out];

    private static bool IsMove(uint w) => A64Decoder.Decode(w, 0x1000).Kind is A64Kind.Msr or A64Kind.Mrs or A64Kind.MsrImm;

    [Fact]
    public void The_candidate_masks_are_exactly_the_decoders_system_register_moves()
    {
        // The system-instruction class: every L, op0, op1, CRn, op2 and Rt, with CRm cycling through its 16 values
        // (all of it would be 4M decodes, seconds in a Debug test run) ...
        for (var n = 0u; n < 1u << 18; n++)
        {
            var low = ((n >> 8) << 12) | (n & 0xFF) | (((n * 7) + (n >> 8)) & 0xF) << 8;
            var w = 0xD500_0000u | low;
            if (IsMove(w) != A64SystemMoves.IsCandidate(w)) Assert.Fail($"0x{w:x8}: decoder {IsMove(w)}, mask {A64SystemMoves.IsCandidate(w)}");
        }
        // ... and a stride over the whole word space (other classes must be neither).
        for (ulong x = 0; x <= uint.MaxValue; x += 65521)
        {
            var w = (uint)x;
            if (IsMove(w) != A64SystemMoves.IsCandidate(w)) Assert.Fail($"0x{w:x8}: decoder {IsMove(w)}, mask {A64SystemMoves.IsCandidate(w)}");
        }
    }

    [Fact]
    public void The_vectorised_search_finds_the_first_aligned_candidate_as_a_word_by_word_loop_does()
    {
        var random = new Random(11);
        for (var round = 0; round < 400; round++)
        {
            var bytes = new byte[random.Next(0, 300)];
            random.NextBytes(bytes);
            // Random bytes are almost never candidates: plant some, aligned or not.
            for (var k = random.Next(0, 3); k > 0 && bytes.Length >= 4; k--)
            {
                var at = random.Next(0, bytes.Length - 3);
                var word = random.Next(2) == 0 ? 0xD518_1000u | (uint)random.Next(0, 32) : 0xD500_409Fu;
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), word);
            }
            var from = random.Next(0, 6);
            var expected = -1;
            for (var o = from; o + 4 <= bytes.Length; o += 4)
                if (A64SystemMoves.IsCandidate(System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(o)))) { expected = o; break; }
            Assert.Equal(expected, A64SystemMoves.IndexOfCandidate(bytes, from));
        }
    }

    public static TheoryData<string> Arm64Fixtures()
    {
        var data = new TheoryData<string>();
        foreach (var path in Directory.EnumerateFiles(Path.Combine(RepoPaths.Fixtures, "bin", "arm64")).Order(StringComparer.Ordinal))
            data.Add(Path.GetFileName(path));
        return data;
    }

    [Theory]
    [MemberData(nameof(Arm64Fixtures))]
    public void The_answer_without_the_whole_analysis_is_the_whole_analysiss_for_every_kind(string binary)
    {
        using var source = FileImageSource.Open(Path.Combine(RepoPaths.Fixtures, "bin", "arm64", binary));
        var image = PeImage.TryOpen(source).Image!;
        (string[]? Mnemonics, string[]? Registers)[] asks =
            [(MsrMrs, null), ([InstructionNames.Msr], null), ([InstructionNames.Mrs], null), (null, InstructionNames.ControlRegisters),
             (PortIo, null), ([InstructionNames.Wrmsr, InstructionNames.Rdmsr], null), (null, null)];
        var whole = new CodeFacts(image).Instructions;
        foreach (var (mnemonics, registers) in asks)
        {
            var facts = new CodeFacts(image);
            if (facts.HitsFor(mnemonics, registers) is not { } partial) continue;
            var kinds = registers is not null ? [InstructionNames.Msr] : mnemonics ?? [];
            Assert.Equal(whole.Where(h => kinds.Contains(h.Mnemonic)), partial);
        }
    }

    [Fact]
    public void Port_io_rules_decode_nothing_on_arm64()
    {
        using var source = FileImageSource.Open(RepoPaths.Fixture("arm64", "primitives.sys"));
        var facts = new PeFacts(PeImage.TryOpen(source).Image!);
        Assert.Empty(facts.InstructionsFor(PortIo, null));
        Assert.Empty(VocabularyTests.Run("instruction: {mnemonic: [in, out]}", facts));
        Assert.Empty(VocabularyTests.Run("instruction: {mnemonic: [wrmsr, rdmsr]}", facts));
        Assert.Equal(0, facts.Code.InstructionsDecoded);
        Assert.NotNull(facts.AbsentInstructions);
        // The msr/mrs rules still find what the whole analysis finds.
        Assert.Equal(5, VocabularyTests.Run("instruction: {mnemonic: [msr, mrs]}", facts).Count);
        Assert.True(facts.Code.InstructionsDecoded > 0);
    }

    [Fact]
    public void Code_without_a_system_register_move_is_not_analysed_for_msr_rules()
    {
        using var source = FileImageSource.Open(RepoPaths.Fixture("arm64", "tags_O2.sys"));
        var facts = new PeFacts(PeImage.TryOpen(source).Image!);
        Assert.Empty(facts.Code.HitsFor(MsrMrs, null)!);
        Assert.Empty(VocabularyTests.Run("instruction: {mnemonic: [msr, mrs]}", facts));
        Assert.Empty(VocabularyTests.Run("instruction: {mov-to: [sctlr_el1, pan]}", facts));
        Assert.Equal(0, facts.Code.InstructionsDecoded);
        // Call sites still need (and get) the analysis.
        Assert.NotEmpty(facts.Calls);
        Assert.True(facts.Code.InstructionsDecoded > 0);
    }
}
