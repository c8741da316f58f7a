using DriverAudit.Scanner.Dumps;
using Xunit;

namespace DriverAudit.Scanner.Tests.Dumps;

public sealed class AddressTranslationTests
{
    public static TheoryData<DumpArch, bool> ArchAndBody => new()
    {
        { DumpArch.X64, false }, { DumpArch.X64, true },
        { DumpArch.X86Pae, false }, { DumpArch.X86Pae, true },
        { DumpArch.X86, false }, { DumpArch.X86, true },
        { DumpArch.Arm64, false }, { DumpArch.Arm64, true },
    };

    private static KernelDump OpenDump(DumpScenario s, bool bitmap, out TempDumpFile file)
    {
        file = new TempDumpFile(bitmap ? s.Writer.WriteBitmap() : s.Writer.WriteFull());
        return DumpScenario.Open(file);
    }

    [Theory]
    [MemberData(nameof(ArchAndBody))]
    public void Small_pages_translate_to_the_pfn_the_writer_used(DumpArch arch, bool bitmap)
    {
        var s = new DumpScenario(arch);
        var va = s.Kernel.Base + 0x2345;
        var expected = (s.Writer.PfnOf(va) << 12) | 0x345;
        using var dump = OpenDump(s, bitmap, out var file);
        using var _ = file;

        Assert.True(dump.TryTranslate(va, out var pa));
        Assert.Equal(expected, pa);
        var buf = new byte[0x10];
        Assert.Equal(0x10, dump.ReadVirtual(va, buf));
        Assert.Equal(s.Kernel.Loaded.AsSpan(0x2345, 0x10).ToArray(), buf);
    }

