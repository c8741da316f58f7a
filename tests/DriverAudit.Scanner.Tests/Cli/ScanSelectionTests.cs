using System.Text.Json;
using Xunit;

namespace DriverAudit.Scanner.Tests.Cli;

/// <summary><c>scan --only/--disable/--level</c> on the fixtures with the default pack, checked in SARIF.</summary>
public sealed class ScanSelectionTests
{
    private const string Legacy = "tests/fixtures/bin/x64/pool_legacy.sys";

    internal static JsonElement Sarif(CliRunner.Outcome r)
    {
        SarifSchema.AssertValid(r.Stdout);
        return JsonDocument.Parse(r.Stdout).RootElement.GetProperty("runs")[0].Clone();
    }

    internal static SortedSet<string> ResultIds(JsonElement run) =>
        new(run.GetProperty("results").EnumerateArray().Select(x => x.GetProperty("ruleId").GetString()!), StringComparer.Ordinal);

    internal static SortedSet<string> DescribedIds(JsonElement run) =>
        new(run.GetProperty("tool").GetProperty("driver").GetProperty("rules").EnumerateArray().Select(x => x.GetProperty("id").GetString()!), StringComparer.Ordinal);

    private static JsonElement Descriptor(JsonElement run, string id) =>
        run.GetProperty("tool").GetProperty("driver").GetProperty("rules").EnumerateArray().Single(x => x.GetProperty("id").GetString() == id);

    /// <summary>Gates at none unless the test gives its own --fail-on.</summary>
    private static CliRunner.Outcome Scan(params string[] args) =>
        CliRunner.Run(RepoPaths.Root, ["scan", Legacy, "--format", "sarif", .. args, .. args.Contains("--fail-on") ? Array.Empty<string>() : ["--fail-on", "none"]]);

    [Fact]
    public void Without_selection_the_legacy_driver_trips_pool_and_hardening_rules()
    {
        var run = Sarif(Scan());
        Assert.Superset(new SortedSet<string> { "DA1001", "DA1003", "DA5004" }, ResultIds(run));
    }

    [Fact]
    public void Only_by_id_wildcard_keeps_those_rules_in_results_and_in_rules_array()
    {
        var r = Scan("--only", "DA1*");
        Assert.Equal(0, r.ExitCode);
        var run = Sarif(r);
        Assert.Equal(["DA1001", "DA1003", "DA1004"], ResultIds(run));
        Assert.All(DescribedIds(run).Where(id => !id.StartsWith("DA0", StringComparison.Ordinal)), id => Assert.StartsWith("DA1", id));
        Assert.DoesNotContain("matches no rule", r.Stderr);
    }

    [Fact]
    public void Only_by_name_wildcard_ignores_case_and_comma_lists_and_repeats_add_up()
    {
        var run = Sarif(Scan("--only", "*untaggedpool*", "--only", "DA5003,NoControlFlowGuard"));
        Assert.Equal(["DA1001", "DA5003", "DA5004"], ResultIds(run));
    }

    [Fact]
    public void Disable_removes_rules()
    {
        var run = Sarif(Scan("--disable", "DA5004", "--disable", "DA1003,*Stack*"));
        var ids = ResultIds(run);
        Assert.Contains("DA1001", ids);
        Assert.DoesNotContain("DA5004", ids);
        Assert.DoesNotContain("DA1003", ids);
        Assert.DoesNotContain("DA5003", ids);
        Assert.DoesNotContain("DA5004", DescribedIds(run));
    }

    [Fact]
    public void Level_override_changes_results_the_descriptor_and_the_exit_code()
    {
        var plain = Scan("--only", "DA1003", "--fail-on", "error");
        Assert.Equal(0, plain.ExitCode);

        var r = Scan("--only", "DA1003", "--level", "DA1003=error", "--fail-on", "error");
        Assert.Equal(1, r.ExitCode);
        var run = Sarif(r);
        Assert.All(run.GetProperty("results").EnumerateArray(), x => Assert.Equal("error", x.GetProperty("level").GetString()));
        Assert.Equal("error", Descriptor(run, "DA1003").GetProperty("defaultConfiguration").GetProperty("level").GetString());
    }

    [Fact]
    public void Level_accepts_names_wildcards_and_the_last_override_wins()
    {
        var run = Sarif(Scan("--only", "DA1*", "--level", "DeprecatedPool*=warning,DA1*=note", "--level", "DA1001=error"));
        Assert.Equal("error", Descriptor(run, "DA1001").GetProperty("defaultConfiguration").GetProperty("level").GetString());
        Assert.Equal("note", Descriptor(run, "DA1003").GetProperty("defaultConfiguration").GetProperty("level").GetString());
    }

    [Theory]
    [InlineData("--only", "DA1*,DA9*", "--only 'DA9*' matches no rule")]
    [InlineData("--only", "DA9999", "--only 'DA9999' matches no rule")]
    [InlineData("--disable", "NoSuchRule", "--disable 'NoSuchRule' matches no rule")]
    [InlineData("--level", "ZZ*=error", "--level 'ZZ*' matches no rule")]
    public void A_command_line_pattern_that_selects_nothing_is_a_usage_error_and_writes_no_report(string option, string value, string message)
    {
        using var t = new TempDir();
        var output = Path.Combine(t.Path, "out.sarif");
        var r = Scan(option, value, "-o", output);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        Assert.DoesNotContain("'DA1*'", r.Stderr);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void A_mistyped_rule_id_gets_a_suggestion()
    {
        var r = Scan("--only", "DA1030");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("did you mean DA1003?", r.Stderr);
    }

    [Theory]
    [InlineData("--only")]
    [InlineData("--disable")]
    public void An_unknown_rule_id_names_the_id_and_the_nearest_ids(string option)
    {
        var r = Scan(option, "DA9999");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains($"{option} 'DA9999' matches no rule", r.Stderr);
        Assert.Matches(@"nearest rule ids: DA\d{4}, DA\d{4}, DA\d{4}", r.Stderr);
    }

    [Theory]
    [InlineData("DA1003=fatal")]
    [InlineData("DA1003")]
    [InlineData("=error")]
    [InlineData("DA1003=")]
    public void A_bad_level_option_is_a_usage_error_and_writes_no_report(string value)
    {
        using var t = new TempDir();
        var output = Path.Combine(t.Path, "out.sarif");
        var r = Scan("--level", value, "-o", output);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--level", r.Stderr);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Help_uri_points_at_the_rule_page_and_the_log_validates()
    {
        var run = Sarif(Scan());
        var descriptor = Descriptor(run, "DA1001");
        Assert.Equal("https://github.com/driveraudit/driveraudit/blob/main/docs/rules/DA1001.md", descriptor.GetProperty("helpUri").GetString());
        Assert.True(File.Exists(Path.Combine(RepoPaths.Root, "docs", "rules", "DA1001.md")));
    }

    [Fact]
    public void Custom_rules_get_no_help_uri()
    {
        using var t = new TempDir();
        var rule = t.File("acme.yaml", System.Text.Encoding.UTF8.GetBytes(CustomRules.Make("ACME001", "LegacyPool", "import: ntoskrnl!ExAllocatePool")));
        var run = Sarif(Scan("--rules", rule, "--only", "ACME*"));
        Assert.Equal(["ACME001"], ResultIds(run));
        Assert.False(Descriptor(run, "ACME001").TryGetProperty("helpUri", out _));
    }
}
