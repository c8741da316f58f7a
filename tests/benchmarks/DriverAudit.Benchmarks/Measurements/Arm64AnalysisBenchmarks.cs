using BenchmarkDotNet.Attributes;
using DriverAudit.Benchmarks.Corpus;
using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Code.Arm64;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using DriverAudit.TestSupport;

namespace DriverAudit.Benchmarks.Measurements;

/// <summary>
/// The ARM64 code analysis (<see cref="Arm64CodeAnalysis"/>: function discovery, the data-flow per function, call
/// sites, msr/mrs, wrappers) over executable bytes already read, and what the msr/mrs rule (DA3003) costs from the
/// file with the system-register word search in front of it. Runs over the committed tests/fixtures/bin/arm64
/// wrappers_O0.sys, and over the largest ARM64 driver of the real-driver folder when it is there
/// (DRIVERAUDIT_REAL_DRIVERS, default ../shared/real-drivers next to the repository: read in place, never copied).
/// </summary>
[MemoryDiagnoser]
public class Arm64AnalysisBenchmarks
{
    private static readonly string[] MsrMrs = [InstructionNames.Msr, InstructionNames.Mrs];

    private FileImageSource? _source;
    private PeImage _image = null!;
    private CodeImage _code = null!;
    private IReadOnlyList<ImportFact> _imports = null!;

    [ParamsSource(nameof(Images))]
    public ImageSet Image { get; set; } = null!;

    /// <summary>The committed ARM64 fixture, and the largest real ARM64 driver when the folder is there.</summary>
    public static IEnumerable<ImageSet> Images()
    {
        yield return new ImageSet("fixture arm64 wrappers_O0.sys", [RepoPaths.Fixture("arm64", "wrappers_O0.sys")]);
        if (LargestRealArm64() is { } real) yield return new ImageSet("real arm64 " + Path.GetFileName(real), [real]);
    }

    private static string? LargestRealArm64()
    {
        var folder = Environment.GetEnvironmentVariable("DRIVERAUDIT_REAL_DRIVERS") is { Length: > 0 } set
            ? set : Path.Combine(RepoPaths.Root, "..", "shared", "real-drivers");
        if (!Directory.Exists(folder)) return null;
        string? best = null;
        long bestSize = -1;
        foreach (var path in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var size = new FileInfo(path).Length;
            if (size <= bestSize) continue;
            using var source = FileImageSource.Open(path);
            if (PeImage.TryOpen(source).Image is not { Machine: PeMachine.Arm64 }) continue;
            (best, bestSize) = (path, size);
        }
        return best;
    }

    [GlobalSetup]
    public void Setup()
    {
        _source = FileImageSource.Open(Image.Paths[0]);
        _image = PeImage.TryOpen(_source).Image ?? throw new InvalidDataException(Image.Paths[0] + " does not open as a PE");
        _code = CodeImage.Load(_image) is { IsArm64: true } code ? code : throw new InvalidDataException(Image.Paths[0] + " has no ARM64 code");
        _imports = new CodeFacts(_image).Imports;
    }

    [GlobalCleanup]
    public void Cleanup() => _source?.Dispose();

    /// <summary>The whole analysis: what every call-site rule and (with a system-register word present) DA3003/DA3005 need.</summary>
    [Benchmark(Baseline = true)]
    public long Analyse()
    {
        var a = Arm64CodeAnalysis.Run(_code, _image, _imports);
        return a.InstructionsDecoded + a.CallSites.Count + a.Hits.Count;
    }

    /// <summary>DA3003's facts from the file: the word search, then the analysis only when a candidate is found.</summary>
    [Benchmark]
    public long MsrRuleFacts() => Pipeline.ForEach(Image, f => f.InstructionsFor(MsrMrs, null).Count);
}
