using DriverAudit.Scanner.Dumps;
using DriverAudit.Scanner.Images;
using Xunit;

namespace DriverAudit.Scanner.Tests.Dumps;

public sealed class DumpFormatTests
{
    public enum Body { Full, BitmapKernel, BitmapFull, Triage, RangeKernel, RangeKernelAndUser, RangeComplete }

    public static TheoryData<DumpArch, Body> Formats => new()
    {
        { DumpArch.X64, Body.Full }, { DumpArch.X64, Body.BitmapKernel }, { DumpArch.X64, Body.BitmapFull }, { DumpArch.X64, Body.Triage },
        { DumpArch.X64, Body.RangeKernel }, { DumpArch.X64, Body.RangeKernelAndUser }, { DumpArch.X64, Body.RangeComplete },
        { DumpArch.X86Pae, Body.Full }, { DumpArch.X86Pae, Body.BitmapKernel }, { DumpArch.X86Pae, Body.Triage },
        { DumpArch.X86, Body.Full }, { DumpArch.X86, Body.BitmapFull },
    };

    internal static byte[] Write(DumpWriter w, Body body) => body switch
    {
        Body.Full => w.WriteFull(),
        Body.BitmapKernel => w.WriteBitmap(),
        Body.BitmapFull => w.WriteBitmap(fullBitmap: true),
        Body.RangeKernel => w.WriteRange(8),
        Body.RangeKernelAndUser => w.WriteRange(9),
        Body.RangeComplete => w.WriteRange(10),
        _ => w.WriteTriage(),
    };

