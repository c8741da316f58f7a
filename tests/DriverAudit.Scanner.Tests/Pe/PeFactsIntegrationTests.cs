using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using Xunit;

namespace DriverAudit.Scanner.Tests.Pe;

/// <summary>The facts the rule engine sees for real fixtures: calls, instructions, signatures, strings, provenance.</summary>
public sealed class PeFactsIntegrationTests
{
    private static PeFacts Facts(string arch, string name, out IDisposable source)
    {
        var s = FileImageSource.Open(RepoPaths.Fixture(arch, name));
        source = s;
        return new PeFacts(PeImage.TryOpen(s).Image!);
    }

    [Theory]
    [InlineData("x64", "tags_O2.sys")]
    [InlineData("x86", "tags_Os.sys")]
    [InlineData("x64", "tags_O0.sys")]
    public void Calls_carry_recovered_tags_and_stable_ordinals(string arch, string name)
    {
        var facts = Facts(arch, name, out var source);
        using (source)
        {
            var tagged = facts.Calls.Where(c => c.Api.Name == "ExAllocatePoolWithTag").ToList();
            Assert.Contains(tagged, c => c.Args[2] == 0x74736554); // 'Test'
            Assert.Contains(tagged, c => c.Args[2] == 0x206B6444); // 'Ddk '
            Assert.Contains(tagged, c => c.Args[2] is null);       // the global: unknown, never guessed
            Assert.Contains(tagged, c => c.Args[0] == 0);          // NonPagedPool (executable)
            Assert.Contains(tagged, c => c.Args[0] == 0x200);      // NonPagedPoolNx
            Assert.Equal(tagged.Count, tagged.Select(c => c.Key).Distinct().Count());
            Assert.All(facts.Calls, c => Assert.NotNull(c.Api.SlotRva));
            Assert.Contains(facts.Calls, c => c.Api.Name == "ExAllocatePool2" && c.Args[0] is ulong f && (f & 0x2) != 0);
        }
    }

    [Fact]
    public void Instructions_of_the_primitives_driver()
    {
        var facts = Facts("x64", "primitives.sys", out var source);
        using (source)
        {
            var mnemonics = facts.Instructions.Select(i => i.ControlRegister is null ? i.Mnemonic : $"{i.Mnemonic} {i.ControlRegister}").Order().ToList();
            Assert.Contains("wrmsr", mnemonics);
            Assert.Contains("rdmsr", mnemonics);
            Assert.Contains("mov cr0", mnemonics);
            Assert.Contains("mov cr4", mnemonics);
            Assert.Contains(facts.Strings, s => s.Utf16 && s.Value.Contains(@"\Device\PhysicalMemory", StringComparison.Ordinal));
            Assert.Contains(facts.Strings, s => s.Utf16 && s.Value.Contains("D:P(A;;GA;;;WD)", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Signature_and_hashes_of_signed_fixtures()
    {
        var facts = Facts("x64", "signed_test.sys", out var source);
        using (source)
        {
            var sig = Assert.IsType<SignatureFact>(facts.Signature);
            Assert.Contains("WDKTestCert", sig.Signers[0].Subject);
            Assert.True(sig.Signers[0].IsTestCertificate);
            Assert.Equal("10f7c6b0b3a33d337f487fcf3b07606da3ca43b2c1661367b2f252c020fba5aa", facts.AuthenticodeSha256);
            Assert.Equal(sig.SignedDigest, facts.AuthenticodeSha256);
            Assert.Equal("a9b74665dbe8c7af9b4b301d7d8d0434248c884feb6541174103120b28248673", facts.FileSha256);
            Assert.Equal(new ModuleFact("file", "signed_test.sys", RepoPaths.Fixture("x64", "signed_test.sys"), null), facts.Module);
        }
        var unsigned = Facts("x64", "pool_modern.sys", out var source2);
        using (source2) Assert.Null(unsigned.Signature);
    }

    [Fact]
    public void Version_strings_are_exposed()
    {
        var facts = Facts("x64", "version_pdb.sys", out var source);
        using (source)
            Assert.Equal("DriverAudit Fixtures", facts.VersionInfo["CompanyName"]);
    }

    [Fact]
    public void A_hostile_virtual_size_does_not_size_the_work()
    {
        // primitives.sys with .text claiming ~4 GiB: code and string facts must follow the bytes behind the
        // section, not its declared size (found by fuzzing: 4 s and 300 MB for one 4 KB file before).
        var bytes = File.ReadAllBytes(RepoPaths.Fixture("x64", "primitives.sys"));
        var lfanew = BitConverter.ToInt32(bytes, 0x3C);
        var optionalSize = BitConverter.ToUInt16(bytes, lfanew + 20);
        var firstSection = lfanew + 24 + optionalSize;
        BitConverter.GetBytes(0xFFFF02F0u).CopyTo(bytes, firstSection + 8); // .text VirtualSize
        BitConverter.GetBytes(0x0000FFFFu).CopyTo(bytes, firstSection + 12); // VirtualAddress past SizeOfImage
        using var t = new TempDir();
        using var source = FileImageSource.Open(t.File("huge.sys", bytes));
        var facts = new PeFacts(PeImage.TryOpen(source).Image!);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var instructions = facts.Instructions;
        _ = facts.Strings;
        _ = facts.Calls;
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // The entry point now lies outside every executable section: that is packed-image evidence, so the code is
        // reported not evaluated rather than swept.
        Assert.Empty(instructions);
        Assert.Contains("entry point", facts.CodeNotEvaluated);
        Assert.InRange(allocated, 0, 4 << 20);
    }
}
