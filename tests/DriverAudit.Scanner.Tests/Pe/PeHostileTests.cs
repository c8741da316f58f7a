using System.Buffers.Binary;
using System.Diagnostics;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using Xunit;

namespace DriverAudit.Scanner.Tests.Pe;

/// <summary>Hostile tables: each yields diagnostics and a partial result, never an exception or a hang.</summary>
public class PeHostileTests
{
    private static IEnumerable<PeImage> BothLayouts(PeBuilt built)
    {
        yield return PeTestImages.Open(built, ImageLayout.File);
        yield return PeTestImages.Open(built, ImageLayout.Loaded);
    }

    private static uint Descriptor(PeBuilt built, int field) =>
        BinaryPrimitives.ReadUInt32LittleEndian(built.Loaded.AsSpan((int)built.ImportDirectoryRva + field));

    [Fact]
    public void Import_directory_outside_the_file_is_a_diagnostic()
    {
        var built = PeTestImages.Rich(true).Build().SetDirectory(1, 0x7FFF0000, 40);
        foreach (var image in BothLayouts(built))
        {
            Assert.Equal(PeTableStatus.Unreadable, image.Imports.Status);
            Assert.Empty(image.Imports.Imports);
            Assert.Contains(image.Diagnostics, d => d.Code == PeDiagnosticCodes.ImportTableUnreadable);
            Assert.Equal(4, image.Exports.All.Count); // the rest is unaffected
            Assert.Equal(2, image.DelayImports.Imports.Count);
        }
    }

    [Fact]
    public void Import_descriptors_running_off_their_section_are_diagnosed()
    {
        // Point the table at the last 20 bytes of .text: one non-zero descriptor, then the section ends.
        var built = new PeBuilder().Import("a.dll", "X").Build();
        var text = built.Sections[0];
        var at = text.Rva + text.VirtualSize - 20;
        built.SetDirectory(1, at, 20);
        foreach (var image in BothLayouts(built))
        {
            _ = image.Imports;
            Assert.True(image.Diagnostics.Any(d => d.Code == PeDiagnosticCodes.ImportDescriptorsUnterminated), string.Join("\n", image.Diagnostics));
            Assert.Equal(PeTableStatus.Incomplete, image.Imports.Status);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Thunk_array_without_terminator_stops_at_the_section_end(bool is64)
    {
        var ptr = is64 ? 8 : 4;
        var data = new byte[0x200];
        for (var i = 0; i < data.Length; i += ptr)
        {
            if (is64) BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(i), 0x8000000000000005UL);
            else BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(i), 0x80000005u);
        }
        var built = new PeBuilder(is64).AddSection(".data", PeBuilder.DataCharacteristics, data).Import("a.dll", "X").Build();
        built.PatchRva32(built.ImportDirectoryRva, built.Sections[0].Rva); // OriginalFirstThunk -> endless ordinals
        foreach (var image in BothLayouts(built))
        {
            var imports = image.Imports;
            Assert.Equal(PeTableStatus.Incomplete, imports.Status);
            Assert.Equal(0x200 / ptr, imports.Imports.Count);
            Assert.All(imports.Imports, i => Assert.Equal(5, i.Ordinal));
            Assert.Contains(image.Diagnostics, d => d.Code == PeDiagnosticCodes.ImportThunksUnterminated);
        }
    }

    [Fact]
    public void Names_without_nul_are_truncated_and_diagnosed()
    {
        var built = new PeBuilder(false).AddSection(".data", PeBuilder.DataCharacteristics, [1, 0, .. "ABCDEFGH"u8]).Import("a.dll", "X").Build();
        var dataRva = built.Sections[0].Rva;
        var intRva = Descriptor(built, 0);
        built.PatchRva32(intRva, dataRva);                  // hint/name entry: hint 1, "ABCDEFGH" up to the section end
        built.PatchRva32(built.ImportDirectoryRva + 12, dataRva + 2); // module name: same bytes
        foreach (var image in BothLayouts(built))
        {
            var import = Assert.Single(image.Imports.Imports);
            Assert.Equal(("ABCDEFGH", "ABCDEFGH", (ushort)1), (import.Module, import.Name, import.Hint));
            Assert.Equal(2, image.Diagnostics.Count(d => d.Code == PeDiagnosticCodes.NameUnterminated));
            Assert.Equal(PeTableStatus.Incomplete, image.Imports.Status);
        }
    }

    [Fact]
    public void Zero_sized_sections_are_tolerated()
    {
        var built = new PeBuilder()
            .AddSection(".text", PeBuilder.TextCharacteristics, new byte[0x40])
            .AddSection(".zero", PeBuilder.DataCharacteristics, [], virtualSize: 0)
            .Import("a.dll", "X")
            .Build();
        foreach (var image in BothLayouts(built))
        {
            var zero = image.Sections[1];
            Assert.Equal((".zero", 0u, 0u), (zero.Name, zero.VirtualSize, zero.RawSize));
            Assert.Null(image.FindSection(zero.Rva));
            Assert.Equal(PeTableStatus.Ok, image.Imports.Status);
            Assert.Equal("X", Assert.Single(image.Imports.Imports).Name);
        }
    }

