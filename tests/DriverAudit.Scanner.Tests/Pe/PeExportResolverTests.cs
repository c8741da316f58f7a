using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using Xunit;

namespace DriverAudit.Scanner.Tests.Pe;

public class PeExportResolverTests
{
    private static KeyValuePair<string, PeImage> Module(string name, Action<PeBuilder> exports)
    {
        var b = new PeBuilder { ExportDllName = name };
        exports(b);
        return new(name, PeTestImages.Open(b.Build(), ImageLayout.Loaded));
    }

    private static PeExportResolver Kernel(int maxHops = PeExportResolver.DefaultMaxHops) => PeExportResolver.FromImages(
    [
        Module("ntoskrnl.exe", b => b.Export("KeBugCheckEx", 1, 0x1010).Export("ExAllocatePool", 2, 0x1020)),
        Module("hal.dll", b => b.Forwarder("HalAlloc", 1, "NTOSKRNL.ExAllocatePool").Forwarder("HalByOrdinal", 2, "ntoskrnl.#1").Forwarder("HalMissing", 3, "ntoskrnl.Nope")),
        Module("a.sys", b => b.Forwarder("Loop", 1, "B.Loop").Forwarder("Self", 2, "a.Self").Forwarder("Broken", 3, "NoDot").Forwarder("Away", 4, "gone.X")),
        Module("b.sys", b => b.Forwarder("Loop", 1, "A.Loop")),
    ], maxHops);

    [Fact]
    public void Hal_import_lands_in_ntoskrnl()
    {
        var r = Kernel().Resolve("HAL.DLL", "HalAlloc");
        Assert.Equal(ExportResolutionStatus.Resolved, r.Status);
        Assert.Equal(("ntoskrnl", "ExAllocatePool", 0x1020u, 1), (r.Module, r.Export!.Name, r.Export.Rva, r.Hops));
        Assert.Equal("ntoskrnl!ExAllocatePool", r.Display);

        var byOrdinal = Kernel().Resolve(@"\SystemRoot\system32\hal.dll", "HalByOrdinal");
        Assert.Equal(("ntoskrnl", "KeBugCheckEx"), (byOrdinal.Module, byOrdinal.Export!.Name));
        Assert.Equal("KeBugCheckEx", Kernel().Resolve("ntoskrnl.exe", 1).Export!.Name);
        Assert.Equal(0, Kernel().Resolve("ntoskrnl.exe", 1).Hops);
    }

    [Fact]
    public void Forwarder_cycles_terminate()
    {
        var loop = Kernel().Resolve("a.sys", "Loop");
        Assert.Equal(ExportResolutionStatus.ForwarderCycle, loop.Status);
        Assert.Equal(2, loop.Hops);
        Assert.Equal(ExportResolutionStatus.ForwarderCycle, Kernel().Resolve("a", "Self").Status);
        Assert.Equal(ExportResolutionStatus.HopLimit, Kernel(maxHops: 1).Resolve("a", "Loop").Status);
    }

    [Fact]
    public void Long_chains_hit_the_hop_limit()
    {
        var modules = new List<KeyValuePair<string, PeImage>>();
        for (var i = 0; i < 20; i++)
        {
            var next = i + 1;
            modules.Add(Module($"m{i}.sys", b => { if (next < 20) b.Forwarder("Next", 1, $"m{next}.Next"); else b.Export("Next", 1, 0x1000); }));
        }
        Assert.Equal(ExportResolutionStatus.HopLimit, PeExportResolver.FromImages(modules).Resolve("m0", "Next").Status);
        var r = PeExportResolver.FromImages(modules, maxHops: 32).Resolve("m0", "Next");
        Assert.Equal((ExportResolutionStatus.Resolved, "m19", 19), (r.Status, r.Module, r.Hops));
    }

    [Fact]
    public void Unresolvable_cases_are_named()
    {
        var k = Kernel();
        Assert.Equal(ExportResolutionStatus.ModuleNotFound, k.Resolve("nothere.sys", "X").Status);
        Assert.Equal(ExportResolutionStatus.ModuleNotFound, k.Resolve("a", "Away").Status);
        Assert.Equal(ExportResolutionStatus.ExportNotFound, k.Resolve("ntoskrnl", "Nope").Status);
        Assert.Equal(ExportResolutionStatus.ExportNotFound, k.Resolve("hal", "HalMissing").Status);
        Assert.Equal(ExportResolutionStatus.MalformedForwarder, k.Resolve("a", "Broken").Status);
    }

    [Theory]
    [InlineData("NTOSKRNL.ExFoo", "NTOSKRNL", "ExFoo", null)]
    [InlineData("ntoskrnl.#12", "ntoskrnl", null, 12)]
    [InlineData("api-ms-win-core-x-l1-1-0.Func", "api-ms-win-core-x-l1-1-0", "Func", null)]
    public void Forwarder_strings_parse(string text, string module, string? name, int? ordinal)
    {
        Assert.True(PeExportResolver.TryParseForwarder(text, out var m, out var n, out var o));
        Assert.Equal((module, name, ordinal), (m, n, o));
    }

    [Theory]
    [InlineData("NoDot")]
    [InlineData(".X")]
    [InlineData("mod.")]
    [InlineData("mod.#x")]
    [InlineData("mod.#70000")]
    public void Bad_forwarder_strings_are_refused(string text) =>
        Assert.False(PeExportResolver.TryParseForwarder(text, out _, out _, out _));

    [Fact]
    public void Unreadable_export_table_is_unavailable_not_missing()
    {
        var built = new PeBuilder().Export("F", 1, 0x1000).Build();
        var missing = new bool[built.Loaded.Length / MemoryImageSource.PageSize];
        missing[built.ExportDirectoryRva / MemoryImageSource.PageSize] = true;
        var image = PeTestImages.Open(built.LoadedSource(missing));
        var r = PeExportResolver.FromImages([new("x.sys", image)]).Resolve("x.sys", "F");
        Assert.Equal(ExportResolutionStatus.ExportsUnavailable, r.Status);
    }
}
