using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using DriverAudit.TestSupport;
using Xunit;

namespace DriverAudit.Scanner.Tests.Code;

/// <summary>
/// How descent reaches code, each way on its own: an `in al, dx` that only one way leads to is found, with the
/// function it is in, exactly when that way is followed (conditional branch targets; addresses taken by lea
/// (x64), push and mov (x86); not by other instructions' immediates).
/// </summary>
public sealed class CodeMapDescentTests
{
    private const uint Text = CodePe.TextRva;
    private const uint Target = Text + 0x10; // where the only `in al, dx; ret` is placed

    private static IReadOnlyList<InstructionHit> Hits(bool is64, byte[] entry)
    {
        var text = new byte[0x20];
        Array.Fill(text, (byte)0xCC); // int3 between the pieces: never decoded, never text
        entry.CopyTo(text, 0);
        text[0x10] = 0xEC; // in al, dx
        text[0x11] = 0xC3; // ret
        var builder = MiniPe.Builder(is64, is64 ? CodePe.Base64 : CodePe.Base32, 0, 0,
            new MiniSection(".text", Text, text, MiniSection.Code),
            new MiniSection(".data", CodePe.DataRva, new byte[0x200], MiniSection.WritableData));
        builder.EntryPoint = Text;
        var open = PeImage.TryOpen(new MemoryImageSource(builder.Build().File, ImageLayout.File, new ImageOrigin("descent.sys")));
        var image = open.Image ?? throw new InvalidOperationException(open.Reason);
        return new CodeFacts(image, []).Instructions;
    }

    private static byte[] Le32(uint v) => BitConverter.GetBytes(v);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_conditional_branch_target_is_part_of_the_function(bool is64)
    {
        // test ecx, ecx; jz Target; ret
        var hit = Assert.Single(Hits(is64, [0x85, 0xC9, 0x74, 0x0C, 0xC3]));
        Assert.Equal(("in", Target, (uint?)Text), (hit.Mnemonic, hit.Rva, hit.FunctionRva));
    }

    [Fact]
    public void An_address_taken_by_lea_is_a_function_x64()
    {
        // lea rcx, [rip + (Target - (Text + 7))]; ret
        var hit = Assert.Single(Hits(true, [0x48, 0x8D, 0x0D, .. Le32(Target - (Text + 7)), 0xC3]));
        Assert.Equal(("in", Target, (uint?)Target), (hit.Mnemonic, hit.Rva, hit.FunctionRva));
    }

    [Theory]
    [InlineData(0x68)] // push imm32
    [InlineData(0xB8)] // mov eax, imm32
    public void An_absolute_address_pushed_or_moved_is_a_function_x86(byte opcode)
    {
        var hit = Assert.Single(Hits(false, [opcode, .. Le32((uint)CodePe.Va(false, Target)), 0xC3]));
        Assert.Equal(("in", Target, (uint?)Target), (hit.Mnemonic, hit.Rva, hit.FunctionRva));
    }

    [Fact]
    public void An_absolute_address_in_another_instruction_is_only_a_reference_x86()
    {
        // add eax, imm32 (the address): referenced, but no function starts there.
        Assert.Empty(Hits(false, [0x05, .. Le32((uint)CodePe.Va(false, Target)), 0xC3]));
    }
}
