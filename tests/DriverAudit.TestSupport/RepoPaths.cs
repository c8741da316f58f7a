namespace DriverAudit.TestSupport;

/// <summary>Finds the repository (the folder holding DriverAudit.sln) so tests and benchmarks can use committed files.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> RootPath = new(FindRoot);

    public static string Root => RootPath.Value;
    public static string Fixtures => Path.Combine(Root, "tests", "fixtures");
    public static string FixtureBin => Path.Combine(Fixtures, "bin");
    public static string Fixture(string arch, string name) => Path.Combine(FixtureBin, arch, name);
    /// <summary>The default rule pack's folder.</summary>
    public static string Rules => Path.Combine(Root, "rules");

    private static string FindRoot()
    {
        // Tests run from bin/; a benchmark may run from a BenchmarkDotNet artifacts folder: try the working folder too.
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "DriverAudit.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("cannot find the repository root (DriverAudit.sln) above " + AppContext.BaseDirectory);
    }
}
