using System.Text.Json;
using DriverAudit.Scanner.Dumps;
using DriverAudit.Scanner.Engine;
using Xunit;

namespace DriverAudit.Scanner.Tests.Dumps;

/// <summary>Raw physical memory images (no header) and the memory formats DriverAudit refuses.</summary>
public sealed class RawImageTests
{
    /// <summary>A kernel exporting PsLoadedModuleList (the list head lives in its .data), HAL, the GUID driver, Defender's driver.</summary>
    public static DumpWriter Scenario(DumpArch arch, bool fiveLevel = false, int dataSize = 0x200)
    {
        var is64 = arch == DumpArch.X64;
        ulong Kva(ulong offset) => (is64 ? 0xFFFFF80000000000 : 0x80000000) + offset;
        var w = new DumpWriter(arch, fiveLevel);
        var kernel = new PeBuilder(is64) { ExportDllName = "ntoskrnl.exe", TimeDateStamp = 0x5F3E1A01 }
            .AddSection(".data", PeBuilder.DataCharacteristics, new byte[dataSize])
            .Export("PsLoadedModuleList", 1, PeBuilder.TextRva)
            .Build();
        var k = w.AddModule(@"\SystemRoot\system32\ntoskrnl.exe", Kva(0x20_0000), kernel.File);
        w.SetListHead(k.Base + PeBuilder.TextRva);
        w.AddModule(@"\SystemRoot\system32\hal.dll", Kva(0x40_0000), MiniPe.Build(is64, 0x5F3E1A02, 0x6001, new MiniSection(".text", 0x1000, MiniPe.Pattern(0x1000, 4))));
        var dir = is64 ? "x64" : "x86";
        w.AddModule(@"\SystemRoot\System32\drivers\" + FixtureDumpScenario.GuidName, Kva(0x100_0000), File.ReadAllBytes(RepoPaths.Fixture(dir, FixtureDumpScenario.GuidName)));
        w.AddModule(@"\SystemRoot\system32\drivers\wd\WdFilter.sys", Kva(0x120_0000), File.ReadAllBytes(RepoPaths.Fixture(dir, "pool_modern.sys")));
        return w;
    }

    private static KernelDump Open(byte[] bytes, out TempDir dir, string name = "memory.raw")
    {
        dir = new TempDir();
        var path = dir.File(name, bytes);
        var result = KernelDump.TryOpen(path);
        Assert.True(result.Success, $"{result.Error}: {result.Message}");
        return result.Dump!;
    }

    [Theory]
    [InlineData(DumpArch.X64, 0x100, false)]
    [InlineData(DumpArch.X64, 0x1ED, false)]
    [InlineData(DumpArch.X64, 0x1FF, false)]
    [InlineData(DumpArch.X64, 0x1ED, true)]
    [InlineData(DumpArch.X86Pae, 0, false)]
    [InlineData(DumpArch.X86, 0, false)]
    public void The_module_list_is_found_without_a_header(DumpArch arch, int selfMap, bool startBlock)
    {
        var w = Scenario(arch);
        using var dump = Open(w.WriteRaw(selfMap, startBlock), out var dir);
        using var _ = dir;

        Assert.Equal(DumpType.RawMemory, dump.DumpType);
        Assert.Equal(arch == DumpArch.X64 ? DumpMachine.X64 : DumpMachine.X86, dump.Machine);
        Assert.Equal(w.Modules.Select(m => (m.Name, m.FullPath, m.Base, m.Size)), dump.Modules.Select(m => (m.Name, m.FullPath, m.Base, m.Size)));
        Assert.Empty(dump.Diagnostics);
        Assert.Contains(dump.LocatorNotes, n => n.StartsWith("page-table root: " + (startBlock ? "x64 processor start block" : arch switch
        {
            DumpArch.X64 => "self-referencing PML4",
            DumpArch.X86Pae => "self-referencing x86 PAE page directory",
            _ => "self-referencing x86 page directory",
        }), StringComparison.Ordinal));
        if (arch == DumpArch.X64 && !startBlock) Assert.Contains(dump.LocatorNotes, n => n.Contains($"index 0x{selfMap:X}"));
        foreach (var m in dump.Modules) // every byte of every module as written
        {
            using var image = dump.OpenModuleImage(m);
            var bytes = new byte[image.Length];
            Assert.Equal(bytes.Length, image.Read(0, bytes));
            Assert.Equal(w.Modules.Single(x => x.Base == m.Base).Loaded.Length, bytes.Length);
        }
    }

    [Fact]
    public void A_random_self_map_index_is_found()
    {
        var index = new Random(13).Next(256, 512);
        while (index == 0x1F0) index = new Random(index).Next(256, 512); // the kernel's own slot
        using var dump = Open(Scenario(DumpArch.X64).WriteRaw(index), out var dir);
        using var _ = dir;
        Assert.Equal(4, dump.Modules.Count);
        Assert.Contains(dump.LocatorNotes, n => n.Contains($"index 0x{index:X}"));
    }

    private static List<(string Rule, string Module)> Findings(TempDir dir, string file)
    {
        var outcome = CliRunner.Run(dir.Path, "scan", file, "--format", "sarif", "--output", file + ".sarif", "--no-progress");
        Assert.True(outcome.ExitCode is 0 or 1, outcome.Stderr);
        var run = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, file + ".sarif"))).RootElement.GetProperty("runs")[0];
        return [.. run.GetProperty("results").EnumerateArray()
            .Select(r => (r.GetProperty("ruleId").GetString()!, r.GetProperty("properties").GetProperty("moduleName").GetString()!))
            .OrderBy(x => x.Item2, StringComparer.Ordinal).ThenBy(x => x.Item1, StringComparer.Ordinal)];
    }

    [Theory]
    [InlineData(DumpArch.X64, "memory.raw")]
    [InlineData(DumpArch.X64, "capture.mem")]
    [InlineData(DumpArch.X64, "Windows 10 x64-Snapshot1.vmem")]
    [InlineData(DumpArch.X64, "MEMORY.DMP")]
    [InlineData(DumpArch.X64, "acquired.bin")] // no telling extension: recognised by the IVT in page 0
    [InlineData(DumpArch.X86Pae, "memory.raw")]
    public void A_raw_image_scans_like_a_complete_dump_of_the_same_machine(DumpArch arch, string name)
    {
        var w = Scenario(arch);
        using var dir = new TempDir();
        dir.File(name, w.WriteRaw());
        dir.File("full.dmp", w.WriteFull());

        var raw = Findings(dir, name);
        Assert.Equal(Findings(dir, "full.dmp"), raw);
        Assert.Contains(("DA7001", FixtureDumpScenario.GuidName), raw);
        Assert.DoesNotContain(raw, r => r.Module == "WdFilter.sys" && r.Rule == "DA7001");
    }

    [Fact]
    public void Inspect_explains_how_the_kernel_was_found()
    {
        using var dir = new TempDir();
        dir.File("memory.raw", Scenario(DumpArch.X64).WriteRaw(0x1A3));
        var outcome = CliRunner.Run(dir.Path, "inspect", "memory.raw");
        Assert.Equal(0, outcome.ExitCode);
        Assert.Contains("kernel dump: raw memory image, machine x64", outcome.Stdout);
        Assert.Contains("located: page-table root: self-referencing PML4 at physical 0x10000, index 0x1A3", outcome.Stdout);
        Assert.Contains("located: ntoskrnl at 0xFFFFF80000200000, PsLoadedModuleList 0xFFFFF80000201000", outcome.Stdout);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("wrong-root")]
    [InlineData("cyclic")]
    [InlineData("zeros")]
    [InlineData("many-false-roots")]
    public void Hostile_raw_images_end_with_a_message_or_a_diagnostic(string what)
    {
        var w = Scenario(DumpArch.X64);
        if (what == "cyclic") w.CycleBackTo = 1;
        var bytes = w.WriteRaw(selfMap: what != "wrong-root");
        if (what == "truncated")
        {
            // Cut halfway through the pages written, off a page boundary: some module pages (or the kernel's) are gone.
            var last = bytes.Length / 0x1000 - 1;
            while (last > 0 && bytes.AsSpan(last * 0x1000, 0x1000).IndexOfAnyExcept((byte)0) < 0) last--;
            bytes = bytes[..(last / 2 * 0x1000 + 0x123)];
        }
        if (what == "zeros") bytes = new byte[64 << 20];
        if (what == "many-false-roots")
        {
            // 4,000 pages that each look like a PML4 mapping itself, and no kernel behind any of them.
            bytes = new byte[4096 * 0x1000];
            for (var p = 1; p < 4096; p++)
            {
                BitConverter.GetBytes(((ulong)p << 12) | 0x63).CopyTo(bytes, p * 0x1000 + 0x1ED * 8);
                BitConverter.GetBytes(((ulong)(p ^ 1) << 12) | 0x63).CopyTo(bytes, p * 0x1000 + 0x1F0 * 8);
            }
        }
        using var dir = new TempDir();
        var path = dir.File("memory.raw", bytes);
        var result = KernelDump.TryOpen(path);
        Assert.DoesNotContain("Internal error", result.Message);
        if (what is "cyclic")
        {
            using var dump = result.Dump!;
            Assert.Contains(dump.Diagnostics, d => d.Code == DumpDiagnosticCodes.ModuleListCycle);
            return;
        }
        if (result.Dump is { } d2)
        {
            // A truncated image may keep its kernel: then what is missing is a diagnostic or a shorter list.
            using var _ = d2;
            Assert.True(d2.Modules.Count < 4 || d2.Diagnostics.Count > 0);
            return;
        }
        Assert.Equal(DumpOpenError.NoKernelFound, result.Error);
        Assert.Contains("raw physical memory image", result.Message);
        if (what == "many-false-roots") Assert.Contains("candidate page-table root(s) found, none leads to ntoskrnl", result.Message);
    }

    [Theory]
    [InlineData("hiberfil.sys", "hibr", "hibernation file")]
    [InlineData("hiberfil.sys", "WAKE", "hibernation file")]
    [InlineData("hiberfil.sys", "\0\0\0\0", "hibernation file")]
    [InlineData("sys/pagefile.sys", "\0\0\0\0", "page or swap file")]
    [InlineData("mem.lime", "EMiL", "LiME")]
    [InlineData("guest.elf", "\u007fELF", "ELF core")]
    [InlineData("capture.aff4", "PK\u0003\u0004", "AFF4")]
    [InlineData("vm.vmrs", "\0\0\0\0", "Hyper-V saved-state")]
    [InlineData("Windows 10 x64-Snapshot1.vmsn", "\u00d2\u00be\u00d2\u00be", "Scan the .vmem of the same name")]
    public void Other_memory_formats_are_refused_with_a_note_not_as_broken_drivers(string name, string magic, string expected)
    {
        using var dir = new TempDir();
        var bytes = new byte[0x20_0000];
        System.Text.Encoding.Latin1.GetBytes(magic).CopyTo(bytes, 0);
        dir.File(name, bytes);
        var outcome = CliRunner.Run(dir.Path, "scan", ".", "--include", "**/*", "--format", "json", "--no-progress");
        Assert.Equal(0, outcome.ExitCode);
        var notes = outcome.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("kind").GetString() == "notification").ToList();
        var n = Assert.Single(notes);
        Assert.Equal(NotificationCodes.DumpUnreadable, n.GetProperty("code").GetString());
        Assert.Equal("note", n.GetProperty("level").GetString());
        Assert.Contains(expected, n.GetProperty("message").GetString());
    }
}
