using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Dumps;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using Xunit;

namespace DriverAudit.Scanner.Tests.Dumps;

/// <summary>
/// A dump module's facts are the same class as a file's: the same image as a file and as a module of a dump
/// answers every question alike, except where its imports come from (the resolved IAT) and its provenance.
/// </summary>
public sealed class DumpModuleFactsTests
{
    public static TheoryData<DumpArch, string, string> Drivers => new()
    {
        { DumpArch.X64, "x64", "pool_modern.sys" },
        { DumpArch.X64, "x64", "pool_legacy.sys" },
        { DumpArch.X86, "x86", "pool_legacy.sys" },
        { DumpArch.Arm64, "arm64", "pool_legacy.sys" },
    };

    [Theory]
    [MemberData(nameof(Drivers))]
    public void Same_image_as_file_and_as_dump_module_has_the_same_facts(DumpArch arch, string dir, string name)
    {
        var s = new FixtureDumpScenario(arch);
        using var file = new TempDumpFile(s.Write("full"));
        using var dump = DumpScenario.Open(file);
        var module = dump.Modules.Single(m => m.Name == name);
        var moduleImage = PeImage.TryOpen(dump.OpenModuleImage(module)).Image!;
        var inDump = DumpModuleFacts.Create(moduleImage, module, new DumpExportCatalog(dump), arch != DumpArch.X86, "/x/MEMORY.DMP");
        using var source = FileImageSource.Open(RepoPaths.Fixture(dir, name));
        var onDisk = new PeFacts(PeImage.TryOpen(source).Image!);

        Assert.Equal(onDisk.Header, inDump.Header);
        Assert.Equal(onDisk.Sections, inDump.Sections);
        Assert.Equal(onDisk.Exports, inDump.Exports);
        Assert.Equal(onDisk.VersionInfo, inDump.VersionInfo);
        Assert.Equal(onDisk.Strings, inDump.Strings);
        Assert.Equal(onDisk.Strings.Select(onDisk.IsStringReferenced), inDump.Strings.Select(inDump.IsStringReferenced));
        Assert.Equal(onDisk.CodeNotEvaluated, inDump.CodeNotEvaluated);
        Assert.Equal(onDisk.AbsentInstructions, inDump.AbsentInstructions);
        Assert.Equal(onDisk.Instructions, inDump.Instructions);
        Assert.NotEmpty(onDisk.Calls);
        Assert.Equal(Calls(onDisk), Calls(inDump));
        foreach (var c in (string[])[Characteristics.IatInExecutableSection, Characteristics.HasStackCookie, Characteristics.Cfg,
                     Characteristics.ForceIntegrity, Characteristics.NxCompat, Characteristics.Packed])
            Assert.True(onDisk.GetCharacteristic(c) == inDump.GetCharacteristic(c), c);

        // The import source differs: the file's import directory, the dump's resolved IAT (same functions).
        Assert.Null(onDisk.Iat);
        Assert.NotNull(inDump.Iat);
        Assert.Same(inDump.Iat!.Imports, inDump.Imports);
        Assert.Equal(Names(onDisk.Imports), Names(inDump.Imports));

        // Provenance differs: a file, or the loader's entry in the dump.
        Assert.Equal(new ModuleFact("file", name, RepoPaths.Fixture(dir, name), null), onDisk.Module);
        Assert.Equal(new ModuleFact("dump", name, @"\SystemRoot\System32\drivers\" + name, module.Base), inDump.Module);
        Assert.Equal("MEMORY.DMP!" + name, inDump.DisplayName);
        Assert.NotNull(onDisk.FileSha256);
        Assert.Null(inDump.FileSha256); // a loaded image is not a file
    }

    [Fact]
    public void The_IAT_is_resolved_on_first_read_only()
    {
        var s = new FixtureDumpScenario(DumpArch.X64);
        using var file = new TempDumpFile(s.Write("full"));
        using var dump = DumpScenario.Open(file);
        var module = dump.Modules.Single(m => m.Name == FixtureDumpScenario.GuidName);
        var image = PeImage.TryOpen(dump.OpenModuleImage(module)).Image!;
        var runs = 0;
        var facts = new PeFacts(image, "d", DumpModuleFacts.Provenance(module), () =>
        {
            runs++;
            return IatResolver.Resolve(image, module, new DumpExportCatalog(dump), is64: true);
        });
        _ = facts.Header;
        _ = facts.Sections;
        Assert.Equal(0, runs);
        // INIT (the import descriptors) is zeroed: only the IAT names the imports.
        Assert.DoesNotContain(PeFacts.ImportsOf(image), i => i.Name == "ExAllocatePool");
        Assert.Contains(facts.Imports, i => i.Name == "ExAllocatePool");
        Assert.Same(facts.Iat, facts.Iat);
        _ = facts.Calls;
        Assert.Equal(1, runs);
    }

    private static string[] Names(IReadOnlyList<ImportFact> imports) =>
        [.. imports.Select(i => i.Ref.Key).Order(StringComparer.Ordinal)];

    private static string[] Calls(PeFacts facts) =>
        [.. facts.Calls.Select(c => $"{c.Api.Ref.Key} 0x{c.SiteRva:x} {c.FunctionRva} {c.Ordinal} {c.Shape} {string.Join(',', c.Args)} {c.Via}")];
}
