using BenchmarkDotNet.Attributes;
using DriverAudit.Benchmarks.Rules;
using DriverAudit.Rules.Engine;

namespace DriverAudit.Benchmarks.Measurements;

/// <summary>Parsing, validating and compiling the packs: paid once per CLI run, before any image.</summary>
[MemoryDiagnoser]
public class RuleLoadBenchmarks
{
    private IReadOnlyList<RuleSource> _single = null!, _full = null!;

    [GlobalSetup]
    public void Setup()
    {
        _single = RulePack.SingleImportRule().Sources;
        _full = RulePack.DefaultFromDisk().Sources;
    }

    [Benchmark(Baseline = true)]
    public int LoadSingleRule() => RuleSet.Load(_single).Rules.Count;

    [Benchmark]
    public int LoadFullPack() => RuleSet.Load(_full).Rules.Count;
}
