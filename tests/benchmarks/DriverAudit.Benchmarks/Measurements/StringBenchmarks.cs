using System.Text.RegularExpressions;
using BenchmarkDotNet.Attributes;
using DriverAudit.Benchmarks.Corpus;
using DriverAudit.Rules.Facts;

namespace DriverAudit.Benchmarks.Measurements;

/// <summary>
/// What a string rule costs per image: extracting every string and testing each (what every image paid before the
/// needle search) against the needle search, which extracts only when a string around the needle matches. The
/// rules are DA4002's regex (needle <c>D:</c> at a string's start) and DA3002's ignore-case literal. Every
/// invocation starts cold (new source, image and facts).
/// </summary>
[MemoryDiagnoser]
public class StringBenchmarks
{
    // DA4002's pattern (rules/DA4002.yaml), built as the rule engine builds it.
    private static readonly Regex Sddl = new(@"^D:[A-Z]*(\([^)]*\))*\(A;[^;()]*;[^;()]+;[^;()]*;[^;()]*;(WD|BU|S-1-1-0|S-1-5-32-545)\)",
        RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);

    private static readonly StringNeedle SddlNeedle = new("D:", IgnoreCase: false, AtStart: true, Ascii: true, Utf16: true);
    private static readonly StringNeedle PhysicalMemory = new(@"\Device\PhysicalMemory", IgnoreCase: true, AtStart: false, Ascii: true, Utf16: true);

    private static bool IsSddl(StringFact s) => s.Value.StartsWith("D:", StringComparison.Ordinal) && Sddl.IsMatch(s.Value);
    private static bool NamesPhysicalMemory(StringFact s) => s.Value.Contains(PhysicalMemory.Text, StringComparison.OrdinalIgnoreCase);

    [ParamsSource(nameof(ImageSets))]
    public ImageSet Images { get; set; } = null!;

    /// <summary>The fixture corpus, plus Wine's ntoskrnl.exe (1.6 MB) when the libwine package is installed.</summary>
    public static IEnumerable<ImageSet> ImageSets()
    {
        yield return ImageSet.FixtureCorpus();
        if (ImageSet.WineImage("ntoskrnl.exe") is { } wine) yield return wine;
    }

    [Benchmark(Baseline = true)]
    public long ExtractAllThenMatch() => Pipeline.ForEach(Images, f => f.Strings.Count(IsSddl) + f.Strings.Count(NamesPhysicalMemory));

    /// <summary>Each needle searched for on its own (a search per needle; DA4001 and DA4002 share theirs).</summary>
    [Benchmark]
    public long NeedleThenMatch() => Pipeline.ForEach(Images, f =>
        (f.MayHaveString(SddlNeedle, IsSddl, []) ? f.Strings.Count(IsSddl) : 0)
        + (f.MayHaveString(PhysicalMemory, NamesPhysicalMemory, []) ? f.Strings.Count(NamesPhysicalMemory) : 0));

    private static readonly StringNeedle[] AllNeedles = [SddlNeedle, PhysicalMemory];

    /// <summary>
    /// As the rule set asks for DA4001, DA4002 and DA3002 together: every needle searched for in one read of the image,
    /// the three questions answered from it.
    /// </summary>
    [Benchmark]
    public long AllNeedlesThenMatch() => Pipeline.ForEach(Images, f =>
        (f.MayHaveString(SddlNeedle, IsSddl, AllNeedles) ? f.Strings.Count(IsSddl) : 0)
        + (f.MayHaveString(SddlNeedle, OpensSddl, AllNeedles) ? f.Strings.Count(OpensSddl) : 0)
        + (f.MayHaveString(PhysicalMemory, NamesPhysicalMemory, AllNeedles) ? f.Strings.Count(NamesPhysicalMemory) : 0));

    // DA4001's regex (rules/DA4001.yaml): any SDDL string.
    private static readonly Regex AnySddl = new(@"^D:[A-Z]*\(", RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
    private static bool OpensSddl(StringFact s) => s.Value.StartsWith("D:", StringComparison.Ordinal) && AnySddl.IsMatch(s.Value);
}