    [Theory]
    [MemberData(nameof(ArchAndBody))]
    public void Large_pages_translate_and_only_stored_pages_read(DumpArch arch, bool bitmap)
    {
        var s = new DumpScenario(arch);
        using var dump = OpenDump(s, bitmap, out var file);
        using var _ = file;

        var va = s.LargeVa + s.LargeOffset + 0x777;
        Assert.True(dump.TryTranslate(va, out var pa));
        Assert.Equal(s.LargePa + s.LargeOffset + 0x777, pa);
        var expected = MiniPe.Pattern(0x2000, 8);
        var buf = new byte[0x2000];
        Assert.Equal(0x2000, dump.ReadVirtual(s.LargeVa + s.LargeOffset, buf));
        Assert.Equal(expected, buf);
        // The large page is mapped but its first page was never stored: translation works, the read is empty.
        Assert.True(dump.TryTranslate(s.LargeVa, out var firstPa));
        Assert.Equal(s.LargePa, firstPa);
        Assert.Equal(0, dump.ReadVirtual(s.LargeVa, buf));
        // Reading across the end of the stored pages stops exactly at the missing page.
        Assert.Equal(0x2000, dump.ReadVirtual(s.LargeVa + s.LargeOffset, new byte[0x3000]));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void One_gigabyte_pages_translate_on_x64(bool bitmap)
    {
        var s = new DumpScenario(DumpArch.X64);
        using var dump = OpenDump(s, bitmap, out var file);
        using var _ = file;

        Assert.True(dump.TryTranslate(s.HugeVa + DumpScenario.HugeOffset + 0x10, out var pa));
        Assert.Equal(s.HugePa + DumpScenario.HugeOffset + 0x10, pa);
        var buf = new byte[0x1000];
        Assert.Equal(0x1000, dump.ReadVirtual(s.HugeVa + DumpScenario.HugeOffset, buf));
        Assert.Equal(MiniPe.Pattern(0x1000, 9), buf);
    }

    [Theory]
    [InlineData(DumpArch.X64)]
    [InlineData(DumpArch.X86Pae)]
    [InlineData(DumpArch.X86)]
    public void Transition_pte_reads_when_its_page_is_in_the_dump(DumpArch arch)
    {
        var s = new DumpScenario(arch);
        var va = s.Driver.Base + 0x1000;
        s.Writer.MakeTransition(va);
        Assert.Equal(0UL, s.Writer.Pte(va) & 1); // really not present
        using var file = new TempDumpFile(s.Writer.WriteFull());
        using var dump = DumpScenario.Open(file);

        using var image = dump.OpenModuleImage(dump.Modules[2]);
        Assert.Equal(0, image.CountMissingPages());
        var buf = new byte[0x1000];
        Assert.Equal(0x1000, image.Read(0x1000, buf));
        Assert.Equal(s.Driver.Loaded.AsSpan(0x1000, 0x1000).ToArray(), buf);
    }

    [Theory]
    [InlineData(DumpArch.X64, "transition-dropped")]
    [InlineData(DumpArch.X64, "prototype")]
    [InlineData(DumpArch.X64, "unmapped")]
    [InlineData(DumpArch.X64, "dropped")]
    [InlineData(DumpArch.X86Pae, "transition-dropped")]
    [InlineData(DumpArch.X86Pae, "prototype")]
    [InlineData(DumpArch.X86, "dropped")]
    [InlineData(DumpArch.X86, "unmapped")]
    public void Missing_pages_are_reported_and_reads_stop_at_them(DumpArch arch, string how)
    {
        var s = new DumpScenario(arch);
        var va = s.Driver.Base + 0x2000; // the driver's third page
        var pfn = s.Writer.PfnOf(va);
        switch (how)
        {
            case "transition-dropped": s.Writer.MakeTransition(va); s.Writer.DropPhysical(pfn); break;
            case "prototype": s.Writer.MakePrototype(va); break;
            case "unmapped": s.Writer.Unmap(va); break;
            case "dropped": s.Writer.DropPhysical(pfn); break;
        }
        foreach (var bytes in new[] { s.Writer.WriteFull(), s.Writer.WriteBitmap() })
        {
            using var file = new TempDumpFile(bytes);
            using var dump = DumpScenario.Open(file);
            Assert.Empty(dump.Diagnostics); // a missing page is normal, not malformed
            using var image = dump.OpenModuleImage(dump.Modules[2]);
            Assert.Equal(1, image.CountMissingPages());
            Assert.False(image.IsPagePresent(2));
            Assert.True(image.IsPagePresent(1));
            Assert.True(image.IsPagePresent(3));
            Assert.False(image.IsAvailable(0x1FFF, 2));
            Assert.True(image.IsAvailable(0x3000, 0x1000));
            var buf = new byte[0x3000];
            Assert.Equal(0x1800, image.Read(0x800, buf));
            Assert.Equal(s.Driver.Loaded.AsSpan(0x800, 0x1800).ToArray(), buf[..0x1800]);
            Assert.Equal(0x1000, image.Read(0x3000, buf.AsSpan(0, 0x1000)));
            Assert.Equal(0, dump.ReadVirtual(va, buf));
            Assert.Equal(0x10, dump.ReadVirtual(va - 0x10, buf));
        }
    }

    [Fact]
    public void Non_canonical_x64_addresses_do_not_translate()
    {
        var s = new DumpScenario(DumpArch.X64);
        using var file = new TempDumpFile(s.Writer.WriteFull());
        using var dump = DumpScenario.Open(file);
        Assert.False(dump.TryTranslate(s.Kernel.Base & 0x0000_FFFF_FFFF_FFFF, out _));
        Assert.False(dump.TryTranslate(0x0001_0000_0000_0000, out _));
        Assert.Equal(0, dump.ReadVirtual(ulong.MaxValue - 3, new byte[16]));
    }

    [Fact]
    public void Sign_extended_x86_addresses_translate()
    {
        var s = new DumpScenario(DumpArch.X86Pae);
        using var file = new TempDumpFile(s.Writer.WriteFull());
        using var dump = DumpScenario.Open(file);
        Assert.True(dump.TryTranslate(s.Kernel.Base | 0xFFFF_FFFF_0000_0000, out var pa));
        Assert.True(dump.TryTranslate(s.Kernel.Base, out var pa2));
        Assert.Equal(pa2, pa);
        Assert.False(dump.TryTranslate(s.Kernel.Base | 0x1_0000_0000, out _));
    }

    [Fact]
    public void Disposed_dump_throws_ObjectDisposedException_only()
    {
        var s = new DumpScenario(DumpArch.X64);
        using var file = new TempDumpFile(s.Writer.WriteFull());
        var dump = DumpScenario.Open(file);
        var image = dump.OpenModuleImage(dump.Modules[0]);
        dump.Dispose();
        dump.Dispose();
        Assert.Throws<ObjectDisposedException>(() => dump.ReadVirtual(s.Kernel.Base, new byte[4]));
        Assert.Throws<ObjectDisposedException>(() => image.Read(0, new byte[4]));
        Assert.Throws<ObjectDisposedException>(() => dump.OpenModuleImage(dump.Modules[0]));
    }
}
