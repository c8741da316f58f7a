using System.Buffers.Binary;
using DriverAudit.Scanner.Dumps;
using Xunit;

namespace DriverAudit.Scanner.Tests.Dumps;

public sealed class HostileDumpTests
{
    private static DumpOpenResult OpenBytes(byte[] bytes, out TempDumpFile file)
    {
        file = new TempDumpFile(bytes);
        var result = KernelDump.TryOpen(file.Path);
        Assert.DoesNotContain("Internal error", result.Message);
        return result;
    }

    private static string[] Codes(KernelDump dump) => dump.Diagnostics.Select(d => d.Code).ToArray();

    [Theory]
    [InlineData(DumpFormatTests.Body.Full)]
    [InlineData(DumpFormatTests.Body.BitmapKernel)]
    [InlineData(DumpFormatTests.Body.Triage)]
    [InlineData(DumpFormatTests.Body.RangeKernel)]
    [InlineData(DumpFormatTests.Body.RangeComplete)]
    public void Truncated_files_yield_an_error_or_a_diagnostic(DumpFormatTests.Body body)
    {
        var s = new DumpScenario(DumpArch.X64);
        var whole = DumpFormatTests.Write(s.Writer, body);
        int[] cuts = [0, 3, 8, 0x100, 0x1FFF, 0x2000, 0x2010, 0x2040, 0x2100, 0x3000, 0x3800, 0x7000, 0x10000, whole.Length / 2, whole.Length - 0x1001, whole.Length - 1];
        foreach (var cut in cuts.Where(c => c < whole.Length))
        {
            var result = OpenBytes(whole[..cut], out var file);
            using var _ = file;
            if (!result.Success)
            {
                Assert.Contains(result.Error, new[] { DumpOpenError.NotADump, DumpOpenError.Truncated });
                Assert.NotEmpty(result.Message);
                continue;
            }
            using var dump = result.Dump!;
            Assert.Contains(DumpDiagnosticCodes.FileTruncated, Codes(dump));
            foreach (var m in dump.Modules) // reading every module of a cut dump is bounded and safe
            {
                using var image = dump.OpenModuleImage(m);
                image.Read(0, new byte[image.Length]);
            }
        }
    }

    [Fact]
    public void Wrong_directory_table_base_reports_the_list_head_and_opens()
    {
        var s = new DumpScenario(DumpArch.X64);
        s.Writer.DirectoryTableBase = s.Writer.PfnOf(s.Hal.Base) << 12; // a page of code, not a PML4
        var result = OpenBytes(s.Writer.WriteFull(), out var file);
        using var _ = file;
        using var dump = result.Dump!;
        Assert.Empty(dump.Modules);
        Assert.Contains(DumpDiagnosticCodes.ModuleListHead, Codes(dump));
    }

    [Theory]
    [InlineData(DumpArch.X64, 0)]
    [InlineData(DumpArch.X64, 1)]
    [InlineData(DumpArch.X86, 2)]
    public void Cyclic_module_list_stops_with_a_diagnostic(DumpArch arch, int backTo)
    {
        var s = new DumpScenario(arch);
        s.Writer.CycleBackTo = backTo;
        var result = OpenBytes(s.Writer.WriteBitmap(), out var file);
        using var _ = file;
        using var dump = result.Dump!;
        Assert.Equal(["ntoskrnl.exe", "hal.dll", s.Driver.Name], dump.Modules.Select(m => m.Name));
        Assert.Contains(DumpDiagnosticCodes.ModuleListCycle, Codes(dump));
    }

    [Fact]
    public void Name_length_past_maximum_is_truncated_and_other_modules_survive()
    {
        var s = new DumpScenario(DumpArch.X64);
        s.Hal.BaseNameLengths = (0x200, 6); // "hal.dll" but MaximumLength allows 3 characters
        s.Driver.BaseNameLengths = (0xFFFE, 0xFFFE); // past the cap and past the mapped data
        var result = OpenBytes(s.Writer.WriteFull(), out var file);
        using var _ = file;
        using var dump = result.Dump!;
        Assert.Equal(3, dump.Modules.Count);
        Assert.Equal("ntoskrnl.exe", dump.Modules[0].Name);
        Assert.Equal("hal", dump.Modules[1].Name);
        Assert.StartsWith(s.Driver.Name, dump.Modules[2].Name);
        Assert.Equal(s.Driver.Base, dump.Modules[2].Base);
        Assert.True(dump.Diagnostics.Count(d => d.Code == DumpDiagnosticCodes.ModuleName) >= 2);
    }

