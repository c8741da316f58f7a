using System.Globalization;
using System.Text.RegularExpressions;
using DriverAudit.Scanner.Code.Arm64;
using Xunit;

namespace DriverAudit.Scanner.Tests.Code;

/// <summary>
/// The ARM64 decoder against llvm-objdump, instruction by instruction: the committed listings
/// (tests/fixtures/expected/arm64/*.objdump.txt, made by build.sh with llvm-objdump -d --triple=aarch64) hold each
/// instruction's bytes and llvm's text. Every instruction of a modelled class must print exactly as llvm prints it;
/// every other one must not claim to be modelled.
/// </summary>
public partial class Arm64DecoderTests
{
    [GeneratedRegex(@"^\s*([0-9a-f]+):\s+([0-9a-f]{2}) ([0-9a-f]{2}) ([0-9a-f]{2}) ([0-9a-f]{2})\s+(.*)$")]
    private static partial Regex Line();

    // llvm mnemonics of the classes the decoder models (operands decide for some: SIMD registers, register offsets).
    private static readonly HashSet<string> Modelled =
    [
        "adrp", "adr", "add", "adds", "sub", "subs", "cmp", "cmn", "mov", "movz", "movn", "movk", "orr", "and", "eor", "ands", "tst",
        "bic", "orn", "eon", "bics", "mvn", "ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrsw", "ldur", "ldurb", "ldurh", "ldursw", "str", "strb",
        "strh", "stur", "sturb", "sturh", "ldp", "stp", "ldpsw", "ldnp", "stnp", "b", "bl", "blr", "br", "ret", "cbz", "cbnz", "tbz", "tbnz",
        "msr", "mrs", "nop",
    ];

    public static TheoryData<string> Listings()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Path.Combine(RepoPaths.Fixtures, "expected", "arm64"), "*.objdump.txt").Order(StringComparer.Ordinal))
            data.Add(Path.GetFileName(f));
        return data;
    }

    [Theory]
    [MemberData(nameof(Listings))]
    public void Every_modelled_instruction_prints_as_llvm_objdump_prints_it(string listing)
    {
        Check(Path.Combine(RepoPaths.Fixtures, "expected", "arm64", listing), out var compared, out var mismatches);
        Assert.Empty(mismatches);
        Assert.True(compared >= 20, $"only {compared} instructions compared in {listing}");
    }

    /// <summary>Compares one listing: how many instructions were compared, and every disagreement.</summary>
    internal static void Check(string path, out int compared, out List<string> mismatches)
    {
        compared = 0;
        mismatches = [];
        foreach (var raw in File.ReadLines(path))
        {
            var m = Line().Match(raw);
            if (!m.Success) continue;
            var pc = ulong.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            uint word = 0;
            for (var b = 0; b < 4; b++) word |= uint.Parse(m.Groups[2 + b].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture) << (8 * b);
            var llvm = Normalise(m.Groups[6].Value);
            var mnemonic = llvm.Split('\t')[0];
            var mine = A64Format.TryFormat(A64Decoder.Decode(word, pc));
            var expectModelled = Modelled.Contains(mnemonic.Split('.')[0]) && !UsesUnmodelledOperands(llvm);
            if (mine is null)
            {
                if (expectModelled) mismatches.Add($"{pc:x}: {word:x8} llvm '{llvm}', decoder: not modelled");
                continue;
            }
            compared++;
            if (mine != llvm) mismatches.Add($"{pc:x}: {word:x8} llvm '{llvm}', decoder '{mine}'");
        }
    }

    // "<.text+0x4>" symbol annotations and "// =4096" comments are llvm's, not the instruction's.
    private static string Normalise(string text)
    {
        var s = Regex.Replace(text, @"\s*<[^>]*>", "");
        var comment = s.IndexOf("//", StringComparison.Ordinal);
        if (comment >= 0) s = s[..comment];
        return s.TrimEnd();
    }

    // SIMD/FP registers, register-offset or extended-register addressing and register-register arithmetic are not modelled.
    private static bool UsesUnmodelledOperands(string llvm)
    {
        var parts = llvm.Split('\t');
        if (parts.Length < 2) return false;
        var ops = parts[1];
        if (Regex.IsMatch(ops, @"(^|[\s,\[])([qdshbv]\d+)")) return true;
        if (Regex.IsMatch(ops, @"\[\w+, [wx]\d+")) return true;
        var mnemonic = parts[0];
        // add/sub/cmp with a register operand (shifted or extended register forms).
        if (mnemonic is "add" or "adds" or "sub" or "subs" or "cmp" or "cmn" && !Regex.IsMatch(ops, @", #-?\d+(, lsl #12)?$")) return true;
        return false;
    }

    [Theory]
    [InlineData(0u, 0x3Cu, 0x3Fu, 64, null)]                 // all ones: reserved
    [InlineData(0u, 0u, 0x3Cu, 32, 0x5555_5555UL)]            // 2-bit element 01
    [InlineData(0u, 0u, 0u, 32, 0x1UL)]                      // 32-bit element, one bit
    [InlineData(1u, 0u, 0x3Eu, 64, 0x7FFF_FFFF_FFFF_FFFFUL)] // 63 ones
    [InlineData(0u, 1u, 0u, 32, 0x8000_0000UL)]              // one bit rotated right by 1
    public void Bitmask_immediates_follow_the_architecture(uint n, uint immr, uint imms, int size, ulong? expected) =>
        Assert.Equal(expected, A64Decoder.DecodeBitMask(n, immr, imms, size));

    [Fact]
    public void Instructions_that_end_a_path_are_the_unconditional_ones()
    {
        Assert.True(A64Decoder.Decode(0xD65F03C0, 0).EndsFlow);  // ret
        Assert.True(A64Decoder.Decode(0xD61F0200, 0).EndsFlow);  // br x16
        Assert.True(A64Decoder.Decode(0x14000009, 0).EndsFlow);  // b
        Assert.False(A64Decoder.Decode(0x54000100, 0).EndsFlow); // b.eq
        Assert.False(A64Decoder.Decode(0x94000000, 0).EndsFlow); // bl
        Assert.True(A64Decoder.Decode(0xD43E0000, 0).EndsFlow);  // brk
    }
}
