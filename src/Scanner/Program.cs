using DriverAudit.Scanner.Cli;

namespace DriverAudit.Scanner;

internal static class Program
{
    private static int Main(string[] args)
    {
        try
        {
            var io = CliIo.FromConsole();
            try
            {
                return DriverAuditCli.Run(args, io);
            }
            finally
            {
                io.Flush();
                if (Environment.GetEnvironmentVariable("DRIVERAUDIT_GC_STATS") == "1") GcStats();
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Last line of defence: one sentence, no stack trace, a distinct exit code.
            Console.Error.WriteLine($"driveraudit: internal error: {e.GetType().Name}: {e.Message}");
            return 2;
        }
    }

    /// <summary>
    /// One line on standard error about the garbage collector (DRIVERAUDIT_GC_STATS=1): counts, pauses and heap sizes,
    /// for measuring memory and -j scaling where a profiler is not at hand (also in the AOT build, which has no event pipe).
    /// </summary>
    private static void GcStats()
    {
        var info = GC.GetGCMemoryInfo(GCKind.Any);
        var full = GC.GetGCMemoryInfo(GCKind.FullBlocking);
        Console.Error.WriteLine(
            $"gc: collections {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)} (gen0/1/2), pause {GC.GetTotalPauseDuration().TotalMilliseconds:F0} ms, " +
            $"allocated {GC.GetTotalAllocatedBytes() >> 20} MB, heap {info.HeapSizeBytes >> 20} MB after the last collection " +
            $"(committed {info.TotalCommittedBytes >> 20} MB, fragmented {info.FragmentedBytes >> 20} MB, last full: {full.HeapSizeBytes >> 20} MB), " +
            $"working set {Environment.WorkingSet >> 20} MB, threads {System.Diagnostics.Process.GetCurrentProcess().Threads.Count}");
    }
}