    [Theory]
    [InlineData(0x45474150u)]
    [InlineData(43u)]
    public void Run_table_with_impossible_count_is_refused(uint runs)
    {
        var s = new DumpScenario(DumpArch.X64);
        s.Writer.RunCountOverride = runs;
        var result = OpenBytes(s.Writer.WriteFull(), out var file);
        using var _ = file;
        Assert.False(result.Success);
        Assert.Equal(DumpOpenError.Corrupt, result.Error);
        Assert.Contains(runs == 43 ? "43" : "PAGE", result.Message);
    }

    [Fact]
    public void Bitmap_claiming_more_pages_than_the_file_holds_is_diagnosed_and_modules_still_come_out()
    {
        var s = new DumpScenario(DumpArch.X64);
        s.Writer.BitmapPagesOverride = 0x1_0000_0000;
        var result = OpenBytes(s.Writer.WriteBitmap(), out var file);
        using var _ = file;
        using var dump = result.Dump!;
        Assert.Equal(3, dump.Modules.Count);
        Assert.Contains(DumpDiagnosticCodes.Bitmap, Codes(dump));
    }

    [Fact]
    public void Bitmap_with_more_bits_than_the_file_holds_is_capped()
    {
        var s = new DumpScenario(DumpArch.X64);
        s.Writer.BitmapBitsOverride = 0x7FFF_FFFF_FFFF;
        var result = OpenBytes(s.Writer.WriteBitmap(), out var file);
        using var _ = file;
        using var dump = result.Dump!;
        Assert.Contains(DumpDiagnosticCodes.FileTruncated, Codes(dump));
    }

    [Fact]
    public void Bitmap_cut_inside_the_pages_reports_the_shortfall_and_keeps_early_modules()
    {
        var s = new DumpScenario(DumpArch.X64);
        var whole = s.Writer.WriteBitmap();
        var result = OpenBytes(whole[..(whole.Length - 3 * 0x1000)], out var file);
        using var _ = file;
        using var dump = result.Dump!;
        Assert.Contains(DumpDiagnosticCodes.FileTruncated, Codes(dump));
        using var kernel = dump.OpenModuleImage(dump.Modules[0]);
        Assert.Equal(0, kernel.CountMissingPages()); // low PFNs are early in the file
    }

    [Theory]
    [InlineData("MDMP", DumpOpenError.UserModeDump)]
    [InlineData("USERDU64", DumpOpenError.UserModeDump)]
    [InlineData("PAGEDU6", DumpOpenError.NotADump)]
    [InlineData("MZ this is a driver, not a dump", DumpOpenError.NotADump)]
    internal void Other_files_are_told_apart(string start, DumpOpenError expected)
    {
        var bytes = new byte[0x3000];
        System.Text.Encoding.ASCII.GetBytes(start).CopyTo(bytes, 0);
        var result = OpenBytes(bytes, out var file);
        using var _ = file;
        Assert.Equal(expected, result.Error);
        Assert.NotEmpty(result.Message);
    }

    [Theory]
    [InlineData(3u)]
    [InlineData(0x63u)]
    public void Unsupported_dump_types_are_named(uint type)
    {
        var s = new DumpScenario(DumpArch.X64);
        s.Writer.DumpTypeOverride = type;
        var result = OpenBytes(s.Writer.WriteFull(), out var file);
        using var _ = file;
        Assert.Equal(DumpOpenError.UnsupportedType, result.Error);
        Assert.Contains(type.ToString(), result.Message);
    }

    [Fact]
    public void Unknown_and_mismatched_machines_are_unsupported()
    {
        var s = new DumpScenario(DumpArch.X64);
        s.Writer.MachineOverride = 0x01C4; // ARM32: no kernel dump support
        var result = OpenBytes(s.Writer.WriteFull(), out var file);
        using (file) Assert.Equal(DumpOpenError.UnsupportedType, result.Error);
        var x86 = new DumpScenario(DumpArch.X86);
        x86.Writer.MachineOverride = 0xAA64; // ARM64 in a 32-bit header
        result = OpenBytes(x86.Writer.WriteFull(), out file);
        using (file) Assert.Equal(DumpOpenError.UnsupportedType, result.Error);
    }

    [Theory]
    [InlineData(DumpArch.X64)]
    [InlineData(DumpArch.X86Pae)]
    public void Encrypted_dumps_are_refused(DumpArch arch)
    {
        var s = new DumpScenario(arch);
        s.Writer.AttributesOverride = 1u << 8;
        var result = OpenBytes(s.Writer.WriteFull(), out var file);
        using var _ = file;
        Assert.Equal(DumpOpenError.Encrypted, result.Error);
    }

