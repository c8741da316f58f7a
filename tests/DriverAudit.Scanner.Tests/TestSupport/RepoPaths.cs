namespace DriverAudit.Scanner.Tests.TestSupport;

/// <summary>Finds the repository (the folder holding DriverAudit.sln) so tests can use committed fixtures.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();
    public static string Fixtures => Path.Combine(Root, "tests", "fixtures");
    public static string Fixture(string arch, string name) => Path.Combine(Fixtures, "bin", arch, name);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DriverAudit.sln"))) return dir.FullName;
        throw new InvalidOperationException("DriverAudit.sln not found above " + AppContext.BaseDirectory);
    }
}
