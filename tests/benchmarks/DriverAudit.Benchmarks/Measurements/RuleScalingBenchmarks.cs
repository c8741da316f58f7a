using BenchmarkDotNet.Attributes;
using DriverAudit.Benchmarks.Corpus;
using DriverAudit.Benchmarks.Rules;
using DriverAudit.Rules.Engine;

namespace DriverAudit.Benchmarks.Measurements;

/// <summary>
/// Engine cost against the number of rules, with match production taken out: N generated import rules that
/// match nothing, evaluated over the fixture corpus's facts already extracted. If rules are indexed by their
/// cheapest selective feature (issue 5), the time stays nearly flat in N; a linear scan of the rules grows with N.
/// </summary>
[MemoryDiagnoser]
public class RuleScalingBenchmarks
{
    private RuleSet _set = null!;
    private Pipeline.OpenImages _warm = null!;

    [Params(1, 10, 100)]
    public int Rules { get; set; }

    [ParamsSource(nameof(ImageSets))]
    public ImageSet Images { get; set; } = null!;

    public static IEnumerable<ImageSet> ImageSets() => [ImageSet.FixtureCorpus()];

    [GlobalSetup]
    public void Setup()
    {
        _set = RuleSet.Load(GeneratedRules.NonMatchingImportRules(Rules));
        _warm = new Pipeline.OpenImages(Images);
        foreach (var f in _warm.Facts) _ = f.Imports.Count;
    }

    [GlobalCleanup]
    public void Cleanup() => _warm.Dispose();

    [Benchmark]
    public long WarmNonMatchingImportRules()
    {
        long sum = 0;
        foreach (var f in _warm.Facts) sum += _set.Evaluate(f).Count;
        return sum == 0 ? sum : throw new InvalidOperationException("a generated rule matched: it must not");
    }
}
