using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace DriverAudit.Benchmarks.Config;

/// <summary>
/// One short, in-process job for the whole suite: no per-benchmark project build or child process (which would
/// cost minutes on a shared 2-core machine), 3 warm-up and 8 measured iterations of ~250 ms each
/// (3 were too few to be stable on a loaded machine).
/// </summary>
public static class SuiteConfig
{
    public static IConfig Create() => DefaultConfig.Instance
        .AddJob(Job.ShortRun
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithIterationCount(8)
            .WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(250))
            .WithId("ShortInProcess")
            .AsDefault())
        .AddDiagnoser(MemoryDiagnoser.Default)
        .AddColumn(PerImageColumn.Time, PerImageColumn.Allocated)
        .WithSummaryStyle(BenchmarkDotNet.Reports.SummaryStyle.Default.WithMaxParameterColumnWidth(40));
}
