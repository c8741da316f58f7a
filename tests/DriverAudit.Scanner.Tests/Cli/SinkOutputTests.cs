using DriverAudit.Scanner.Inputs;
using Xunit;

namespace DriverAudit.Scanner.Tests.Cli;

/// <summary>
/// merge, report and inventory open <c>-o</c> as scan does (one <see cref="DriverAudit.Scanner.Reporting.ReportOutput"/>):
/// a folder is refused with exit 2 before any work, a symbolic link's target is replaced and the link stays,
/// <c>/dev/null</c> is written, not replaced, and <c>-</c> is stdout.
/// </summary>
public sealed class SinkOutputTests : IDisposable
{
    private readonly TempDir _t = new();
    private readonly string _sarif;

    public SinkOutputTests()
    {
        _sarif = Path.Combine(_t.Path, "host.sarif");
        var scan = CliRunner.Run(_t.Path, "scan", RepoPaths.Fixture("x64", "pool_legacy.sys"), "--host", "h1", "-f", "sarif", "-o", _sarif, "--fail-on", "none");
        Assert.Equal(0, scan.ExitCode);
    }

    public void Dispose() => _t.Dispose();

    private CliRunner.Outcome Run(string command, string output) => command switch
    {
        "merge" => CliRunner.Run(_t.Path, "merge", _sarif, "-o", output),
        "report" => CliRunner.Run(_t.Path, "report", _sarif, "-o", output),
        _ => CliRunner.Run(_t.Path, "inventory", RepoPaths.Fixture("x64", "pool_legacy.sys"), "-o", output),
    };

    /// <summary>What each command writes first: SARIF, HTML, a JSON Lines image record.</summary>
    private static string Start(string command) => command switch
    {
        "merge" => "{",
        "report" => "<!DOCTYPE html>",
        _ => "{\"kind\":\"image\"",
    };

    [Theory]
    [InlineData("merge")]
    [InlineData("report")]
    [InlineData("inventory")]
    public void A_folder_is_refused_with_exit_2_and_nothing_written(string command)
    {
        var folder = _t.Dir("out-" + command);
        var r = Run(command, folder);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("is a folder", r.Stderr);
        Assert.Empty(Directory.GetFileSystemEntries(folder));
        Assert.Empty(r.Stdout);
    }

    [Theory]
    [InlineData("merge")]
    [InlineData("report")]
    [InlineData("inventory")]
    public void A_symbolic_link_stays_and_its_target_is_replaced(string command)
    {
        if (OperatingSystem.IsWindows()) return; // Unix-only behaviour
        var target = _t.File($"real-{command}.out", "previous"u8.ToArray());
        var link = Path.Combine(_t.Path, $"link-{command}.out");
        File.CreateSymbolicLink(link, target);
        var r = Run(command, link);
        Assert.Equal(0, r.ExitCode);
        Assert.NotNull(new FileInfo(link).LinkTarget);
        Assert.StartsWith(Start(command), File.ReadAllText(target));
        Assert.Empty(Directory.GetFiles(_t.Path, "*.tmp*"));
    }

    [Theory]
    [InlineData("merge")]
    [InlineData("report")]
    [InlineData("inventory")]
    public void Dev_null_is_written_not_replaced(string command)
    {
        if (!OperatingSystem.IsLinux()) return;
        var r = Run(command, "/dev/null");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(FileKind.CharacterDevice, FileKinds.Of("/dev/null"));
    }

    [Theory]
    [InlineData("merge")]
    [InlineData("report")]
    [InlineData("inventory")]
    public void Dash_is_stdout_and_creates_no_file(string command)
    {
        var r = Run(command, "-");
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith(Start(command), r.Stdout.TrimStart());
        Assert.False(File.Exists(Path.Combine(_t.Path, "-")));
    }
}
