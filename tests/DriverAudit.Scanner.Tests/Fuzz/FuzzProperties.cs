using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Cli;
using DriverAudit.Scanner.Dumps;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Pe;
using DriverAudit.Scanner.RulePack;
using Xunit;

namespace DriverAudit.Scanner.Tests.Fuzz;

/// <summary>
/// Property-based fuzzing with shrinking (FsCheck) of the PE reader, the dump reader and the IAT resolver, each
/// through the code a scan runs. CI runs a few hundred mutants per target; tests/fuzz/run.sh runs thousands.
/// Failing inputs are kept under tests/fixtures/fuzz/ and replayed by <see cref="Regression_inputs_stay_fixed"/>.
/// </summary>
public sealed class FuzzProperties
{
    private static readonly RuleSet Pack = RuleSet.Load(RuleSources.Embedded());
    private static readonly InputAnalyzer Analyzer = new(Pack, new ScanOptions(1, RuleLevel.Error, false, ComputeHashes: true));

    private static readonly string[] PeSeeds =
        [.. Directory.EnumerateFiles(Path.Combine(RepoPaths.Fixtures, "bin"), "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)];

    /// <summary>The dump fixtures (x64 full, x86 PAE bitmap) are built once: writing them takes longer than reading.</summary>
    private static readonly Lazy<(byte[] Bytes, string Name)[]> DumpSeeds = new(() =>
    [
        (new FixtureDumpScenario(DumpArch.X64).Write("full"), "x64-full"),
        (new FixtureDumpScenario(DumpArch.X86Pae).Write("bitmap"), "x86pae-bitmap"),
    ]);

    /// <summary>One scenario dump, opened once, whose modules' images the IAT resolver is fuzzed on alone.</summary>
    private sealed class IatWorld
    {
        public IatWorld()
        {
            var scenario = new FixtureDumpScenario(DumpArch.X64);
            File = new TempDumpFile(scenario.Write("full"));
            Dump = DumpScenario.Open(File);
            Catalog = new DumpExportCatalog(Dump);
            Modules = [scenario.Guid, scenario.GuidNoDir, scenario.Modern, scenario.Legacy, scenario.HalUser, scenario.HalUserDescriptors, scenario.HalUserScan];
        }

        public TempDumpFile File { get; }
        public KernelDump Dump { get; }
        public DumpExportCatalog Catalog { get; }
        public WrittenModule[] Modules { get; }
        public DumpModule Listed(WrittenModule m) => Dump.Modules.Single(d => d.Name == m.Name);
    }

    private static readonly Lazy<IatWorld> Iat = new(() => new IatWorld());

    [Fact]
    public void Pe_reader_and_analysis_never_fail_on_mutated_images()
    {
        var seeds = PeSeeds.Select(File.ReadAllBytes).ToArray();
        using var t = new TempDir();
        FuzzRun.Check(150, Mutants.Of(seeds.Length),
            m => ("pe", m.Apply(seeds[m.Seed])),
            (m, bytes) => AssertAnalysed(t.File("m.sys", bytes), "m.sys", dump: false));
    }

    [Fact]
    public void Dump_reader_and_analysis_never_fail_on_mutated_dumps()
    {
        var seeds = DumpSeeds.Value;
        using var t = new TempDir();
        // Edits land in the first KiB (header, run table) or anywhere, where module pages and page tables live.
        FuzzRun.Check(40, Mutants.Of(seeds.Length),
            m => ("dump", m.Apply(seeds[m.Seed].Bytes)),
            (m, bytes) => AssertAnalysed(t.File("m.dmp", bytes), "m.dmp", dump: true));
    }

    [Fact]
    public void Iat_resolver_alone_never_fails_on_mutated_module_images()
    {
        var world = Iat.Value;
        FuzzRun.Check(300, Mutants.Of(world.Modules.Length, withMissingPages: true),
            m => ($"iat-{world.Modules[m.Seed].Name}-m{m.MissingPages:x8}", m.Apply(world.Modules[m.Seed].Loaded)),
            (m, bytes) => AssertResolves(world, world.Modules[m.Seed], bytes, m.Missing(bytes.Length)));
    }

    private static void AssertAnalysed(string path, string uri, bool dump)
    {
        var report = Analyzer.Analyze(new InputFile(path, uri, Explicit: true));
        var notes = report.Notifications.Concat(report.Artifacts.SelectMany(a => a.Notifications)).ToList();
        Assert.DoesNotContain(notes, n => n.Code == NotificationCodes.InternalError);
        if (!dump) return;
        Assert.True(notes.Count <= DumpInputAnalyzer.MaxNotificationsPerDump + 1, $"{notes.Count} notifications");
        // Artifacts are unique (SARIF requires it): no module twice.
        var modules = report.Artifacts.Where(a => a.ModuleName is not null).Select(a => (a.ModuleName, a.ModuleBase, a.Length, a.ModulePath)).ToList();
        Assert.Equal(modules.Count, modules.Distinct().Count());
    }

    private static void AssertResolves(IatWorld world, WrittenModule written, byte[] bytes, bool[]? missing)
    {
        var source = new MemoryImageSource(bytes, ImageLayout.Loaded, new ImageOrigin("fuzz.dmp", written.Name, written.Base), missing);
        if (PeImage.TryOpen(source).Image is not PeImage image) return; // headers too broken: the analyzer skips the module
        var iat = IatResolver.Resolve(image, world.Listed(written), world.Catalog, is64: true);
        Assert.True(iat.Slots.Count <= IatResolver.MaxSlots + image.Imports.Imports.Count);
        Assert.Equal(iat.Slots.Count, iat.Slots.Select(s => s.Rva).Distinct().Count());
        Assert.All(iat.Imports, i => Assert.NotNull(i.Module));
    }

    public static TheoryData<string> RegressionInputs()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.EnumerateFiles(Path.Combine(RepoPaths.Fixtures, "fuzz"), "*.bin", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            data.Add(Path.GetRelativePath(RepoPaths.Fixtures, f));
        return data;
    }

    /// <summary>Every input a fuzz run ever failed on, replayed through the property it failed.</summary>
    [Theory]
    [MemberData(nameof(RegressionInputs))]
    public void Regression_inputs_stay_fixed(string relative)
    {
        var path = Path.Combine(RepoPaths.Fixtures, relative);
        var name = Path.GetFileName(path);
        var bytes = File.ReadAllBytes(path);
        if (name.StartsWith("iat-", StringComparison.Ordinal))
        {
            var world = Iat.Value;
            // iat-MODULE-mMASK-HASH.bin: the module the image belongs to and the missing-page mask of the mutant.
            var module = world.Modules.Single(m => name.StartsWith("iat-" + m.Name + "-m", StringComparison.Ordinal));
            var mask = Convert.ToUInt32(name.Substring(("iat-" + module.Name + "-m").Length, 8), 16);
            AssertResolves(world, module, bytes, new Mutant(0, [], mask).Missing(bytes.Length));
        }
        else
        {
            using var t = new TempDir();
            var dump = name.StartsWith("dump-", StringComparison.Ordinal);
            AssertAnalysed(t.File(dump ? "r.dmp" : "r.sys", bytes), dump ? "r.dmp" : "r.sys", dump);
        }
    }
}
