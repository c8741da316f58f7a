using BenchmarkDotNet.Running;
using DriverAudit.Benchmarks.Check;
using DriverAudit.Benchmarks.Config;

namespace DriverAudit.Benchmarks;

/// <summary>
/// `--check`: the no-disassembly proof (exit 0/1). Anything else goes to BenchmarkDotNet's switcher, e.g.
/// `--filter '*'` for the whole suite or `--filter '*Rule*'` for one class.
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args is ["--check"]) return NoDisassemblyCheck.Run(Console.Out);
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, SuiteConfig.Create());
        return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
    }
}
