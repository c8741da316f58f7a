using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using Xunit;

namespace DriverAudit.Scanner.Tests.Pe;

public class PeFactsTests
{
    private static PeFacts Facts(PeBuilt built, ImageLayout layout = ImageLayout.File) => new(PeTestImages.Open(built, layout));

    [Fact]
    public void Header_sections_imports_exports_map_to_facts()
    {
        var built = PeTestImages.Rich(true).Build();
        var facts = Facts(built);
        Assert.Equal("test.sys", facts.DisplayName);
        Assert.Equal(new HeaderFact(0x8664, 1, true, 0x0022, 0x4160, 0x1000, 0x200, built.ImageBase, built.SizeOfImage, 0x5F5E1000, 0x12345), facts.Header);
        Assert.Equal(built.Sections.Select(s => (s.Name, s.Rva, s.VirtualSize, s.RawSize, s.Characteristics)),
            facts.Sections.Select(s => (s.Name, s.Rva, s.VirtualSize, s.RawSize, s.Characteristics)));
        Assert.Equal(Enumerable.Range(0, built.Sections.Count), facts.Sections.Select(s => s.Index));
        Assert.Equal(
            ["ntoskrnl.exe!ExAllocatePoolWithTag", "ntoskrnl.exe!IoCreateDevice", "ntoskrnl.exe!#291", "hal.dll!KeGetCurrentIrql", "ext.sys!ExtFunc", "ext.sys!#7"],
            facts.Imports.Select(i => i.Key));
        Assert.Equal([false, false, false, false, true, true], facts.Imports.Select(i => i.Delayed));
        Assert.Equal(built.ImportSlots.Concat(built.DelayImportSlots).Select(s => (uint?)s.SlotRva), facts.Imports.Select(i => i.SlotRva));
        Assert.Contains(new ExportFact("Forwarded", 2, facts.Exports[1].Rva, "NTOSKRNL.KeBugCheckEx"), facts.Exports);
        Assert.Same(facts.Imports, facts.Imports);
    }

    [Fact]
    public void Dump_modules_are_named_after_the_dump()
    {
        var facts = Facts(new PeBuilder().Build(), ImageLayout.Loaded);
        Assert.Equal("MEMORY.DMP!test.sys", facts.DisplayName);
        Assert.Equal("other", new PeFacts(facts.Image, "other").DisplayName);
    }

    [Fact]
    public void Every_known_characteristic_is_answered_for_a_complete_file()
    {
        var facts = Facts(PeTestImages.Rich(false).Build());
        foreach (var name in Characteristics.Known)
            Assert.NotNull(facts.GetCharacteristic(name));
        Assert.Null(facts.GetCharacteristic("no-such-characteristic"));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Iat_in_executable_section_uses_directory_12_or_first_thunk(bool executable, bool withoutIatDirectory)
    {
        var builder = new PeBuilder { IatInExecutableSection = executable, EmitIatDirectory = !withoutIatDirectory }.Import("a.dll", "X");
        var facts = Facts(builder.Build());
        Assert.Equal(withoutIatDirectory ? 0u : facts.Image.IatDirectory.VirtualAddress, facts.Image.IatDirectory.VirtualAddress);
        Assert.Equal(executable, facts.GetCharacteristic(Characteristics.IatInExecutableSection));
    }

    [Fact]
    public void No_imports_means_no_iat_in_an_executable_section()
    {
        Assert.False(Facts(new PeBuilder().Build()).GetCharacteristic(Characteristics.IatInExecutableSection));
    }

    [Theory]
    [InlineData(0UL, false)]
    [InlineData(0x140004000UL, true)]
    public void Stack_cookie_follows_load_config(ulong cookie, bool expected)
    {
        Assert.Equal(expected, Facts(new PeBuilder().WithLoadConfig(cookie).Build()).GetCharacteristic(Characteristics.HasStackCookie));
        Assert.False(Facts(new PeBuilder().Build()).GetCharacteristic(Characteristics.HasStackCookie));
    }

    [Theory]
    [InlineData((ushort)0x4000, 0x100u, true)]
    [InlineData((ushort)0x4000, 0x000u, false)]
    [InlineData((ushort)0x0000, 0x100u, false)]
    public void Cfg_needs_guard_cf_bit_and_instrumented_flag(ushort dllCharacteristics, uint guardFlags, bool expected)
    {
        var built = new PeBuilder { DllCharacteristics = dllCharacteristics }.WithLoadConfig(1, guardFlags).Build();
        Assert.Equal(expected, Facts(built).GetCharacteristic(Characteristics.Cfg));
    }

    [Theory]
    [InlineData((ushort)0x0080, true, false)]
    [InlineData((ushort)0x0100, false, true)]
    [InlineData((ushort)0x0180, true, true)]
    [InlineData((ushort)0x0000, false, false)]
    public void Integrity_and_nx_are_header_bits(ushort dllCharacteristics, bool forceIntegrity, bool nx)
    {
        var facts = Facts(new PeBuilder { DllCharacteristics = dllCharacteristics }.Build());
        Assert.Equal(forceIntegrity, facts.GetCharacteristic(Characteristics.ForceIntegrity));
        Assert.Equal(nx, facts.GetCharacteristic(Characteristics.NxCompat));
    }

    [Fact]
    public void Signed_is_known_only_from_the_file()
    {
        var built = PeTestImages.Rich(true).Build();
        Assert.True(Facts(built).GetCharacteristic(Characteristics.Signed));
        Assert.Null(Facts(built, ImageLayout.Loaded).GetCharacteristic(Characteristics.Signed));
        Assert.False(Facts(new PeBuilder().Build()).GetCharacteristic(Characteristics.Signed));
        Assert.False(Facts(new PeBuilder().Build(), ImageLayout.Loaded).GetCharacteristic(Characteristics.Signed));
    }

    [Fact]
    public void Missing_load_config_page_makes_cookie_and_cfg_unknown()
    {
        var built = new PeBuilder { DllCharacteristics = 0x4000 }.WithLoadConfig(0x140004000UL, 0x100).Build();
        var missing = new bool[built.Loaded.Length / MemoryImageSource.PageSize];
        missing[built.LoadConfigRva / MemoryImageSource.PageSize] = true;
        var facts = new PeFacts(PeTestImages.Open(built.LoadedSource(missing)));
        Assert.Null(facts.GetCharacteristic(Characteristics.HasStackCookie));
        Assert.Null(facts.GetCharacteristic(Characteristics.Cfg));
        Assert.True(facts.GetCharacteristic(Characteristics.NxCompat) is false); // header facts stay known
    }

    [Fact]
    public void Facts_are_lazy()
    {
        var built = PeTestImages.Rich(true).Build().SetDirectory(1, 0x7FFF0000, 20);
        var facts = Facts(built);
        _ = facts.Header;
        _ = facts.GetCharacteristic(Characteristics.NxCompat);
        Assert.Empty(facts.Image.Diagnostics); // nothing parsed the broken import table yet
        _ = facts.Imports;
        Assert.NotEmpty(facts.Image.Diagnostics);
    }
}
