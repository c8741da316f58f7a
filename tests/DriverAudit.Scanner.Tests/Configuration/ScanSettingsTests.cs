using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Configuration;
using DriverAudit.Scanner.Engine;
using Xunit;

namespace DriverAudit.Scanner.Tests.Configuration;

/// <summary>
/// <see cref="ScanSettings.Merge"/>: defaults, then driveraudit.yaml, then the command line — a pure function,
/// tested without a parser or a file; and the CLI's exit 2 for settings that cannot run.
/// </summary>
public sealed class ScanSettingsTests
{
    private static readonly string Work = Path.GetFullPath(Path.Combine(Path.GetTempPath(), "wd"));
    private static readonly string ConfigFolder = Path.GetFullPath(Path.Combine(Path.GetTempPath(), "cfg"));

    private static ConfigFile Config(string text) => ConfigFile.Parse(text, Path.Combine(ConfigFolder, "driveraudit.yaml"));

    private static ScanSettings Merge(ScanFlags flags, ConfigFile? config = null)
    {
        var result = ScanSettings.Merge(flags, config ?? ConfigFile.None, Work, Work, processorCount: 6);
        Assert.Empty(result.Errors);
        return Assert.IsType<ScanSettings>(result.Settings);
    }

    private static IReadOnlyList<string> Refused(ScanFlags flags, ConfigFile? config = null)
    {
        var result = ScanSettings.Merge(flags, config ?? ConfigFile.None, Work, Work, processorCount: 6);
        Assert.Null(result.Settings);
        return result.Errors;
    }

    [Fact]
    public void Without_flags_or_config_the_defaults_apply()
    {
        var s = Merge(new ScanFlags { Paths = ["a.sys"] });
        Assert.Equal("text", s.Format);
        Assert.Equal(RuleLevel.Error, s.FailOn);
        Assert.False(s.FailOnInputError);
        Assert.Equal(6, s.Jobs);
        Assert.Equal(ScanOptions.DefaultTimeLimit, s.TimeLimit);
        Assert.Equal(ColorMode.Auto, s.Color);
        Assert.True(s.IncludeDefaultRules);
        Assert.Empty(s.Include);
        Assert.Empty(s.RulePaths);
        Assert.Empty(s.HashLists);
        Assert.Same(ConfigFile.None, s.Config);
        Assert.Equal(["a.sys"], s.Paths);
    }

    [Fact]
    public void The_config_beats_the_defaults()
    {
        var s = Merge(new ScanFlags(), Config("fail-on: warning\ninclude: ['**/*.bin']\nexclude: '**/skip/**'\n"));
        Assert.Equal(RuleLevel.Warning, s.FailOn);
        Assert.Equal(["**/*.bin"], s.Include);
        Assert.Equal(["**/skip/**"], s.Exclude);
    }

    [Fact]
    public void A_flag_beats_the_config_which_beats_the_default()
    {
        var config = Config("""
            fail-on: warning
            include: ['**/*.bin']
            exclude: '**/skip/**'
            only: [DA1*]
            level: {DA1001: note}
            hash-lists: {known-vulnerable: lists/config.csv, other: lists/other.txt}
            """);
        var s = Merge(new ScanFlags
        {
            FailOn = "none",
            Include = ["**/*.sys"],
            Only = ["DA5004,DA5001"],
            Level = ["DA1001=error"],
            HashList = ["known-vulnerable=flag.csv"],
        }, config);

        Assert.Null(s.FailOn);                                  // "none" from the flag, over the config's warning
        Assert.Equal(["**/*.sys"], s.Include);                  // the flag's list replaces the config's
        Assert.Equal(["**/skip/**"], s.Exclude);                // not given on the command line: the config's
        // Selection layers: the config's first, the command line's last (it wins in RuleSelector.Apply).
        Assert.Equal(2, s.Selection.Count);
        Assert.Equal(["DA1*"], s.Selection[0].Only.Select(p => p.Text));
        Assert.Equal(["DA5004", "DA5001"], s.CommandLineSelection.Only.Select(p => p.Text));
        Assert.Equal("--only", s.CommandLineSelection.Only[0].Origin);
        Assert.Equal([("DA1001", RuleLevel.Error)], s.CommandLineSelection.Levels.Select(l => (l.Pattern.Text, l.Level)));
        // Hash lists merge by name: the flag replaces the config's list of that name, the other stays.
        Assert.Equal(Path.Combine(Work, "flag.csv"), s.HashLists["known-vulnerable"]);
        Assert.Equal(Path.Combine(ConfigFolder, "lists", "other.txt"), s.HashLists["other"]);
    }

    [Fact]
    public void Config_paths_are_relative_to_the_file_and_flag_paths_to_the_working_directory()
    {
        var s = Merge(new ScanFlags { Rules = ["mine.yaml"], Baseline = "old/base.sarif", Cache = "c.db" }, Config("rules: [team-rules]\n"));
        // Rule paths add up: the config's, then the command line's.
        Assert.Equal([Path.Combine(ConfigFolder, "team-rules"), Path.Combine(Work, "mine.yaml")], s.RulePaths);
        Assert.Equal(Path.Combine(Work, "old", "base.sarif"), s.BaselinePath);
        Assert.Equal(Path.Combine(Work, "c.db"), s.CachePath);
    }

    [Theory]
    [InlineData(null, null, "text")]
    [InlineData(null, "out.sarif", "sarif")]
    [InlineData(null, "out.jsonl", "json")]
    [InlineData(null, "out.md", "markdown")]
    [InlineData(null, "-", "text")]
    [InlineData("json", "out.sarif", "json")] // --format wins over the extension
    public void The_format_is_the_flag_else_the_output_extension_else_text(string? format, string? output, string expected) =>
        Assert.Equal(expected, Merge(new ScanFlags { Format = format, Output = output }).Format);

    [Fact]
    public void Malformed_values_and_contradictions_are_refused_together()
    {
        var errors = Refused(new ScanFlags { Level = ["DA1001"], HashList = ["novalue"], IncludeAbsent = true });
        Assert.Equal(3, errors.Count);
        Assert.Contains("--level 'DA1001': expected RULE=LEVEL", errors[0]);
        Assert.Contains("--hash-list expects NAME=FILE, got 'novalue'", errors[1]);
        Assert.Contains("--include-absent", errors[2]);
        Assert.Contains("needs --baseline", errors[2]);
    }

    [Fact]
    public void Include_absent_with_a_baseline_is_accepted() =>
        Assert.True(Merge(new ScanFlags { IncludeAbsent = true, Baseline = "b.sarif" }).IncludeAbsent);

    [Fact]
    public void The_cli_exits_2_with_the_message_and_scans_nothing()
    {
        var r = CliRunner.Run(RepoPaths.Root, "scan", "tests/fixtures/bin/x64/pool_legacy.sys", "--include-absent");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--include-absent keeps the baseline's results not found again; it needs --baseline FILE.", r.Stderr);
        Assert.Equal("", r.Stdout);
    }
}
