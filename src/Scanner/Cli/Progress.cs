using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Inputs;
using Spectre.Console;

namespace DriverAudit.Scanner.Cli;

/// <summary>
/// The progress display of a scan: on stderr only, only when stderr is a terminal (the caller decides), with a
/// total counted by a second, cheap walk of the inputs running beside the scan.
/// </summary>
internal static class Progress
{
    public static ScanSummary Run(CliIo io, IEnumerable<InputItem> crawl, Func<Action<int>, ScanSummary> scan)
    {
        long total = -1;
        using var stop = new CancellationTokenSource();
        var counter = Task.Run(() =>
        {
            long n = 0;
            foreach (var _ in crawl)
            {
                if (stop.IsCancellationRequested) return;
                n++;
            }
            Interlocked.Exchange(ref total, n);
        });
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(io.Error) });
        try
        {
            return console.Status().Start("Scanning…", ctx => scan(done =>
            {
                var t = Interlocked.Read(ref total);
                ctx.Status(t >= 0 ? $"Scanning… {done} of {t} input(s)" : $"Scanning… {done} input(s), counting…");
            }));
        }
        finally
        {
            stop.Cancel();
            try { counter.Wait(TimeSpan.FromSeconds(1)); } catch (AggregateException) { }
        }
    }
}
