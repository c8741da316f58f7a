namespace DriverAudit.Scanner.Code;

/// <summary>
/// Process-wide decoding counters: the test hook that proves a scan which needs only import facts never
/// disassembles, and the figures the benchmark reports. Cheap (one interlocked add per decoded run).
/// </summary>
internal static class CodeStats
{
    private static long _instructions, _regions, _sweeps;

    /// <summary>Instructions decoded so far, by any code analysis in this process.</summary>
    public static long InstructionsDecoded => Interlocked.Read(ref _instructions);

    /// <summary>Windows or functions decoded for call-site analysis.</summary>
    public static long RegionsDecoded => Interlocked.Read(ref _regions);

    /// <summary>Linear sweeps of executable sections (instruction facts).</summary>
    public static long Sweeps => Interlocked.Read(ref _sweeps);

    internal static void AddInstructions(long n) => Interlocked.Add(ref _instructions, n);
    internal static void AddRegion() => Interlocked.Increment(ref _regions);
    internal static void AddSweep() => Interlocked.Increment(ref _sweeps);
}
