using Xunit;

namespace DriverAudit.Scanner.Tests.EndToEnd;

/// <summary>Usage and configuration errors: exit code 2, a clear message, never a stack trace.</summary>
public sealed class CliUsageTests
{
    [Fact]
    public void Unknown_option_is_a_usage_error()
    {
        using var t = new TempDir();
        var r = CliRunner.Run(t.Path, "scan", ".", "--no-such-option");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--no-such-option", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Theory]
    [InlineData("inspect")]
    [InlineData("tags")]
    public void Every_command_that_takes_paths_refuses_a_mistyped_option(string command)
    {
        using var t = new TempDir();
        var r = CliRunner.Run(t.Path, command, ".", "--fromat", "json");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--fromat", r.Stderr);
    }

    [Fact]
    public void Bad_fail_on_value_is_a_usage_error()
    {
        using var t = new TempDir();
        Assert.Equal(2, CliRunner.Run(t.Path, "scan", ".", "--fail-on", "fatal").ExitCode);
    }

    [Fact]
    public void No_rules_at_all_is_a_configuration_error()
    {
        using var t = new TempDir();
        var r = CliRunner.Run(t.Path, "scan", ".", "--no-default-rules");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("nothing was scanned", r.Stderr);
    }

    [Fact]
    public void A_broken_rule_file_names_file_line_and_column_and_writes_no_sarif()
    {
        using var t = new TempDir();
        var rule = t.File("bad.yaml", "id: DA9001\nname: Bad\ntitle: Bad\nlevel: loud\n"u8.ToArray());
        var sarif = System.IO.Path.Combine(t.Path, "out.sarif");
        var r = CliRunner.Run(t.Path, "scan", ".", "--rules", rule, "-o", sarif);
        Assert.Equal(2, r.ExitCode);
        Assert.Matches(@"bad\.yaml:4:\d+", r.Stderr);
        // No log at all: an empty log uploaded to GitHub would close every open alert.
        Assert.False(File.Exists(sarif));
    }

    [Fact]
    public void Version_and_help_work()
    {
        using var t = new TempDir();
        var v = CliRunner.Run(t.Path, "--version");
        Assert.Equal(0, v.ExitCode);
        Assert.Matches(@"\d+\.\d+\.\d+", v.Stdout);
        var h = CliRunner.Run(t.Path, "scan", "--help");
        Assert.Equal(0, h.ExitCode);
        Assert.Contains("--fail-on", h.Stdout);
    }
}
