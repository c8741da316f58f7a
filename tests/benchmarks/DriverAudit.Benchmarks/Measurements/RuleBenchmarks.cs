using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using DriverAudit.Benchmarks.Corpus;
using DriverAudit.Benchmarks.Rules;

namespace DriverAudit.Benchmarks.Measurements;

/// <summary>
/// The full pack (whatever rules/*.yaml this build loads) against the single import rule DA1001. Issue 5: the
/// full pack must not cost proportionally more, since rules are indexed by their cheapest selective feature.
/// "Cold" is a scan's per-file path (open, parse, facts, evaluate); "Warm" evaluates over facts already
/// extracted, which isolates the engine's own cost per rule.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
[CategoriesColumn]
public class RuleBenchmarks
{
    private RulePack _single = null!, _full = null!;
    private Pipeline.OpenImages _warm = null!;

    [ParamsSource(nameof(ImageSets))]
    public ImageSet Images { get; set; } = null!;

    public static IEnumerable<ImageSet> ImageSets() => [ImageSet.FixtureCorpus(), ImageSet.SyntheticLarge()];

    [GlobalSetup]
    public void Setup()
    {
        _single = RulePack.SingleImportRule();
        _full = RulePack.DefaultFromDisk();
        _full.Describe(Console.Out);
        _warm = new Pipeline.OpenImages(Images);
        // Extract every fact the full pack reads, so both warm benchmarks see the same fully cached facts.
        foreach (var f in _warm.Facts) _full.Set.Evaluate(f);
    }

    [GlobalCleanup]
    public void Cleanup() => _warm.Dispose();

    [Benchmark(Baseline = true), BenchmarkCategory("Cold")]
    public long ColdSingleRule() => Pipeline.ForEach(Images, f => _single.Set.Evaluate(f).Count);

    [Benchmark, BenchmarkCategory("Cold")]
    public long ColdFullPack() => Pipeline.ForEach(Images, f => _full.Set.Evaluate(f).Count);

    [Benchmark(Baseline = true), BenchmarkCategory("Warm")]
    public long WarmSingleRule() => EvaluateWarm(_single);

    [Benchmark, BenchmarkCategory("Warm")]
    public long WarmFullPack() => EvaluateWarm(_full);

    private long EvaluateWarm(RulePack pack)
    {
        long sum = 0;
        foreach (var f in _warm.Facts) sum += pack.Set.Evaluate(f).Count;
        return sum;
    }
}
