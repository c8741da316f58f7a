using System.Security.Cryptography;
using System.Text.Json;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Cli;
using DriverAudit.Scanner.Configuration;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Reporting;
using Xunit;

namespace DriverAudit.Scanner.Tests.Cli;

/// <summary>
/// <c>suppressions:</c> in driveraudit.yaml: parsing, matching (rule, path glob, SHA-256, dump module), expiry, the gate,
/// the summary and every report format (SARIF validated against the official schema by <see cref="CliRunner"/>).
/// </summary>
public sealed class SuppressionTests
{
    private static readonly string Fixtures = Path.Combine(RepoPaths.Root, "tests", "fixtures", "bin", "x64");

    private static ConfigError Error(string text) =>
        Assert.Single(Assert.Throws<ConfigException>(() => ConfigFile.Parse(text, "/cfg/driveraudit.yaml")).Errors);

    [Fact]
    public void Every_key_is_read_with_its_line()
    {
        var config = ConfigFile.Parse("""
            fail-on: warning
            suppressions:
              - rule: DA1001
                path: "legacy/**/*.sys"
                justification: tracked in JIRA-12
                expires: 2027-03-31
              - {rule: "DA2*", sha256: "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789", module: "{*}.sys", justification: loader stub}
            """, "/cfg/driveraudit.yaml");

        Assert.Equal(2, config.Suppressions.Count);
        var a = config.Suppressions[0];
        Assert.Equal(("DA1001", "legacy/**/*.sys", "tracked in JIRA-12", new DateOnly(2027, 3, 31), 3), (a.Rule, a.Path, a.Justification, a.Expires!.Value, a.Line));
        var b = config.Suppressions[1];
        Assert.Equal("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", b.Sha256);
        Assert.Equal(("{*}.sys", (DateOnly?)null, 7), (b.Module, b.Expires, b.Line));
        Assert.Equal(Path.GetFullPath("/cfg/driveraudit.yaml"), Path.GetFullPath(b.ConfigUri));
    }

    [Fact]
    public void The_readme_config_example_parses()
    {
        var readme = File.ReadAllText(Path.Combine(RepoPaths.Root, "README.md"));
        var start = readme.IndexOf("```yaml\nonly:", StringComparison.Ordinal);
        Assert.True(start >= 0, "README: the driveraudit.yaml example was not found");
        start += "```yaml\n".Length;
        var text = readme[start..readme.IndexOf("```", start, StringComparison.Ordinal)];
        var config = ConfigFile.Parse(text, Path.Combine(RepoPaths.Root, "driveraudit.yaml"));
        var s = Assert.Single(config.Suppressions);
        Assert.Equal(("DA2001", "build/legacy/**", new DateOnly(2027, 6, 30)), (s.Rule, s.Path, s.Expires!.Value));
    }

    [Theory]
    [InlineData("suppressions:\n  - {rule: DA1001, path: x}\n", 2, 5, "needs 'justification'")]
    [InlineData("suppressions:\n  - {rule: DA1001, justification: why}\n", 2, 5, "needs a scope")]
    [InlineData("suppressions:\n  - {path: x, justification: why}\n", 2, 5, "needs 'rule'")]
    [InlineData("suppressions:\n  - {rule: DA1001, sha256: abc, justification: why}\n", 2, 28, "64 hex digits")]
    [InlineData("suppressions:\n  - {rule: DA1001, path: x, justification: why, expires: 31/12/2026}\n", 2, 58, "YYYY-MM-DD")]
    [InlineData("suppressions:\n  - {rule: DA1001, path: x, justification: why, reason: y}\n", 2, 49, "unknown suppression key 'reason'")]
    [InlineData("suppressions:\n  - {rule: DA1001, path: x, justification: \"  \"}\n", 2, 44, "must be a non-empty string")]
    [InlineData("suppressions: {rule: DA1001}\n", 1, 15, "must be a list")]
    [InlineData("suppressions:\n  - DA1001\n", 2, 5, "must be a mapping")]
    public void Errors_name_line_and_column(string text, int line, int column, string fragment)
    {
        var e = Error(text);
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        Assert.Equal((line, column), (e.Line, e.Column));
    }

    private static Rule MakeRule(string id, RuleLevel level) => new()
    {
        Id = id,
        Name = "Rule" + id,
        Title = "Title " + id,
        Level = level,
        Precision = "high",
        Tags = [],
        Cwe = [],
        Description = "d",
        Help = "h",
        MessageTemplate = "{artifact}",
        SourcePath = "embedded:rules/" + id + ".yaml",
    };

