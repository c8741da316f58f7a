using Xunit;

namespace DriverAudit.Scanner.Tests.Cli;

/// <summary>
/// The same switch has the same name everywhere: every command that writes results takes <c>--format</c> / <c>-f</c>
/// with exactly the formats it can write, shell completion offers them, and the older <c>inspect --json</c> still works
/// without being advertised.
/// </summary>
public sealed class FormatSwitchTests
{
    private const string Pe = "tests/fixtures/bin/x64/pool_legacy.sys";

    /// <summary>What bash offers after <paramref name="words"/> with the generated completion script, sorted.</summary>
    private static string[] Complete(params string[] words)
    {
        using var t = new TempDir();
        return [.. BashCompletion.Complete(BashCompletion.WriteScript(t), words).Order(StringComparer.Ordinal)];
    }

    [Theory]
    [InlineData("scan", "json markdown sarif text")]
    [InlineData("inspect", "json text")]
    [InlineData("tags", "json pooltag text")]
    [InlineData("inventory", "csv json")]
    [InlineData("merge", "sarif")]
    [InlineData("report", "html")]
    [InlineData("rules list", "json text")]
    [InlineData("rules show", "json text")]
    [InlineData("rules validate", "json text")]
    [InlineData("rules test", "json text")]
    public void Every_command_that_writes_results_takes_format_with_its_formats(string command, string formats)
    {
        var words = new[] { "driveraudit" }.Concat(command.Split(' '));
        Assert.Equal(formats.Split(' '), Complete([.. words, "--format", ""]));
        Assert.Equal(formats.Split(' '), Complete([.. words, "-f", ""]));
        var help = CliRunner.Run(RepoPaths.Root, [.. command.Split(' '), "--help"]);
        Assert.Contains("-f, --format", help.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_json_is_a_hidden_alias_of_format_json()
    {
        var viaAlias = CliRunner.Run(RepoPaths.Root, "inspect", "--json", Pe);
        var viaFormat = CliRunner.Run(RepoPaths.Root, "inspect", "--format", "json", Pe);
        Assert.Equal(0, viaAlias.ExitCode);
        Assert.Equal(viaFormat.Stdout, viaAlias.Stdout);
        Assert.StartsWith("{", viaAlias.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("--json", CliRunner.Run(RepoPaths.Root, "inspect", "--help").Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("--json", Complete("driveraudit", "inspect", "--"));
    }

    [Fact]
    public void Inspect_json_with_another_format_is_a_usage_error()
    {
        var r = CliRunner.Run(RepoPaths.Root, "inspect", "--json", "--format", "text", Pe);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--json is --format json; it contradicts --format text", r.Stderr, StringComparison.Ordinal);
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void Merge_and_report_refuse_a_format_they_cannot_write()
    {
        var merge = CliRunner.Run(RepoPaths.Root, "merge", "--format", "json", "x.sarif");
        Assert.Equal(2, merge.ExitCode);
        Assert.Contains("json", merge.Stderr, StringComparison.Ordinal);
        var report = CliRunner.Run(RepoPaths.Root, "report", "--format", "sarif", "x.sqlite");
        Assert.Equal(2, report.ExitCode);
    }
}
