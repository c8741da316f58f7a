using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Cli;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Pe;
using DriverAudit.Scanner.RulePack;
using Xunit;

namespace DriverAudit.Scanner.Tests.EndToEnd;

/// <summary>The cost of an image follows the bytes behind it, not its headers' claims.</summary>
public sealed class CostModelTests
{
    private static readonly RuleSet Pack = RuleSet.Load(RuleSources.Embedded());

    [Fact]
    public void Overlapping_sections_are_read_once()
    {
        var bytes = AmplificationPe.Build(File.ReadAllBytes(RepoPaths.Fixture("x64", "tags_O2.sys")), sections: 1024, bodyBytes: 64 << 10);
        var image = PeImage.TryOpen(new MemoryImageSource(bytes, ImageLayout.File, new ImageOrigin("amp.sys"))).Image!;
        Assert.Equal(1024, image.Sections.Count);

        var code = image.DistinctSpans(s => s.Executable);
        var data = image.DistinctSpans(s => !s.Executable);
        // Every byte behind the image at most once in each pass: never more than the file.
        Assert.True(code.Sum(s => (long)s.Length) <= bytes.Length, $"{code.Sum(s => (long)s.Length)} code bytes");
        Assert.True(data.Sum(s => (long)s.Length) <= bytes.Length, $"{data.Sum(s => (long)s.Length)} data bytes");
        // ... and nothing lost: the first amplifier maps the whole body, so the code spans reach its end.
        Assert.Contains(image.Diagnostics, d => d.Code == PeDiagnosticCodes.SectionsOverlap);
    }

    [Fact]
    public void Distinct_spans_keep_every_byte_of_non_overlapping_sections()
    {
        var bytes = File.ReadAllBytes(RepoPaths.Fixture("x64", "tags_O2.sys"));
        var image = PeImage.TryOpen(new MemoryImageSource(bytes, ImageLayout.File, new ImageOrigin("t.sys"))).Image!;
        var spans = image.DistinctSpans(_ => true);
        Assert.Equal(image.Sections.Where(s => image.DataSize(s) > 0).Select(s => (s.Rva, image.DataSize(s))), spans.Select(s => (s.Rva, s.Length)));
        Assert.DoesNotContain(image.Diagnostics, d => d.Code == PeDiagnosticCodes.SectionsOverlap);
    }

    [Fact]
    public void The_amplification_PE_costs_about_one_body_not_1024()
    {
        // 1,024 section headers each mapping a 1 MiB body: before the cost model, strings and disassembly read
        // each header's data (1 GiB of work for a 1 MiB file; a 1.6 MB file took 97 s and 13.4 GB).
        var bytes = AmplificationPe.Build(File.ReadAllBytes(RepoPaths.Fixture("x64", "tags_O2.sys")));
        // tests/fuzz/run.sh asks for the file to measure a whole scan of it.
        if (Environment.GetEnvironmentVariable("DRIVERAUDIT_WRITE_AMPLIFICATION") is { Length: > 0 } copy) File.WriteAllBytes(copy, bytes);
        using var t = new TempDir();
        var path = t.File("amp.sys", bytes);
        var analyzer = new InputAnalyzer(Pack, new ScanOptions(1, RuleLevel.Error, false, ComputeHashes: true));

        var before = GC.GetAllocatedBytesForCurrentThread();
        var report = analyzer.Analyze(new InputFile(path, "amp.sys", Explicit: true));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        var artifact = Assert.Single(report.Artifacts);
        Assert.True(artifact.Analyzed);
        Assert.DoesNotContain(artifact.Notifications, n => n.Code == NotificationCodes.InternalError);
        Assert.Contains(artifact.Notifications, n => n.Message.Contains("section headers map the same bytes more than once"));
        Assert.True(allocated < 256L << 20, $"{allocated:N0} bytes allocated for a {bytes.Length:N0}-byte file");
        Assert.True(artifact.Findings.Count <= InputAnalyzer.MaxFindingsPerImage, $"{artifact.Findings.Count} findings");
    }
}