    [Theory]
    [InlineData(20)] // NumberOfFunctions
    [InlineData(24)] // NumberOfNames
    public void Huge_export_counts_are_capped(int field)
    {
        var built = PeTestImages.Rich(true).Build();
        built.PatchRva32(built.ExportDirectoryRva + (uint)field, 0xFFFFFFFF);
        foreach (var image in BothLayouts(built))
        {
            var sw = Stopwatch.StartNew();
            var exports = image.Exports;
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5));
            Assert.Equal(PeTableStatus.Incomplete, exports.Status);
            Assert.Contains(image.Diagnostics, d => d.Code == PeDiagnosticCodes.ExportCountCapped);
            Assert.NotNull(exports.FindByName("HelperOne")); // the real entries are still at the front
        }
    }

    [Fact]
    public void Export_arrays_outside_the_image_are_diagnosed()
    {
        var built = PeTestImages.Rich(false).Build();
        built.PatchRva32(built.ExportDirectoryRva + 32, 0x7FFF0000); // AddressOfNames
        foreach (var image in BothLayouts(built))
        {
            var exports = image.Exports;
            Assert.Equal(PeTableStatus.Incomplete, exports.Status);
            Assert.All(exports.All, e => Assert.Null(e.Name)); // ordinals survive, names do not
            Assert.Equal(4, exports.All.Count);
        }
    }

    [Fact]
    public void Huge_resource_entry_counts_are_capped()
    {
        var built = PeTestImages.Rich(true).Build();
        built.PatchRva16(built.ResourceRva + 12, 0xFFFF).PatchRva16(built.ResourceRva + 14, 0xFFFF);
        foreach (var image in BothLayouts(built))
        {
            var version = image.VersionInfo;
            Assert.Contains(image.Diagnostics, d => d.Code == PeDiagnosticCodes.ResourceCountCapped);
            Assert.Equal("Contoso", version.GetString("CompanyName")); // RT_VERSION is the first entry
        }
    }

    [Theory]
    [InlineData(16 + 4, 0u)]   // type entry -> back to the root
    [InlineData(24 + 20, 24u)] // name entry -> its own directory
    public void Looping_resource_directories_terminate(int entryOffset, uint target)
    {
        var built = PeTestImages.Rich(false).Build();
        built.PatchRva32(built.ResourceRva + (uint)entryOffset, 0x80000000u | target);
        foreach (var image in BothLayouts(built))
        {
            Assert.Equal(PeTableStatus.Unreadable, image.VersionInfo.Status);
            Assert.Contains(image.Diagnostics, d => d.Code == PeDiagnosticCodes.ResourceLoop);
        }
    }

    [Fact]
    public void Overlapping_resource_data_entry_is_diagnosed()
    {
        // The language entry points its "data entry" at the root directory itself.
        var built = PeTestImages.Rich(false).Build();
        built.PatchRva32(built.ResourceRva + 48 + 20, 0);
        foreach (var image in BothLayouts(built))
        {
            Assert.Equal(PeTableStatus.Unreadable, image.VersionInfo.Status);
            Assert.Contains(image.Diagnostics, d => d.Code == PeDiagnosticCodes.VersionInfoMalformed);
        }
    }

    [Fact]
    public void Huge_debug_directory_size_is_capped()
    {
        var built = PeTestImages.Rich(true).Build();
        built.SetDirectory(6, built.DebugDirectoryRva, 0xFFFFFFF0);
        foreach (var image in BothLayouts(built))
        {
            var debug = image.Debug;
            Assert.Contains(image.Diagnostics, d => d.Code == PeDiagnosticCodes.DebugCountCapped);
            Assert.InRange(debug.Entries.Count, 1, 64);
            Assert.Equal(@"C:\build\obj\test.pdb", debug.CodeView?.PdbPath);
        }
    }

    [Fact]
    public void Delay_import_va_below_image_base_is_diagnosed()
    {
        var builder = new PeBuilder(false) { DelayImportVaForm = true }.DelayImport("d.dll", "F");
        var built = builder.Build();
        built.PatchRva32(built.DelayImportDirectoryRva + 4, 0x10); // DllName VA below ImageBase
        var image = PeTestImages.Open(built, ImageLayout.File);
        Assert.Equal(PeTableStatus.Incomplete, image.DelayImports.Status);
        Assert.Contains(image.Diagnostics, d => d.Code == PeDiagnosticCodes.DelayImportBadAddress);
    }

    [Fact]
    public void Certificate_table_past_eof_is_bounded_by_the_file()
    {
        var built = PeTestImages.Rich(true).Build();
        built.SetDirectory(4, built.CertificateOffset, 0x100000);
        var image = PeTestImages.Open(built, ImageLayout.File);
        var certs = image.Certificates;
        Assert.Equal(PeTableStatus.Incomplete, certs.Status);
        Assert.Single(certs.Entries);
        Assert.Contains(image.Diagnostics, d => d.Code == PeDiagnosticCodes.CertificateTableOutsideFile);

        var zeroLength = PeTestImages.Rich(true).Build();
        BinaryPrimitives.WriteUInt32LittleEndian(zeroLength.File.AsSpan((int)zeroLength.CertificateOffset), 0);
        var image2 = PeTestImages.Open(zeroLength, ImageLayout.File);
        Assert.Empty(image2.Certificates.Entries);
        Assert.Contains(image2.Diagnostics, d => d.Code == PeDiagnosticCodes.CertificateEntryMalformed);
    }
}