    private static Finding MakeFinding(Rule rule, string key = "k") =>
        new(rule, rule.Level, "m", new Anchor(AnchorKind.Image, key, new Dictionary<string, string>()), rule.Id + key, "image");

    private static Suppression Sup(string rule, string? path = null, string? sha = null, string? module = null, DateOnly? expires = null) => new()
    {
        Rule = rule, Path = path, Sha256 = sha, Module = module, Expires = expires, Justification = "why", ConfigUri = "driveraudit.yaml", Line = 1,
    };

    private static bool Suppressed(Suppression s, ArtifactReport a, Finding f) =>
        new SuppressionSet([s], new DateOnly(2026, 6, 1)).Apply(new InputReport([a with { Findings = [f] }], [])).Artifacts[0].Findings[0].Suppression is not null;

    [Fact]
    public void Every_given_scope_must_match()
    {
        var rule = MakeRule("DA1001", RuleLevel.Warning);
        var f = MakeFinding(rule);
        var file = new ArtifactReport { Uri = "build/Legacy/old.sys", Sha256 = new string('a', 64) };
        var module = new ArtifactReport { Uri = "dumps/MEMORY.DMP", ParentLocalIndex = 0, ModuleName = "{1234}.sys" };
        var outside = new ArtifactReport { Uri = "file:///srv/drivers/old.sys" };

        Assert.True(Suppressed(Sup("DA1001", path: "build/**/*.sys"), file, f));
        Assert.True(Suppressed(Sup("da1*", path: "BUILD/legacy/OLD.SYS"), file, f)); // ids, names and paths ignore case
        Assert.True(Suppressed(Sup("RuleDA1001", path: "**"), file, f)); // by name
        Assert.False(Suppressed(Sup("DA1003", path: "**"), file, f));
        Assert.False(Suppressed(Sup("DA1001", path: "build/*.sys"), file, f)); // * stays in one folder
        Assert.True(Suppressed(Sup("DA1001", sha: new string('a', 64)), file, f));
        Assert.False(Suppressed(Sup("DA1001", sha: new string('b', 64)), file, f));
        Assert.False(Suppressed(Sup("DA1001", path: "build/**", sha: new string('b', 64)), file, f)); // both must match
        Assert.False(Suppressed(Sup("DA1001", module: "*.sys"), file, f)); // a file is no dump module
        Assert.True(Suppressed(Sup("DA1001", module: "{*}.SYS"), module, f));
        Assert.True(Suppressed(Sup("DA1001", path: "dumps/*.dmp", module: "{1234}.sys"), module, f));
        Assert.False(Suppressed(Sup("DA1001", path: "other/*.dmp", module: "{1234}.sys"), module, f));
        Assert.True(Suppressed(Sup("DA1001", path: "srv/drivers/*.sys"), outside, f)); // outside the source root: the local path
    }

    [Fact]
    public void An_expired_suppression_applies_to_nothing_and_is_reported_once()
    {
        var rule = MakeRule("DA2001", RuleLevel.Error);
        var today = new DateOnly(2026, 6, 1);
        var set = new SuppressionSet([Sup("DA2001", path: "**", expires: today.AddDays(-1)), Sup("DA1001", path: "**", expires: today)], today);
        Assert.Equal(["DA1001"], set.Active.Select(s => s.Rule)); // the expiry day itself still applies
        var note = Assert.Single(set.ExpiredNotifications());
        Assert.Equal((NotificationCodes.SuppressionExpired, NotificationLevel.Warning), (note.Code, note.Level));
        Assert.Contains("expired on 2026-05-31", note.Message, StringComparison.Ordinal);
        var report = set.Apply(new InputReport([new ArtifactReport { Uri = "a.sys", Findings = [MakeFinding(rule)] }], []));
        Assert.Null(report.Artifacts[0].Findings[0].Suppression);
    }

