using System.Text;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Cli;
using DriverAudit.Scanner.Configuration;
using DriverAudit.Scanner.Tests.Cli;
using Xunit;

namespace DriverAudit.Scanner.Tests.Configuration;

/// <summary><c>driveraudit.yaml</c>: parsing, positions of errors, discovery and precedence against the command line.</summary>
public sealed class ConfigFileTests
{
    private const string Legacy = "tests/fixtures/bin/x64/pool_legacy.sys";

    private static ConfigError Error(string text, string path = "/cfg/driveraudit.yaml") =>
        Assert.Single(Assert.Throws<ConfigException>(() => ConfigFile.Parse(text, path)).Errors);

    [Fact]
    public void Every_key_is_read_and_paths_are_relative_to_the_file()
    {
        var folder = Path.Combine(Path.GetTempPath(), "cfg");
        var config = ConfigFile.Parse("""
            only: [DA1*, "*Pool*,DA5004"]
            disable: DA1003
            level: {DA1001: error, "DA5*": note}
            include: ["**/*.sys", "**/*.bin"]
            exclude: "**/skip/**"
            rules: [my-rules, /abs/extra.yaml]
            fail-on: warning
            hash-lists:
              known-vulnerable: lists/loldrivers.csv
            """, Path.Combine(folder, "driveraudit.yaml"));

        Assert.Equal(["DA1*", "*Pool*", "DA5004"], config.Selection.Only.Select(p => p.Text));
        Assert.Equal(["DA1003"], config.Selection.Disable.Select(p => p.Text));
        Assert.Equal([("DA1001", RuleLevel.Error), ("DA5*", RuleLevel.Note)], config.Selection.Levels.Select(l => (l.Pattern.Text, l.Level)));
        Assert.Equal(["**/*.sys", "**/*.bin"], config.Include);
        Assert.Equal(["**/skip/**"], config.Exclude);
        Assert.Equal([Path.Combine(folder, "my-rules"), Path.GetFullPath("/abs/extra.yaml")], config.Rules);
        Assert.Equal("warning", config.FailOn);
        Assert.Equal(Path.Combine(folder, "lists", "loldrivers.csv"), config.HashLists["known-vulnerable"]);
        // Warnings about a pattern point back at the file and position.
        Assert.Equal("driveraudit.yaml:1:14: 'only'", config.Selection.Only[1].Origin);
    }

    [Fact]
    public void An_empty_file_is_an_empty_config()
    {
        var config = ConfigFile.Parse("# nothing yet\n", "/cfg/driveraudit.yaml");
        Assert.Empty(config.Selection.Only);
        Assert.Null(config.FailOn);
    }

    [Theory]
    [InlineData("only: [DA1*]\nseverity: high\n", 2, 1, "unknown key 'severity'")]
    [InlineData("level:\n  DA1001: fatal\n", 2, 11, "level must be note, warning or error")]
    [InlineData("level: [DA1001]\n", 1, 8, "'level' must be a mapping")]
    [InlineData("fail-on: sometimes\n", 1, 10, "'fail-on' must be error, warning, note or none")]
    [InlineData("only: {a: b}\n", 1, 7, "'only' must be a string or a list of strings")]
    [InlineData("only: [DA1*, [x]]\n", 1, 14, "'only' entries must be strings")]
    [InlineData("only: !!python/object:os.system DA1*\n", 1, 7, "YAML type tags (tag:yaml.org,2002:python/object:os.system) are not allowed in a config file")]
    [InlineData("only: !custom DA1*\n", 1, 7, "YAML type tags (!custom) are not allowed in a config file")]
    [InlineData("a: &x DA1*\n", 1, 4, "YAML anchors (&x) are not allowed in a config file")]
    [InlineData("only: *x\n", 1, 7, "YAML aliases (*x) are not allowed in a config file")]
    [InlineData("only: DA1*\nonly: DA2*\n", 2, 1, "duplicate key 'only' (first at line 1, column 1)")]
    [InlineData("only: [DA1*\n", 2, 1, "invalid YAML")]
    [InlineData("- DA1*\n", 1, 1, "must be a mapping")]
    [InlineData("only: DA1*\n---\nonly: DA2*\n", 2, 1, "more than one YAML document")]
    public void Errors_name_file_line_and_column(string text, int line, int column, string fragment)
    {
        var e = Error(text);
        Assert.Equal("/cfg/driveraudit.yaml", e.File);
        Assert.True(e.Line == line && e.Column == column && e.Message.Contains(fragment, StringComparison.OrdinalIgnoreCase), $"got {e}");
        Assert.StartsWith($"/cfg/driveraudit.yaml:{line}:{column}: ", e.ToString());
    }

    [Fact]
    public void Every_error_is_reported_not_just_the_first()
    {
        var errors = Assert.Throws<ConfigException>(() => ConfigFile.Parse("fail-on: x\nlevel: {A: y}\nbogus: 1\n", "c.yaml")).Errors;
        Assert.Equal([1, 2, 3], errors.Select(e => e.Line));
    }

    [Fact]
    public void Deep_nesting_is_refused_without_recursing()
    {
        var text = "only: " + new string('[', 5000) + new string(']', 5000) + "\n";
        Assert.Contains("nesting deeper", Error(text).Message);
    }

    // --- the CLI: discovery and precedence ---

    private static void WriteConfig(string folder, string text, string name = "driveraudit.yaml") =>
        File.WriteAllText(Path.Combine(folder, name), text);

    private static CliRunner.Outcome Scan(string cwd, params string[] args) =>
        CliRunner.Run(cwd, ["scan", Path.Combine(RepoPaths.Root, Legacy), "--format", "sarif", .. args]);