    [Theory]
    [MemberData(nameof(Formats))]
    public void Header_fields_round_trip(DumpArch arch, Body body)
    {
        var s = new DumpScenario(arch);
        s.Writer.BugCheckCode = 0x1E;
        s.Writer.BugCheckParameters = [0xC0000005, 0x8123_4567, 0x11, 0x22];
        using var file = new TempDumpFile(Write(s.Writer, body));
        using var dump = DumpScenario.Open(file);

        Assert.Equal(body switch
        {
            Body.Full => DumpType.Full,
            Body.BitmapKernel => DumpType.BitmapKernel,
            Body.BitmapFull => DumpType.BitmapFull,
            Body.RangeKernel => DumpType.RangeKernel,
            Body.RangeKernelAndUser => DumpType.RangeKernelAndUser,
            Body.RangeComplete => DumpType.RangeComplete,
            _ => DumpType.Triage,
        }, dump.DumpType);
        Assert.Equal(arch == DumpArch.X64 ? DumpMachine.X64 : DumpMachine.X86, dump.Machine);
        Assert.Equal(0xFu, dump.MajorVersion);
        Assert.Equal(19041u, dump.MinorVersion);
        Assert.Equal(4u, dump.NumberOfProcessors);
        Assert.Equal(0x1Eu, dump.BugCheckCode);
        Assert.Equal(0xC0000005UL, dump.BugCheckParameter1);
        Assert.Equal(0x8123_4567UL, dump.BugCheckParameter2);
        Assert.Equal(0x11UL, dump.BugCheckParameter3);
        Assert.Equal(0x22UL, dump.BugCheckParameter4);
        Assert.Equal(new DateTime(2024, 5, 1, 12, 30, 0, DateTimeKind.Utc), dump.SystemTime);
        Assert.Equal(DateTimeKind.Utc, dump.SystemTime!.Value.Kind);
        Assert.Equal(s.Writer.DirectoryTableBase, dump.DirectoryTableBase);
        Assert.Equal(s.Writer.PsLoadedModuleList, dump.PsLoadedModuleList);
        Assert.Equal(arch == DumpArch.X86Pae, dump.PaeEnabled);
        Assert.Equal(body != Body.Triage, dump.HasMemory);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Modules_come_out_with_names_bases_sizes_and_stamps(DumpArch arch, Body body)
    {
        var s = new DumpScenario(arch);
        using var file = new TempDumpFile(Write(s.Writer, body));
        using var dump = DumpScenario.Open(file);

        Assert.Empty(dump.Diagnostics);
        Assert.Equal(3, dump.Modules.Count);
        for (var i = 0; i < 3; i++)
        {
            var expected = s.Writer.Modules[i];
            var m = dump.Modules[i];
            var (stamp, sum) = DumpWriter.Stamps(expected.Loaded);
            Assert.Equal(i, m.Index);
            Assert.Equal(expected.Name, m.Name);
            Assert.Equal(expected.FullPath, m.FullPath);
            Assert.Equal(expected.Base, m.Base);
            Assert.Equal(expected.Size, m.Size);
            Assert.Equal(stamp, m.TimeDateStamp);
            Assert.Equal(sum, m.CheckSum);
            Assert.Equal(body != Body.Triage, m.ImageAvailable);
            Assert.Equal(body == Body.Triage ? 0 : expected.EntryAddress, m.EntryAddress);
        }
        Assert.Equal("ntoskrnl.exe", dump.Modules[0].Name);
        Assert.Equal(dump.Modules[2], dump.FindModule(s.Driver.Base + 0x1234));
        Assert.Null(dump.FindModule(s.Driver.Base + s.Driver.Size));
    }

    [Theory]
    [InlineData(DumpArch.X64, Body.Full)]
    [InlineData(DumpArch.X64, Body.BitmapKernel)]
    [InlineData(DumpArch.X86Pae, Body.Full)]
    [InlineData(DumpArch.X86, Body.BitmapFull)]
    public void Module_images_equal_the_mapped_loaded_layout(DumpArch arch, Body body)
    {
        var s = new DumpScenario(arch);
        using var file = new TempDumpFile(Write(s.Writer, body));
        using var dump = DumpScenario.Open(file);

        foreach (var (module, expected) in dump.Modules.Zip(s.Writer.Modules))
        {
            using var image = dump.OpenModuleImage(module);
            Assert.Equal(ImageLayout.Loaded, image.Layout);
            Assert.Equal(expected.Loaded.Length, image.Length);
            Assert.Equal(0, image.CountMissingPages());
            Assert.True(image.IsAvailable(0, image.Length));
            var bytes = new byte[image.Length + 100];
            Assert.Equal(expected.Loaded.Length, image.Read(0, bytes));
            Assert.Equal(expected.Loaded, bytes[..expected.Loaded.Length]);
            // offset == RVA: an unaligned read in the middle of a section
            var mid = new byte[Math.Min(0x1801, image.Length - 0x1333)];
            Assert.Equal(mid.Length, image.Read(0x1333, mid));
            Assert.Equal(expected.Loaded.AsSpan(0x1333, mid.Length).ToArray(), mid);
            Assert.Equal(module.Name, image.Origin.ModuleName);
            Assert.Equal(module.Base, image.Origin.ModuleBase);
            Assert.Equal(file.Path, image.Origin.Path);
        }
        // The discarded INIT section reads as zeros, not as its file bytes.
        using var driver = dump.OpenModuleImage(dump.Modules[2]);
        var init = new byte[0x600];
        Assert.Equal(init.Length, driver.Read(0x4000, init));
        Assert.All(init, b => Assert.Equal(0, b));
    }

    [Theory]
    [InlineData(DumpArch.X64)]
    [InlineData(DumpArch.X86)]
    public void Triage_modules_say_no_image_is_available(DumpArch arch)
    {
        var s = new DumpScenario(arch);
        using var file = new TempDumpFile(s.Writer.WriteTriage());
        using var dump = DumpScenario.Open(file);

        var m = dump.Modules[2];
        Assert.False(m.ImageAvailable);
        using var image = dump.OpenModuleImage(m);
        Assert.Equal(image.PageCount, image.CountMissingPages());
        Assert.Equal(0, image.Read(0, new byte[16]));
        Assert.False(image.IsAvailable(0, 2));
        Assert.Equal(0, dump.ReadVirtual(m.Base, new byte[16]));
    }
}
