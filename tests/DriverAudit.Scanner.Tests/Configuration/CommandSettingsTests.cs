using DriverAudit.Scanner.Configuration;
using Xunit;

namespace DriverAudit.Scanner.Tests.Configuration;

/// <summary>
/// Settings before running for inspect, tags, inventory, merge, report and rules: each command's flags become
/// settings through a pure function (tested here without a parser or a file), and every usage error is reported at
/// once, with exit 2 and nothing read (the CLI cases at the end).
/// </summary>
public sealed class CommandSettingsTests
{
    private static readonly string Work = Path.GetFullPath(Path.Combine(Path.GetTempPath(), "wd"));

    private static T Accepted<T>(SettingsResult<T> result)
        where T : class
    {
        Assert.Empty(result.Errors);
        return Assert.IsType<T>(result.Settings);
    }

    private static IReadOnlyList<string> Refused<T>(SettingsResult<T> result)
        where T : class
    {
        Assert.Null(result.Settings);
        Assert.NotEmpty(result.Errors);
        return result.Errors;
    }

    [Theory]
    [InlineData(null, false, false)]
    [InlineData("text", false, false)]
    [InlineData("json", false, true)]
    [InlineData(null, true, true)]
    [InlineData("json", true, true)]
    public void Inspect_writes_json_for_format_json_or_the_json_alias(string? format, bool json, bool expected)
    {
        var s = Accepted(InspectSettings.From(new InspectFlags { Paths = ["a.sys"], Format = format, Json = json, Include = ["**/*.sys"], Module = "nt" }));
        Assert.Equal(expected, s.Json);
        Assert.Equal(["a.sys"], s.Paths);
        Assert.Equal(["**/*.sys"], s.Include);
        Assert.Equal("nt", s.Module);
    }

    [Fact]
    public void Inspect_json_alias_contradicting_format_is_refused() =>
        Assert.Equal(["driveraudit: error: --json is --format json; it contradicts --format text."],
            Refused(InspectSettings.From(new InspectFlags { Paths = ["a.sys"], Format = "text", Json = true })));

    [Fact]
    public void Tags_parses_every_pattern_and_resolves_the_listing()
    {
        var s = Accepted(TagsSettings.From(new TagsFlags { Paths = ["d"], Tag = ["Ddk ,None", "Th*"], IgnoreCase = true, Poolused = "pool.txt", Format = "json" }, Work));
        Assert.Equal(["Ddk ", "None", "Th*"], s.Patterns.Select(p => p.Text));
        Assert.All(s.Patterns, p => Assert.True(p.IgnoreCase));
        Assert.Equal("pool.txt", s.Poolused);
        Assert.Equal(Path.Combine(Work, "pool.txt"), s.PoolusedPath);
        Assert.Equal("json", s.Format);
        Assert.Equal("text", Accepted(TagsSettings.From(new TagsFlags { Paths = ["d"] }, Work)).Format);
    }

    [Fact]
    public void Tags_reports_every_bad_pattern_and_the_pooltag_contradiction_together()
    {
        var errors = Refused(TagsSettings.From(new TagsFlags { Paths = ["d"], Tag = ["toolongtag", "Ddk", "abcdefg"], Poolused = "p.txt", Format = "pooltag" }, Work));
        Assert.Equal(3, errors.Count);
        Assert.Contains("'toolongtag'", errors[0], StringComparison.Ordinal);
        Assert.Contains("'abcdefg'", errors[1], StringComparison.Ordinal);
        Assert.Equal("driveraudit: --poolused writes text or json, not pooltag lines.", errors[2]);
    }