    [Fact]
    public void The_gate_ignores_suppressed_results_and_the_summary_counts_them()
    {
        var error = MakeRule("DA2001", RuleLevel.Error);
        var warning = MakeRule("DA1001", RuleLevel.Warning);
        InputReport Analyze(InputItem _) => new([new ArtifactReport { Uri = "a.sys", Analyzed = true, Findings = [MakeFinding(error), MakeFinding(warning)] }], []);
        var engine = new ScanEngine(Analyze, new ScanOptions(1, RuleLevel.Warning, false, false));
        ScanSummary Run(params Suppression[] s)
        {
            using var sink = new JsonLinesSink(ReportOutput.Stdout(Stream.Null));
            var context = new ScanContext([error, warning], "/r", "file:///r/", DateTimeOffset.UnixEpoch) { Suppressions = new SuppressionSet(s, new DateOnly(2026, 6, 1)) };
            return engine.Run([new InputFile("/r/a.sys", "a.sys", true)], sink, context);
        }

        var none = Run();
        Assert.Equal((ExitCodes.Findings, 2, 0), (none.ExitCode, none.Findings, none.Suppressed));
        var errorOnly = Run(Sup("DA2001", path: "*.sys"));
        Assert.Equal((ExitCodes.Findings, 1, 1), (errorOnly.ExitCode, errorOnly.Findings, errorOnly.Suppressed)); // the warning still gates
        var both = Run(Sup("DA2001", path: "*.sys"), Sup("DA1001", path: "*.sys"));
        Assert.Equal((ExitCodes.Clean, 0, 2), (both.ExitCode, both.Findings, both.Suppressed));
        Assert.False(both.ByLevel.ContainsKey(RuleLevel.Error));
        Assert.Contains("(2 suppressed)", TextWriterSink.SummaryLine(both), StringComparison.Ordinal);
        var expired = Run(Sup("DA2001", path: "*.sys", expires: new DateOnly(2026, 5, 31)), Sup("DA1001", path: "*.sys"));
        Assert.Equal((ExitCodes.Findings, 1, 1), (expired.ExitCode, expired.Findings, expired.Suppressed));
    }

    /// <summary>A scratch source root with an error (DA2001 on wx_section.sys) and warnings (pool_legacy.sys).</summary>
    private static TempDir Tree(string config)
    {
        var t = new TempDir();
        t.File("drivers/wx_section.sys", File.ReadAllBytes(Path.Combine(Fixtures, "wx_section.sys")));
        t.File("drivers/legacy/pool_legacy.sys", File.ReadAllBytes(Path.Combine(Fixtures, "pool_legacy.sys")));
        File.WriteAllText(Path.Combine(t.Path, "driveraudit.yaml"), config);
        return t;
    }

