using BenchmarkDotNet.Attributes;
using DriverAudit.Benchmarks.Corpus;
using DriverAudit.Benchmarks.Rules;
using DriverAudit.Scanner.Cli;
using DriverAudit.TestSupport;

namespace DriverAudit.Benchmarks.Measurements;

/// <summary>
/// `driveraudit scan tests/fixtures/bin -f sarif -j 1` run in-process end to end (crawl, rules load, analyse every file,
/// SARIF to a null stream): what one CLI invocation costs beyond process start. The pack is the loadable
/// rules/*.yaml (passed with --rules, so an unsupported file cannot fail the run) or DA1001 alone.
/// </summary>
[MemoryDiagnoser]
public class CliBenchmarks
{
    private string _dir = null!, _fullRules = null!, _singleRules = null!;
    private CliIo _io = null!;

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "driveraudit-bench-" + Environment.ProcessId);
        _fullRules = Path.Combine(_dir, "full");
        _singleRules = Path.Combine(_dir, "single");
        RulePack.DefaultFromDisk().WriteTo(_fullRules);
        RulePack.SingleImportRule().WriteTo(_singleRules);
        _io = new CliIo(Stream.Null, TextWriter.Null, TextWriter.Null, Interactive: false, RepoPaths.Root);
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    [Benchmark(Baseline = true)]
    public int ScanSingleRule() => Scan(_singleRules);

    [Benchmark]
    public int ScanFullPack() => Scan(_fullRules);

    private int Scan(string rules)
    {
        var code = DriverAuditCli.Run(["scan", RepoPaths.FixtureBin, "--no-default-rules", "--rules", rules,
            "-f", "sarif", "--fail-on", "none", "-j", "1", "--no-progress"], _io);
        return code == 0 ? code : throw new InvalidOperationException($"driveraudit scan exited with {code}");
    }
}