    [Fact]
    public void Inventory_takes_the_defaults_and_resolves_rule_and_cache_paths()
    {
        var d = Accepted(InventorySettings.From(new InventoryFlags { Paths = ["d"] }, Work, processorCount: 6));
        Assert.False(d.Csv);
        Assert.True(d.IncludeDefaultRules);
        Assert.Equal(6, d.Jobs);
        Assert.Null(d.CachePath);
        Assert.Empty(d.RulePaths);

        var s = Accepted(InventorySettings.From(new InventoryFlags
        {
            Paths = ["d"], Format = "csv", Output = "inv.csv", Rules = ["my", "/abs/r.yaml"], NoDefaultRules = true, Jobs = 2,
            Host = "h1", Shard = "1/2", Cache = "c.sqlite", Include = ["*.sys"], Exclude = ["x*"],
        }, Work, processorCount: 6));
        Assert.True(s.Csv);
        Assert.Equal("inv.csv", s.Output);
        Assert.Equal([Path.Combine(Work, "my"), "/abs/r.yaml"], s.RulePaths);
        Assert.False(s.IncludeDefaultRules);
        Assert.Equal(2, s.Jobs);
        Assert.Equal(("h1", "1/2", Path.Combine(Work, "c.sqlite")), (s.Host, s.Shard, s.CachePath));
        Assert.Equal(["*.sys"], s.Include);
        Assert.Equal(["x*"], s.Exclude);
    }

    [Fact]
    public void Rule_paths_are_spelt_alike_by_scan_inventory_and_rules()
    {
        string[] given = ["my/rules", "/abs/r.yaml"];
        var scan = ScanSettings.Merge(new ScanFlags { Paths = ["a"], Rules = given }, ConfigFile.None, Work, Work, 1).Settings!.RulePaths;
        var inventory = Accepted(InventorySettings.From(new InventoryFlags { Rules = given }, Work, 1)).RulePaths;
        var rules = Accepted(RulesSettings.From(new RulesFlags { Rules = given }, Work)).RulePaths;
        Assert.Equal(scan, inventory);
        Assert.Equal(scan, rules);
    }

    [Fact]
    public void Merge_resolves_logs_and_database_and_writes_sarif_unless_only_a_database_was_asked_for()
    {
        var s = Accepted(MergeSettings.From(new MergeFlags { Logs = ["a.sarif", "/abs/b.sarif"], Db = "fleet.sqlite" }, Work));
        Assert.Equal([Path.Combine(Work, "a.sarif"), "/abs/b.sarif"], s.Logs);
        Assert.Equal(Path.Combine(Work, "fleet.sqlite"), s.DbPath);
        Assert.False(s.WritesSarif);
        Assert.True(Accepted(MergeSettings.From(new MergeFlags { Logs = ["a"], Db = "f", Output = "o.sarif" }, Work)).WritesSarif);
        Assert.True(Accepted(MergeSettings.From(new MergeFlags { Logs = ["a"] }, Work)).WritesSarif);
    }

    [Fact]
    public void Report_resolves_the_fleet_and_keeps_the_output_as_given()
    {
        var s = Accepted(ReportSettings.From(new ReportFlags { Fleet = "fleet.sqlite", Output = "-" }, Work));
        Assert.Equal(Path.Combine(Work, "fleet.sqlite"), s.Source);
        Assert.Equal("-", s.Output);
    }

    [Fact]
    public void Rules_defaults_to_text_and_the_embedded_pack()
    {
        var s = Accepted(RulesSettings.From(new RulesFlags { Id = "DA1001" }, Work));
        Assert.Equal(("text", false, true, "DA1001"), (s.Format, s.Json, s.IncludeDefaultRules, s.Id));
        var j = Accepted(RulesSettings.From(new RulesFlags { Format = "json", NoDefaultRules = true, Rules = ["r"] }, Work));
        Assert.Equal((true, false), (j.Json, j.IncludeDefaultRules));
    }

    [Fact]
    public void Tags_cli_reports_every_usage_error_before_reading_anything()
    {
        // The missing path is not reported: settings come first, and nothing is read when they are refused.
        var r = CliRunner.Run(RepoPaths.Root, "tags", "no/such/folder", "--tag", "toolongtag", "--tag", "abcdefg", "--poolused", "no/such.txt", "--format", "pooltag");
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("", r.Stdout);
        Assert.Contains("'toolongtag'", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("'abcdefg'", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("--poolused writes text or json, not pooltag lines.", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("does not exist", r.Stderr, StringComparison.Ordinal);
    }
}