    private static string WxSha => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(Fixtures, "wx_section.sys"))));

    private static CliRunner.Outcome Scan(TempDir t, params string[] extra) =>
        CliRunner.Run(t.Path, ["scan", "drivers", "--source-root", t.Path, .. extra]);

    [Fact]
    public void Suppressed_results_do_not_gate_and_the_summary_counts_them()
    {
        using var unsuppressed = Tree("");
        var before = Scan(unsuppressed);
        Assert.Equal(ExitCodes.Findings, before.ExitCode);
        Assert.Contains("wx_section.sys: error DA2001", before.Stdout, StringComparison.Ordinal);

        using var t = Tree($"""
            suppressions:
              - rule: DA2001
                sha256: {WxSha}
                justification: the loader stub needs W+X until the 2027 rewrite
                expires: 2999-12-31
              - rule: UntaggedPoolAllocation
                path: "drivers/legacy/**"
                justification: legacy build, replaced next release
            """);
        var after = Scan(t);
        Assert.Equal(ExitCodes.Clean, after.ExitCode);
        Assert.DoesNotContain("DA2001", after.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("DA1001", after.Stdout, StringComparison.Ordinal);
        Assert.Contains("0 error(s)", after.Stdout, StringComparison.Ordinal);
        Assert.Contains("(3 suppressed).", after.Stdout, StringComparison.Ordinal); // DA2001 once, DA1001 twice
        // --fail-on warning: the unsuppressed warnings gate; the suppressed ones never do.
        Assert.Equal(ExitCodes.Findings, Scan(t, "--fail-on", "warning").ExitCode);
        Assert.Equal(ExitCodes.Findings, Scan(t, "--config", Path.Combine(unsuppressed.Path, "driveraudit.yaml")).ExitCode);
    }

    [Fact]
    public void Sarif_leaves_them_out_by_default_and_keeps_them_marked_with_include_suppressed()
    {
        using var t = Tree($"""
            suppressions:
              - rule: DA2001
                sha256: {WxSha}
                justification: the loader stub needs W+X
                expires: 2999-12-31
            """);
        var left = Scan(t, "-o", "out.sarif");
        Assert.Equal(ExitCodes.Clean, left.ExitCode);
        Assert.Contains("(1 suppressed)", left.Stderr, StringComparison.Ordinal);
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(t.Path, "out.sarif"))))
        {
            var run = doc.RootElement.GetProperty("runs")[0];
            Assert.DoesNotContain(run.GetProperty("results").EnumerateArray(), r => r.GetProperty("ruleId").GetString() == "DA2001");
            var note = Assert.Single(run.GetProperty("invocations")[0].GetProperty("toolExecutionNotifications").EnumerateArray(),
                n => n.GetProperty("descriptor").GetProperty("id").GetString() == NotificationCodes.SuppressedResultsLeftOut);
            Assert.StartsWith("1 result(s) suppressed", note.GetProperty("message").GetProperty("text").GetString(), StringComparison.Ordinal);
        }

        var kept = Scan(t, "-o", "kept.sarif", "--include-suppressed"); // CliRunner validates the log against the SARIF 2.1.0 schema
        Assert.Equal(ExitCodes.Clean, kept.ExitCode);
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(t.Path, "kept.sarif"))))
        {
            var results = doc.RootElement.GetProperty("runs")[0].GetProperty("results").EnumerateArray().ToList();
            var wx = Assert.Single(results, r => r.GetProperty("ruleId").GetString() == "DA2001");
            var s = Assert.Single(wx.GetProperty("suppressions").EnumerateArray());
            Assert.Equal("external", s.GetProperty("kind").GetString());
            Assert.Equal("accepted", s.GetProperty("status").GetString());
            Assert.Equal("the loader stub needs W+X", s.GetProperty("justification").GetString());
            var where = s.GetProperty("location").GetProperty("physicalLocation");
            Assert.Equal("driveraudit.yaml", where.GetProperty("artifactLocation").GetProperty("uri").GetString());
            Assert.Equal(2, where.GetProperty("region").GetProperty("startLine").GetInt32());
            Assert.Equal("2999-12-31", s.GetProperty("properties").GetProperty("expires").GetString());
            Assert.All(results.Where(r => r.GetProperty("ruleId").GetString() != "DA2001"), r => Assert.False(r.TryGetProperty("suppressions", out _)));
        }
    }

    [Fact]
    public void An_expired_suppression_gates_again_with_a_warning_in_every_format()
    {
        using var t = Tree("""
            suppressions:
              - rule: DA2001
                path: "drivers/*.sys"
                justification: accepted for the 2020 release
                expires: 2020-12-31
            """);
        var text = Scan(t);
        Assert.Equal(ExitCodes.Findings, text.ExitCode);
        Assert.Contains("wx_section.sys: error DA2001", text.Stdout, StringComparison.Ordinal);
        Assert.Contains("warning DA0022: driveraudit.yaml:2: the suppression of DA2001 for path 'drivers/*.sys' expired on 2020-12-31", text.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("suppressed", text.Stdout, StringComparison.Ordinal);

        var sarif = Scan(t, "-o", "out.sarif");
        Assert.Equal(ExitCodes.Findings, sarif.ExitCode);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(t.Path, "out.sarif")));
        var run = doc.RootElement.GetProperty("runs")[0];
        var expired = Assert.Single(run.GetProperty("invocations")[0].GetProperty("toolExecutionNotifications").EnumerateArray(),
            n => n.GetProperty("descriptor").GetProperty("id").GetString() == NotificationCodes.SuppressionExpired);
        Assert.Equal("warning", expired.GetProperty("level").GetString());
        Assert.Equal("driveraudit.yaml", expired.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("artifactLocation").GetProperty("uri").GetString());
        Assert.Contains(run.GetProperty("results").EnumerateArray(), r => r.GetProperty("ruleId").GetString() == "DA2001" && !r.TryGetProperty("suppressions", out _));
    }

    [Fact]
    public void Json_lines_mark_suppressed_results_and_count_them()
    {
        using var t = Tree("""
            suppressions:
              - {rule: DA1001, path: "drivers/legacy/*.sys", justification: tracked in JIRA-12}
              - {rule: DA9999, path: "**", justification: a typo}
            """);
        var run = Scan(t, "--format", "json");
        Assert.Contains("driveraudit.yaml:3: warning: the suppression's rule 'DA9999' matches no loaded rule", run.Stderr, StringComparison.Ordinal);
        var lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var da1001 = lines.Where(l => l.GetProperty("kind").GetString() == "result" && l.GetProperty("ruleId").GetString() == "DA1001").ToList();
        Assert.Equal(2, da1001.Count);
        Assert.All(da1001, l => Assert.Equal("tracked in JIRA-12", l.GetProperty("suppression").GetProperty("justification").GetString()));
        Assert.All(da1001, l => Assert.Equal("driveraudit.yaml:2", l.GetProperty("suppression").GetProperty("source").GetString()));
        var summary = lines.Single(l => l.GetProperty("kind").GetString() == "summary");
        var results = lines.Count(l => l.GetProperty("kind").GetString() == "result");
        Assert.Equal(2, summary.GetProperty("suppressed").GetInt32());
        Assert.Equal(results - 2, summary.GetProperty("results").GetInt32());
    }
}
