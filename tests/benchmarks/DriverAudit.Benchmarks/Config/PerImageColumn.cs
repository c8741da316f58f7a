using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using DriverAudit.Benchmarks.Corpus;

namespace DriverAudit.Benchmarks.Config;

/// <summary>
/// Mean time or allocation divided by the number of images the benchmark ran over (its <see cref="ImageSet"/>
/// parameter): the per-image cost the README reports.
/// </summary>
public sealed class PerImageColumn(bool allocation) : IColumn
{
    public static readonly PerImageColumn Time = new(false), Allocated = new(true);

    public string Id => allocation ? "AllocPerImage" : "MeanPerImage";
    public string ColumnName => allocation ? "Alloc/image" : "Mean/image";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => allocation ? 1 : 0;
    public bool IsNumeric => true;
    public UnitType UnitType => allocation ? UnitType.Size : UnitType.Time;
    public string Legend => allocation ? "Managed allocation per image (Allocated / images)" : "Mean time per image (Mean / images)";

    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var images = benchmarkCase.Parameters.Items.Select(p => p.Value).OfType<ImageSet>().FirstOrDefault();
        var report = summary[benchmarkCase];
        if (images is null || images.Count == 0 || report is null) return "-";
        if (allocation)
        {
            var bytes = report.GcStats.GetBytesAllocatedPerOperation(benchmarkCase);
            return bytes is long b ? Bytes(b / (double)images.Count) : "-";
        }
        return report.ResultStatistics is { } stats ? Nanoseconds(stats.Mean / images.Count) : "-";
    }

    private static string Nanoseconds(double ns) => ns switch
    {
        >= 1e6 => $"{ns / 1e6:N2} ms",
        >= 1e3 => $"{ns / 1e3:N2} μs",
        _ => $"{ns:N1} ns",
    };

    private static string Bytes(double b) => b >= 1024 ? $"{b / 1024:N2} KB" : $"{b:N0} B";

    public override string ToString() => ColumnName;
}
