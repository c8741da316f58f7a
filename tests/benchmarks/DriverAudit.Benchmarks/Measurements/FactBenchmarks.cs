using BenchmarkDotNet.Attributes;
using DriverAudit.Benchmarks.Corpus;

namespace DriverAudit.Benchmarks.Measurements;

/// <summary>
/// What each fact costs per image, from a closed file: parsing plus imports (what an import rule needs) is the
/// baseline; call-site analysis and the instruction sweep come on top of it. Every invocation starts cold (new
/// source, image and facts), as a scan does for each file.
/// </summary>
[MemoryDiagnoser]
public class FactBenchmarks
{
    [ParamsSource(nameof(ImageSets))]
    public ImageSet Images { get; set; } = null!;

    public static IEnumerable<ImageSet> ImageSets() =>
        [ImageSet.FixtureCorpus(), ImageSet.LargestFixture(), ImageSet.SyntheticLarge()];

    /// <summary>Open, parse headers and the section table: the floor of any scan.</summary>
    [Benchmark]
    public long OpenAndHeader() => Pipeline.ForEach(Images, f => f.Header.SizeOfImage + f.Sections.Count);

    [Benchmark(Baseline = true)]
    public long Imports() => Pipeline.ForEach(Images, f => f.Imports.Count);

    /// <summary>Call sites of imported functions with recovered arguments (needs imports for the IAT slots).</summary>
    [Benchmark]
    public long ImportsAndCalls() => Pipeline.ForEach(Images, f => f.Imports.Count + f.Calls.Count);

    /// <summary>Linear sweep of executable sections for privileged instructions.</summary>
    [Benchmark]
    public long ImportsAndInstructions() => Pipeline.ForEach(Images, f => f.Imports.Count + f.Instructions.Count);

    /// <summary>ASCII and UTF-16 strings of every data and code section (what DA3002/DA4001/DA4002 read).</summary>
    [Benchmark]
    public long ImportsAndStrings() => Pipeline.ForEach(Images, f => f.Imports.Count + f.Strings.Count);

    [Benchmark]
    public long AllCodeFacts() => Pipeline.ForEach(Images, f => f.Imports.Count + f.Calls.Count + f.Instructions.Count);
}
