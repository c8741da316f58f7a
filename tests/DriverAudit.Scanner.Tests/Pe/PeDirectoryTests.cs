using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using Xunit;

namespace DriverAudit.Scanner.Tests.Pe;

public class PeDirectoryTests
{
    [Theory]
    [MemberData(nameof(PeTestImages.BitnessAndLayouts), MemberType = typeof(PeTestImages))]
    internal void Imports_round_trip(bool is64, ImageLayout layout)
    {
        var built = PeTestImages.Rich(is64).Build();
        var image = PeTestImages.Open(built, layout);
        var table = image.Imports;
        Assert.Equal(PeTableStatus.Ok, table.Status);
        Assert.Equal(
            built.ImportSlots.Select(s => (s.Module, s.Name, s.Ordinal, s.SlotRva)),
            table.Imports.Select(i => (i.Module, i.Name, i.Ordinal, i.SlotRva)));
        Assert.All(table.Imports, i => Assert.False(i.Delayed));
        Assert.Equal([0, 0, 0, 1], table.Imports.Select(i => i.DescriptorIndex));
        Assert.Equal((ushort)1, table.Imports[1].Hint); // hints are the builder's running index
        Assert.Equal(built.ImportSlots[0].SlotRva, table.FirstThunkRva);
        Assert.Empty(image.Diagnostics);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)] // the VA form has 32-bit fields: PE32 only
    public void Delay_imports_round_trip_in_rva_and_va_forms(bool is64, bool vaForm)
    {
        var built = PeTestImages.Rich(is64, vaForm).Build();
        foreach (var layout in new[] { ImageLayout.File, ImageLayout.Loaded })
        {
            var image = PeTestImages.Open(built, layout);
            var table = image.DelayImports;
            Assert.Equal(PeTableStatus.Ok, table.Status);
            Assert.Equal(
                [("ext.sys", "ExtFunc", (int?)null, built.DelayImportSlots[0].SlotRva), ("ext.sys", null, 7, built.DelayImportSlots[1].SlotRva)],
                table.Imports.Select(i => (i.Module, i.Name, i.Ordinal, i.SlotRva)));
            Assert.All(table.Imports, i => Assert.True(i.Delayed));
            Assert.Empty(image.Diagnostics);
        }
    }

    [Theory]
    [MemberData(nameof(PeTestImages.BitnessAndLayouts), MemberType = typeof(PeTestImages))]
    internal void Exports_round_trip_with_forwarders_and_lookups(bool is64, ImageLayout layout)
    {
        var built = PeTestImages.Rich(is64).Build();
        var exports = PeTestImages.Open(built, layout).Exports;
        Assert.Equal(PeTableStatus.Ok, exports.Status);
        Assert.Equal("test.sys", exports.DllName);
        Assert.Equal(1u, exports.OrdinalBase);
        var text = PeBuilder.TextRva;
        Assert.Equal(
            [("HelperOne", 1, text + 0x10, (string?)null), ("Forwarded", 2, 0u, "NTOSKRNL.KeBugCheckEx"), (null, 3, text + 0x20, null), ("HelperAlias", 4, text + 0x10, null)],
            exports.All.Select(e => (e.Name, e.Ordinal, e.Forwarder is null ? e.Rva : 0u, e.Forwarder)));
        var forwarded = exports.FindByName("Forwarded")!;
        Assert.True(forwarded.IsForwarder);
        Assert.InRange(forwarded.Rva, built.ExportDirectoryRva, built.ExportDirectoryRva + built.ExportDirectorySize - 1);
        Assert.Equal(3, exports.FindByOrdinal(3)!.Ordinal);
        Assert.Null(exports.FindByName("helperone")); // names are case-sensitive
        Assert.Null(exports.FindByOrdinal(9));
        Assert.Equal("HelperOne", exports.FindByRva(text + 0x10)!.Name); // aliases: named first, then lowest ordinal
        Assert.Equal(3, exports.FindByRva(text + 0x20)!.Ordinal);
        Assert.Null(exports.FindByRva(text + 0x11));
        Assert.Null(exports.FindByRva(forwarded.Rva)); // forwarder strings are not code
    }

    [Theory]
    [MemberData(nameof(PeTestImages.BitnessAndLayouts), MemberType = typeof(PeTestImages))]
    internal void Load_config_round_trips(bool is64, ImageLayout layout)
    {
        var config = PeTestImages.Open(PeTestImages.Rich(is64).Build(), layout).LoadConfig;
        Assert.Equal(PeTableStatus.Ok, config.Status);
        Assert.Equal(is64 ? 0x140005000UL : 0x15000UL, config.SecurityCookie);
        Assert.Equal(0x10500u, config.GuardFlags);
        Assert.Equal(5UL, config.GuardCFFunctionCount);
        Assert.True(config.HasGuardCFFunctionTable);
    }

    [Theory]
    [InlineData(false, 0x40u)] // covers SecurityCookie (PE32 offset 60) but not the guard fields
    [InlineData(true, 0x60u)]  // covers SecurityCookie (PE32+ offset 88)
    public void Load_config_reads_only_what_its_size_covers(bool is64, uint size)
    {
        var built = new PeBuilder(is64).WithLoadConfig(securityCookie: 0x4000, guardFlags: 0x100, guardCfFunctionTable: 0x5000, size: size).Build();
        var config = PeTestImages.Open(built, ImageLayout.File).LoadConfig;
        Assert.Equal(size, config.Size);
        Assert.Equal(0x4000UL, config.SecurityCookie);
        Assert.Null(config.GuardFlags);       // bytes are there, but outside Size
        Assert.Null(config.GuardCFFunctionTable);
        Assert.False(config.HasGuardCFFunctionTable);
    }

    [Theory]
    [MemberData(nameof(PeTestImages.BitnessAndLayouts), MemberType = typeof(PeTestImages))]
    internal void Debug_directory_round_trips_codeview(bool is64, ImageLayout layout)
    {
        var debug = PeTestImages.Open(PeTestImages.Rich(is64).Build(), layout).Debug;
        Assert.Equal(PeTableStatus.Ok, debug.Status);
        var entry = Assert.Single(debug.Entries);
        Assert.Equal(PeDebugEntry.CodeViewType, entry.Type);
        Assert.Equal(new PeCodeView(PeTestImages.PdbGuid, 3, @"C:\build\obj\test.pdb"), debug.CodeView);
    }

    [Theory]
    [MemberData(nameof(PeTestImages.BitnessAndLayouts), MemberType = typeof(PeTestImages))]
    internal void Version_resource_round_trips(bool is64, ImageLayout layout)
    {
        var version = PeTestImages.Open(PeTestImages.Rich(is64).Build(), layout).VersionInfo;
        Assert.Equal(PeTableStatus.Ok, version.Status);
        Assert.Equal("1.2.3.4", version.FileVersion);
        Assert.Equal("1.2.3.4", version.ProductVersion);
        Assert.Equal(
            [("040904b0", "CompanyName", "Contoso"), ("040904b0", "FileDescription", "Test driver"), ("040904b0", "FileVersion", "1.2.3.4")],
            version.Strings.Select(s => (s.Table, s.Key, s.Value)));
        Assert.Equal("Contoso", version.GetString("CompanyName"));
        Assert.Null(version.GetString("ProductName"));
    }

    [Fact]
    public void Certificate_table_is_a_file_offset()
    {
        var built = PeTestImages.Rich(true).Build();
        var image = PeTestImages.Open(built, ImageLayout.File);
        var certs = image.Certificates;
        Assert.Equal(PeTableStatus.Ok, certs.Status);
        Assert.Equal(built.CertificateOffset, certs.FileOffset);
        var entry = Assert.Single(certs.Entries);
        Assert.Equal(new PeCertificateEntry(built.CertificateOffset, 108, 0x0200, PeCertificateEntry.TypePkcsSignedData), entry);

        var loaded = PeTestImages.Open(built, ImageLayout.Loaded);
        Assert.Equal(PeTableStatus.Unreadable, loaded.Certificates.Status);
        Assert.Contains(loaded.Diagnostics, d => d.Code == PeDiagnosticCodes.CertificateNotMapped);
    }

    [Fact]
    public void Absent_directories_read_as_absent_without_diagnostics()
    {
        var image = PeTestImages.Open(new PeBuilder().Build(), ImageLayout.File);
        Assert.Equal(PeTableStatus.Absent, image.Imports.Status);
        Assert.Equal(PeTableStatus.Absent, image.DelayImports.Status);
        Assert.Equal(PeTableStatus.Absent, image.Exports.Status);
        Assert.Equal(PeTableStatus.Absent, image.LoadConfig.Status);
        Assert.Equal(PeTableStatus.Absent, image.Debug.Status);
        Assert.Equal(PeTableStatus.Absent, image.VersionInfo.Status);
        Assert.Equal(PeTableStatus.Absent, image.Certificates.Status);
        Assert.False(image.HasRelocations);
        Assert.Empty(image.Diagnostics);
    }

    [Fact]
    public void Directories_are_parsed_once_and_cached()
    {
        var image = PeTestImages.Open(PeTestImages.Rich(true).Build(), ImageLayout.File);
        Assert.Same(image.Imports, image.Imports);
        Assert.Same(image.Exports, image.Exports);
        Assert.Same(image.VersionInfo, image.VersionInfo);
    }

    [Fact]
    public void Missing_page_in_loaded_layout_loses_only_what_is_on_it()
    {
        var built = PeTestImages.Rich(true).Build();
        var missing = new bool[built.Loaded.Length / MemoryImageSource.PageSize];
        missing[built.ImportNamesRva / MemoryImageSource.PageSize] = true;
        var image = PeTestImages.Open(built.LoadedSource(missing));

        var imports = image.Imports;
        Assert.Equal(PeTableStatus.Incomplete, imports.Status);
        // Import by ordinal needs no name page: still there, with its slot; named imports are dropped and diagnosed.
        var ordinal = Assert.Single(imports.Imports);
        Assert.Equal(0x123, ordinal.Ordinal);
        Assert.Equal(built.ImportSlots[2].SlotRva, ordinal.SlotRva);
        Assert.StartsWith("<unreadable@", ordinal.Module);
        Assert.Contains(image.Diagnostics, d => d.Code == PeDiagnosticCodes.ImportModuleNameUnreadable);
        Assert.Equal(3, image.Diagnostics.Count(d => d.Code == PeDiagnosticCodes.ImportNameUnreadable));

        // Everything else is on other pages and still parses.
        Assert.Equal(PeTableStatus.Ok, image.Exports.Status);
        Assert.Equal(4, image.Exports.All.Count);
        Assert.Equal(PeTableStatus.Ok, image.DelayImports.Status);
        Assert.Equal("Contoso", image.VersionInfo.GetString("CompanyName"));
        Assert.NotNull(image.Debug.CodeView);
    }
}
