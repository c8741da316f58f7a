using Xunit;

namespace DriverAudit.Scanner.Tests.Cli;

/// <summary>
/// Inputs fail closed: whatever would make a scan look clean while scanning nothing is exit 2 with a message on
/// stderr, before any work, and no report file (an empty SARIF upload would close every open alert).
/// </summary>
public sealed class FailClosedTests
{
    private static readonly string Legacy = RepoPaths.Fixture("x64", "pool_legacy.sys");

    private static void AssertRefused(CliRunner.Outcome r, string output, string message)
    {
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        Assert.Contains("nothing was scanned", r.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("internal error", r.Stderr);
        Assert.False(File.Exists(output), "no report may be written");
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(output)!, ".*.tmp")); // no temporary left either
    }

    [Fact]
    public void A_path_that_does_not_exist()
    {
        using var t = new TempDir();
        var output = Path.Combine(t.Path, "out.sarif");
        AssertRefused(CliRunner.Run(t.Path, "scan", Legacy, "build/driver-typo", "-o", output), output, "'build/driver-typo' does not exist");
    }

    [Fact]
    public void An_empty_folder()
    {
        using var t = new TempDir();
        t.Dir("empty");
        var output = Path.Combine(t.Path, "out.sarif");
        AssertRefused(CliRunner.Run(t.Path, "scan", "empty", "-o", output), output, "no file to scan");
    }

    [Fact]
    public void Only_a_fifo()
    {
        if (OperatingSystem.IsWindows()) return;
        using var t = new TempDir();
        UnixFiles.Fifo(Path.Combine(t.Path, "pipe.sys"));
        var output = Path.Combine(t.Path, "out.sarif");
        var outcome = CliRunner.Run(t.Path, "scan", "pipe.sys", "-o", output);
        AssertRefused(outcome, output, "no file to scan");
        // The reason the one input was skipped is said, not only that nothing matched.
        Assert.Contains("is a FIFO (named pipe), not a regular file", outcome.Stderr);
    }

    [Fact]
    public void Globs_that_match_nothing()
    {
        using var t = new TempDir();
        t.File("drivers/a.sys", File.ReadAllBytes(Legacy));
        var output = Path.Combine(t.Path, "out.sarif");
        AssertRefused(CliRunner.Run(t.Path, "scan", "drivers", "--include", "**/*.dll", "-o", output), output, "no file to scan");
        AssertRefused(CliRunner.Run(t.Path, "scan", "drivers", "--exclude", "**/a.sys", "-o", output), output, "excluding **/a.sys");
        // The same folder with the default globs is scanned.
        Assert.Equal(0, CliRunner.Run(t.Path, "scan", "drivers", "-o", output, "--fail-on", "none").ExitCode);
        Assert.True(File.Exists(output));
    }

    [Fact]
    public void A_dash_as_path()
    {
        using var t = new TempDir();
        var output = Path.Combine(t.Path, "out.sarif");
        AssertRefused(CliRunner.Run(t.Path, "scan", "-", "-o", output), output, "--files-from -");
    }

    [Fact]
    public void No_path_at_all_is_a_usage_error()
    {
        using var t = new TempDir();
        var r = CliRunner.Run(t.Path, "scan", "--format", "json");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("at least one path", r.Stderr);
    }

    [Fact]
    public void Files_from_reads_paths_from_a_file_or_stdin()
    {
        using var t = new TempDir();
        t.File("a.sys", File.ReadAllBytes(Legacy));
        var list = t.File("list.txt", "a.sys\n\n"u8.ToArray());
        var fromFile = CliRunner.Run(t.Path, "scan", "--files-from", list, "--format", "json", "--only", "DA1001");
        Assert.Equal(0, fromFile.ExitCode);
        Assert.Contains("\"path\":\"a.sys\"", fromFile.Stdout);

        var fromStdin = CliRunner.RunWithInput(t.Path, new StringReader("a.sys\n"), "scan", "--files-from", "-", "--format", "json", "--only", "DA1001");
        Assert.Equal(fromFile.Stdout, fromStdin.Stdout);

        var output = Path.Combine(t.Path, "out.sarif");
        AssertRefused(CliRunner.RunWithInput(t.Path, new StringReader("\n"), "scan", "--files-from", "-", "-o", output), output, "lists no path");
        AssertRefused(CliRunner.RunWithInput(t.Path, new StringReader("a.sys\nb.sys\n"), "scan", "--files-from", "-", "-o", output), output, "'b.sys' does not exist");
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("0")]
    public void A_bad_jobs_value_is_a_usage_error_not_an_internal_error(string jobs)
    {
        using var t = new TempDir();
        var r = CliRunner.Run(t.Path, "scan", Legacy, "-j", jobs);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--jobs", r.Stderr);
        Assert.DoesNotContain("internal error", r.Stderr);
    }
}
