using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using FsCheck.Xunit;
using Xunit;

namespace DriverAudit.Scanner.Tests.Pe;

/// <summary>Random byte mutations of valid images never throw out of TryOpen or any lazy reader.</summary>
public class PeMutationProperties
{
    private static readonly PeBuilt Pe32 = PeTestImages.Rich(false).Build();
    private static readonly PeBuilt Pe64 = PeTestImages.Rich(true).Build();

    [Property(MaxTest = 300)]
    public void Mutated_images_never_throw(int seed)
    {
        var random = new Random(seed);
        var source = random.Next(2) == 0 ? Pe32 : Pe64;
        var layout = random.Next(2) == 0 ? ImageLayout.File : ImageLayout.Loaded;
        var bytes = (layout == ImageLayout.File ? source.File : source.Loaded).ToArray();
        var mutations = random.Next(1, 24);
        for (var i = 0; i < mutations; i++)
        {
            // Half the mutations hit the headers, where every byte steers a parser.
            var at = random.Next(2) == 0 ? random.Next((int)PeBuilder.SizeOfHeaders) : random.Next(bytes.Length);
            switch (random.Next(4))
            {
                case 0: bytes[at] = (byte)random.Next(256); break;
                case 1: bytes[at] = 0xFF; break;
                case 2: bytes[at] = 0; break;
                default:
                    var value = random.Next(3) switch { 0 => 0xFFFFFFFFu, 1 => 0x7FFFFFF0u, _ => (uint)random.Next() };
                    BitConverter.GetBytes(value).AsSpan(0, Math.Min(4, bytes.Length - at)).CopyTo(bytes.AsSpan(at));
                    break;
            }
        }
        bool[]? missing = null;
        if (layout == ImageLayout.Loaded && random.Next(3) == 0)
        {
            missing = new bool[bytes.Length / MemoryImageSource.PageSize];
            missing[random.Next(missing.Length)] = true;
        }

        var result = PeImage.TryOpen(new MemoryImageSource(bytes, layout, new ImageOrigin("fuzz.sys"), missing));
        if (!result.Success)
        {
            Assert.NotEqual(PeOpenStatus.Ok, result.Status);
            Assert.False(string.IsNullOrEmpty(result.Reason));
            return;
        }
        var image = result.Image!;
        _ = image.Imports.Imports.Count;
        _ = image.DelayImports.Imports.Count;
        var exports = image.Exports;
        foreach (var e in exports.All)
        {
            if (e.Name is not null) Assert.NotNull(exports.FindByName(e.Name));
            Assert.NotNull(exports.FindByOrdinal(e.Ordinal));
        }
        _ = image.LoadConfig;
        _ = image.Debug;
        _ = image.VersionInfo;
        _ = image.Certificates;
        var facts = new PeFacts(image);
        _ = facts.Header;
        _ = facts.Sections.Count + facts.Imports.Count + facts.Exports.Count;
        foreach (var name in Characteristics.Known) _ = facts.GetCharacteristic(name);
        PeExportResolver.FromImages([new("fuzz.sys", image)]).Resolve("fuzz.sys", "Forwarded");
        // The reader guard turns an unexpected exception into this diagnostic; it must never fire.
        Assert.DoesNotContain(image.Diagnostics, d => d.Code == "reader-failure");
    }
}