    [Fact]
    public void Missing_file_is_an_io_error()
    {
        var result = KernelDump.TryOpen(Path.Combine(Path.GetTempPath(), $"no-such-{Guid.NewGuid():N}.dmp"));
        Assert.Equal(DumpOpenError.IoError, result.Error);
    }

    [Theory]
    [InlineData(DumpArch.X64)]
    [InlineData(DumpArch.X86)]
    public void Kdbg_is_cross_checked_when_readable(DumpArch arch)
    {
        var good = new DumpScenario(arch);
        good.Writer.KdbgModuleList = good.Writer.PsLoadedModuleList;
        var result = OpenBytes(good.Writer.WriteFull(), out var file);
        using (file)
        using (var dump = result.Dump!)
            Assert.Empty(dump.Diagnostics);

        var bad = new DumpScenario(arch);
        bad.Writer.KdbgModuleList = bad.Writer.PsLoadedModuleList + 0x40;
        result = OpenBytes(bad.Writer.WriteFull(), out file);
        using (file)
        using (var dump = result.Dump!)
        {
            Assert.Contains(DumpDiagnosticCodes.Kdbg, Codes(dump));
            Assert.Equal(3, dump.Modules.Count);
        }
    }

    [Theory]
    [InlineData(DumpFormatTests.Body.Full)]
    [InlineData(DumpFormatTests.Body.BitmapKernel)]
    [InlineData(DumpFormatTests.Body.Triage)]
    [InlineData(DumpFormatTests.Body.RangeKernelAndUser)]
    [InlineData(DumpFormatTests.Body.RangeComplete)]
    public void Random_corruption_never_throws_or_hangs(DumpFormatTests.Body body)
    {
        var s = new DumpScenario(DumpArch.X64);
        var whole = DumpFormatTests.Write(s.Writer, body);
        var random = new Random(1234 + (int)body);
        for (var round = 0; round < 60; round++)
        {
            var bytes = (byte[])whole.Clone();
            for (var i = 0; i < 24; i++)
            {
                // Bias towards the header and the first pages (tables, list), where structure lives.
                var at = random.Next(3) == 0 ? random.Next(bytes.Length) : random.Next(Math.Min(bytes.Length, 0x2400));
                if (at < 8) continue; // keep the signature so the parser goes deep
                if (random.Next(2) == 0) bytes[at] = (byte)random.Next(256);
                else if (at + 8 <= bytes.Length) BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), (ulong)random.NextInt64());
            }
            var result = OpenBytes(bytes, out var file);
            using var _ = file;
            if (!result.Success) continue;
            using var dump = result.Dump!;
            foreach (var m in dump.Modules.Take(64))
            {
                using var image = dump.OpenModuleImage(m);
                image.Read(0, new byte[Math.Min(image.Length, 0x10000)]);
                image.IsAvailable(0, image.Length);
            }
            Assert.NotNull(dump.Diagnostics);
        }
    }
}

public sealed class DumpBoundsTests
{
    [Theory]
    [InlineData(DumpArch.X64, false)]
    [InlineData(DumpArch.X64, true)]
    [InlineData(DumpArch.X86, true)]
    public void A_huge_triage_driver_count_yields_the_real_modules_and_a_diagnostic(DumpArch arch, bool withoutPool)
    {
        var s = new DumpScenario(arch);
        s.Writer.TriageDriverCountOverride = 3945;
        s.Writer.TriageWithoutStringPool = withoutPool;
        using var file = new TempDumpFile(s.Writer.WriteTriage());
        using var dump = DumpScenario.Open(file);

        Assert.Equal(s.Writer.Modules.Select(m => (m.Name, m.Base)), dump.Modules.Select(m => (m.Name, m.Base)));
        Assert.Contains(dump.Diagnostics, d => d.Code == DumpDiagnosticCodes.FileTruncated && d.Message.Contains("claims 3945 entries"));
    }

