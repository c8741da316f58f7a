using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using Xunit;

namespace DriverAudit.Scanner.Tests.Pe;

/// <summary>Shared images for the PE tests.</summary>
internal static class PeTestImages
{
    public static readonly Guid PdbGuid = new("6f1c2a3b-4d5e-4f60-8172-93a4b5c6d7e8");

    /// <summary>An image with every directory the parser reads.</summary>
    public static PeBuilder Rich(bool is64Bit, bool delayVaForm = false)
    {
        var b = new PeBuilder(is64Bit)
        {
            DelayImportVaForm = delayVaForm,
            WithRelocations = true,
            DllCharacteristics = 0x4160,
        };
        return b
            .Import("ntoskrnl.exe", "ExAllocatePoolWithTag", "IoCreateDevice")
            .ImportOrdinal("ntoskrnl.exe", 0x123)
            .Import("HAL.dll", "KeGetCurrentIrql")
            .DelayImport("ext.sys", "ExtFunc")
            .DelayImport("ext.sys", ordinal: 7)
            .Export("HelperOne", 1, PeBuilder.TextRva + 0x10)
            .Export(null, 3, PeBuilder.TextRva + 0x20)
            .Export("HelperAlias", 4, PeBuilder.TextRva + 0x10)
            .Forwarder("Forwarded", 2, "NTOSKRNL.KeBugCheckEx")
            .WithLoadConfig(securityCookie: is64Bit ? 0x140005000UL : 0x15000UL, guardFlags: 0x10500, guardCfFunctionTable: is64Bit ? 0x140006000UL : 0x16000UL, guardCfFunctionCount: 5)
            .WithCodeView(PdbGuid, 3, @"C:\build\obj\test.pdb")
            .WithVersion([1, 2, 3, 4], ("CompanyName", "Contoso"), ("FileDescription", "Test driver"), ("FileVersion", "1.2.3.4"))
            .WithCertificate(Enumerable.Range(0, 100).Select(i => (byte)i).ToArray());
    }

    public static PeImage Open(IImageSource source)
    {
        var result = PeImage.TryOpen(source);
        Assert.True(result.Success, $"{result.Status}: {result.Reason}");
        Assert.Equal(PeOpenStatus.Ok, result.Status);
        return result.Image!;
    }

    public static PeImage Open(PeBuilt built, ImageLayout layout) => Open(built.Source(layout));

    public static IEnumerable<object[]> BitnessAndLayouts()
    {
        foreach (var is64 in new[] { false, true })
            foreach (var layout in new[] { ImageLayout.File, ImageLayout.Loaded })
                yield return [is64, layout];
    }
}
