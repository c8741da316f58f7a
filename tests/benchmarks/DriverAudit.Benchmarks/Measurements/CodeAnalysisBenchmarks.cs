using BenchmarkDotNet.Attributes;
using DriverAudit.Benchmarks.Corpus;
using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using DriverAudit.TestSupport;

namespace DriverAudit.Benchmarks.Measurements;

/// <summary>
/// The code-analysis hot path of the instruction rules (DA3003–DA3005) on one image: the function-bounded
/// disassembly alone (<see cref="CodeMap"/>, over executable bytes already read), the packed-code entropy check
/// every code rule asks first, and what DA3003 costs from a closed file with the opcode search in front of the
/// disassembly versus the disassembly it used to need. Runs over Wine's x64 ntoskrnl.exe when installed
/// (`apt-get install libwine`; 148 KB of code, no 0F 30/0F 32/0F 22 byte pair), over Wine's i386 ntoskrnl.exe when
/// found (multiarch libwine:i386, the folder tests/benchmarks/bench-real.sh unpacks it into, or the i386-windows folder
/// named by DRIVERAUDIT_WINE_I386: x86 has no .pdata, so this is the recursive descent, which the in/out rule always
/// needs whole) and over the committed
/// tests/benchmarks/data/large_driver.sys (which has rdmsr: its .pdata functions around the candidates are decoded).
/// </summary>
[MemoryDiagnoser]
public class CodeAnalysisBenchmarks
{
    private const string WineNtoskrnl = "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows/ntoskrnl.exe";
    private const string WineI386 = "usr/lib/i386-linux-gnu/wine/i386-windows";
    private static readonly string[] Msr = [InstructionNames.Wrmsr, InstructionNames.Rdmsr];

    private FileImageSource? _source;
    private PeImage _image = null!;
    private CodeImage _code = null!;

    [ParamsSource(nameof(Images))]
    public ImageSet Image { get; set; } = null!;

    /// <summary>Wine's ntoskrnl.exe when present (a real compiler's image), and the committed synthetic driver.</summary>
    public static IEnumerable<ImageSet> Images()
    {
        if (File.Exists(WineNtoskrnl)) yield return new ImageSet("wine x64 ntoskrnl.exe", [WineNtoskrnl]);
        string?[] i386 = [Environment.GetEnvironmentVariable("DRIVERAUDIT_WINE_I386"), "/" + WineI386, Path.Combine(RepoPaths.Root, ".bench", "wine-i386", WineI386)];
        if (i386.Where(d => !string.IsNullOrEmpty(d)).Select(d => Path.Combine(d!, "ntoskrnl.exe")).FirstOrDefault(File.Exists) is { } ntoskrnl32)
            yield return new ImageSet("wine i386 ntoskrnl.exe", [ntoskrnl32]);
        yield return ImageSet.SyntheticLarge();
    }

    [GlobalSetup]
    public void Setup()
    {
        _source = FileImageSource.Open(Image.Paths[0]);
        _image = PeImage.TryOpen(_source).Image ?? throw new InvalidDataException(Image.Paths[0] + " does not open as a PE");
        _code = CodeImage.Load(_image) ?? throw new InvalidDataException(Image.Paths[0] + " has no x86/x64 code");
    }

    [GlobalCleanup]
    public void Cleanup() => _source?.Dispose();

    /// <summary>One function-bounded disassembly: decode, per-byte state, hits, blocks, referenced addresses.</summary>
    [Benchmark(Baseline = true)]
    public long CodeMapBuild()
    {
        var map = CodeMap.Build(_code, _image);
        return map.InstructionsDecoded + map.Hits.Count;
    }

    /// <summary>The entropy of each executable section (packed-code check, asked before any code fact).</summary>
    [Benchmark]
    public int PackedCodeDetect() => PackedCode.Detect(_image)?.Length ?? 0;

    /// <summary>
    /// DA3003's facts from the file, as now: the opcode search, then only the .pdata functions around the candidates
    /// (or the whole disassembly when that cannot be proven).
    /// </summary>
    [Benchmark]
    public long MsrRuleFactsSearchFirst() => Pipeline.ForEach(Image, f => f.InstructionsFor(Msr, null).Count);

    /// <summary>DA3003's facts from the file as before the search: the whole disassembly.</summary>
    [Benchmark]
    public long MsrRuleFactsFullDisassembly() => Pipeline.ForEach(Image, f => f.Instructions.Count);
}
