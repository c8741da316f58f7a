namespace DriverAudit.Benchmarks.Corpus;

/// <summary>Where the inputs live: found by walking up from the binary to the folder holding DriverAudit.sln.</summary>
public static class RepoLayout
{
    private static readonly Lazy<string> RootPath = new(FindRoot);

    public static string Root => RootPath.Value;
    public static string FixtureBin => Path.Combine(Root, "tests", "fixtures", "bin");
    public static string RulesDir => Path.Combine(Root, "rules");

    /// <summary>The synthetic driver built by tests/benchmarks/data/make-large-driver.py.</summary>
    public static string LargeDriver => Path.Combine(Root, "tests", "benchmarks", "data", "large_driver.sys");

    private static string FindRoot()
    {
        // The binary may run from bin/ or from a BenchmarkDotNet artifacts folder: try both starting points.
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "DriverAudit.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("cannot find the repository root (DriverAudit.sln) above " + AppContext.BaseDirectory);
    }
}