    [Fact]
    public void Garbage_past_the_real_triage_list_stops_after_a_run_of_implausible_entries()
    {
        var s = new DumpScenario(DumpArch.X64);
        s.Writer.TriageDriverCountOverride = 3945;
        s.Writer.TriageWithoutStringPool = true;
        var bytes = s.Writer.WriteTriage();
        // Append 64 KiB of UTF-16 text, as the string pool and data blocks of a real dump look to a runaway list.
        var text = System.Text.Encoding.Unicode.GetBytes(string.Concat(Enumerable.Repeat(@"\SystemRoot\system32\drivers\nvlddmkm.sys ", 800)));
        using var file = new TempDumpFile([.. bytes, .. text]);
        using var dump = DumpScenario.Open(file);

        Assert.Equal(3, dump.Modules.Count);
        Assert.Contains(dump.Diagnostics, d => d.Code == DumpDiagnosticCodes.ModuleBase && d.Message.Contains("not a canonical x64 kernel address"));
        Assert.Contains(dump.Diagnostics, d => d.Code == DumpDiagnosticCodes.Triage && d.Message.Contains("implausible entries in a row"));
        Assert.True(dump.Diagnostics.Count < 20, string.Join("\n", dump.Diagnostics));
    }

    [Theory]
    [InlineData(DumpArch.X64, 0x002E006C006E0072UL)]
    [InlineData(DumpArch.X64, 0x00007FF600000000UL)]
    [InlineData(DumpArch.X86Pae, 0x00400000UL)]
    [InlineData(DumpArch.X86, 0x80001234UL)]
    public void Implausible_module_bases_are_skipped_with_a_diagnostic_and_the_walk_goes_on(DumpArch arch, ulong listed)
    {
        var s = new DumpScenario(arch);
        s.Hal.ListedBase = listed;
        foreach (var kind in new[] { "full", "triage" })
        {
            using var file = new TempDumpFile(kind == "full" ? s.Writer.WriteFull() : s.Writer.WriteTriage());
            using var dump = DumpScenario.Open(file);
            Assert.Equal(["ntoskrnl.exe", s.Driver.Name], dump.Modules.Select(m => m.Name));
            Assert.Contains(dump.Diagnostics, d => d.Code == DumpDiagnosticCodes.ModuleBase && d.Message.Contains($"0x{listed:X}"));
        }
    }

    [Theory]
    [InlineData(8u)]
    [InlineData(10u)]
    public void Range_dumps_read_like_full_dumps(uint type)
    {
        var s = new FixtureDumpScenario(DumpArch.X64);
        using var full = new TempDumpFile(s.Write("full"));
        using var range = new TempDumpFile(s.Writer.WriteRange(type));
        using var a = DumpScenario.Open(full);
        using var b = DumpScenario.Open(range);
        Assert.Empty(b.Diagnostics);
        Assert.Equal(a.Modules, b.Modules);
        foreach (var m in b.Modules)
        {
            using var x = a.OpenModuleImage(m);
            using var y = b.OpenModuleImage(m);
            var bx = new byte[x.Length];
            var by = new byte[y.Length];
            Assert.Equal(x.Read(0, bx), y.Read(0, by));
            Assert.Equal(bx, by);
        }
    }

    [Theory]
    [InlineData("metadata", DumpOpenError.Corrupt)]
    [InlineData("marker", DumpOpenError.Corrupt)]
    [InlineData("x86", DumpOpenError.UnsupportedType)]
    [InlineData("huge-count", DumpOpenError.None)]
    [InlineData("huge-pages", DumpOpenError.None)]
    internal void Hostile_range_blocks_are_refused_or_diagnosed(string what, DumpOpenError expected)
    {
        var s = new DumpScenario(what == "x86" ? DumpArch.X86Pae : DumpArch.X64);
        if (what == "metadata") s.Writer.RangeMetadataSizeOverride = 0xFFFF_FFFF_0000;
        byte[] bytes;
        if (what == "x86")
        {
            s.Writer.DumpTypeOverride = 10;
            bytes = s.Writer.WriteFull();
        }
        else bytes = s.Writer.WriteRange(10);
        if (what == "marker") bytes[0x2000] = 0x41;
        if (what == "huge-count") BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(0x2020), 0xFFFF_FFFF);
        if (what == "huge-pages")
        {
            // First range: 2^50 pages; the file holds a few hundred.
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(0x2038), 1UL << 50);
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(0x2028), ulong.MaxValue);
        }
        var result = KernelDump.TryOpen(new TempDumpFile(bytes).Path);
        Assert.Equal(expected, result.Error);
        Assert.DoesNotContain("Internal error", result.Message);
        if (expected != DumpOpenError.None)
        {
            Assert.Contains(what == "x86" ? "32-bit" : "'RDMP'", result.Message);
            return;
        }
        using var dump = result.Dump!;
        Assert.NotEmpty(dump.Diagnostics);
        foreach (var m in dump.Modules)
        {
            using var image = dump.OpenModuleImage(m);
            image.Read(0, new byte[image.Length]);
        }
    }
}