    [Fact]
    public void A_config_in_the_source_root_is_found_and_applied()
    {
        using var t = new TempDir();
        WriteConfig(t.Path, "only: [DA1*]\nlevel: {DA1003: error}\nfail-on: error\n");
        var r = Scan(t.Path);
        Assert.Equal(1, r.ExitCode); // DA1003 re-levelled to error trips the gate
        var run = ScanSelectionTests.Sarif(r);
        Assert.Equal(["DA1001", "DA1003", "DA1004"], ScanSelectionTests.ResultIds(run));

        // --source-root elsewhere: that folder's config (none) applies, not the working directory's.
        using var other = new TempDir();
        var elsewhere = Scan(t.Path, "--source-root", other.Path, "--fail-on", "none");
        Assert.Contains("DA5004", ScanSelectionTests.ResultIds(ScanSelectionTests.Sarif(elsewhere)));
    }

    [Fact]
    public void Config_given_with_dash_dash_config_and_its_relative_rule_paths()
    {
        using var t = new TempDir();
        var sub = t.Dir("ci");
        File.WriteAllText(Path.Combine(sub, "acme.yaml"), CustomRules.Make("ACME001", "LegacyPool", "import: ntoskrnl!ExAllocatePool"));
        WriteConfig(sub, "rules: [acme.yaml]\nonly: ACME*\n", "audit.yaml");
        var r = Scan(t.Path, "--config", "ci/audit.yaml", "--fail-on", "none");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(["ACME001"], ScanSelectionTests.ResultIds(ScanSelectionTests.Sarif(r)));
    }

    [Fact]
    public void Command_line_wins_over_the_config()
    {
        using var t = new TempDir();
        WriteConfig(t.Path, "only: [DA1*]\ndisable: [DA1003]\nlevel: {DA1001: note}\nfail-on: note\n");

        // Config alone: DA1001 at note, gate at note → 1.
        var fromConfig = Scan(t.Path);
        Assert.Equal(1, fromConfig.ExitCode);
        Assert.Equal(["DA1001", "DA1004"], ScanSelectionTests.ResultIds(ScanSelectionTests.Sarif(fromConfig)));

        // --only replaces the config's only and disable; --level and --fail-on win.
        var r = Scan(t.Path, "--only", "DA1003,DA1001", "--level", "DA1001=warning", "--fail-on", "error");
        Assert.Equal(0, r.ExitCode);
        var run = ScanSelectionTests.Sarif(r);
        Assert.Equal(["DA1001", "DA1003"], ScanSelectionTests.ResultIds(run));
        Assert.All(run.GetProperty("results").EnumerateArray().Where(x => x.GetProperty("ruleId").GetString() == "DA1001"),
            x => Assert.Equal("warning", x.GetProperty("level").GetString()));

        // --disable adds to the config's selection; leaving no rule at all is refused (exit 2), never a clean scan.
        var fewer = Scan(t.Path, "--disable", "DA1001");
        Assert.Equal(["DA1004"], ScanSelectionTests.ResultIds(ScanSelectionTests.Sarif(fewer)));
        var none = Scan(t.Path, "--disable", "DA1*");
        Assert.Equal(2, none.ExitCode);
        Assert.Contains("no rule to run", none.Stderr);
    }

    [Fact]
    public void Config_patterns_that_select_nothing_warn_with_their_position()
    {
        using var t = new TempDir();
        WriteConfig(t.Path, "disable:\n  - DA1003\n  - DA9999\n");
        var r = Scan(t.Path, "--fail-on", "none");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("driveraudit.yaml:3:5: 'disable' 'DA9999' matches no rule", r.Stderr);
    }

    [Fact]
    public void A_broken_config_is_exit_2_with_position_and_no_report()
    {
        using var t = new TempDir();
        WriteConfig(t.Path, "only: [DA1*]\nlevel: {DA1003: loud}\n");
        var output = Path.Combine(t.Path, "out.sarif");
        var r = Scan(t.Path, "-o", output);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("driveraudit.yaml:2:17: level must be note, warning or error", r.Stderr);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void A_missing_explicit_config_is_exit_2()
    {
        using var t = new TempDir();
        var r = Scan(t.Path, "--config", "nope.yaml");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("nope.yaml:1:1: no such config file", r.Stderr);
    }

    [Fact]
    public void Config_include_and_exclude_apply_inside_folders_unless_the_command_line_gives_its_own()
    {
        using var t = new TempDir();
        var legacy = File.ReadAllBytes(Path.Combine(RepoPaths.Root, Legacy));
        t.File("drivers/a.sys", legacy);
        t.File("drivers/b.bin", legacy);
        WriteConfig(t.Path, "include: '**/*.bin'\nonly: DA1001\n");
        string[] Uris(CliRunner.Outcome o) => [.. ScanSelectionTests.Sarif(o).GetProperty("artifacts").EnumerateArray()
            .Select(a => a.GetProperty("location").GetProperty("uri").GetString()!).Order(StringComparer.Ordinal)];

        Assert.Equal(["drivers/b.bin"], Uris(CliRunner.Run(t.Path, "scan", "drivers", "--format", "sarif")));
        Assert.Equal(["drivers/a.sys"], Uris(CliRunner.Run(t.Path, "scan", "drivers", "--format", "sarif", "--include", "**/*.sys")));
    }

    [Fact]
    public void Utf8_config_with_bom_is_read()
    {
        using var t = new TempDir();
        t.File("driveraudit.yaml", [.. Encoding.UTF8.GetPreamble(), .. Encoding.UTF8.GetBytes("only: DA1001\n")]);
        Assert.Equal(["DA1001"], ScanSelectionTests.ResultIds(ScanSelectionTests.Sarif(Scan(t.Path, "--fail-on", "none"))));
    }
}
