using System.Text;
using System.Text.Json;
using Xunit;

namespace DriverAudit.Scanner.Tests.Cli;

/// <summary><c>driveraudit rules list|show|validate|test</c>.</summary>
public sealed class RulesCommandTests
{
    private static string RulesDir => Path.Combine(RepoPaths.Root, "rules");

    /// <summary>The default pack as committed: every rules/*.yaml id.</summary>
    private static SortedSet<string> PackIds() =>
        new(Directory.EnumerateFiles(RulesDir, "*.yaml").Select(Path.GetFileNameWithoutExtension)!, StringComparer.Ordinal);

    private static CliRunner.Outcome Run(params string[] args) => CliRunner.Run(RepoPaths.Root, args);

    private static string WriteRule(TempDir t, string file, string text) => t.File(file, Encoding.UTF8.GetBytes(text));

    [Fact]
    public void List_as_plain_text_has_a_header_and_one_line_per_rule()
    {
        var r = Run("rules", "list");
        Assert.Equal(0, r.ExitCode);
        var lines = r.Stdout.TrimEnd().Split('\n');
        Assert.Matches(@"^ID\s+NAME\s+LEVEL\s+PRECISION\s+SEVERITY\s+TITLE$", lines[0].TrimEnd());
        Assert.Equal(PackIds(), new SortedSet<string>(lines.Skip(1).Select(l => l.Split(' ')[0]), StringComparer.Ordinal));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^DA1001\s+UntaggedPoolAllocation\s+warning\s+very-high\s+-\s+Untagged pool allocation$"));
        Assert.DoesNotContain('\u001b', r.Stdout); // no colours when not on a terminal
    }

    [Fact]
    public void List_on_a_terminal_is_a_table()
    {
        using var stdout = new MemoryStream();
        var text = new StringWriter();
        var exit = DriverAudit.Scanner.Cli.DriverAuditCli.Run(["rules", "list"],
            new DriverAudit.Scanner.Cli.CliIo(stdout, text, new StringWriter(), Interactive: true, RepoPaths.Root));
        Assert.Equal(0, exit);
        var table = text.ToString();
        Assert.Contains("│", table); // box drawing: Spectre's table, not the plain listing
        // Off a real console Spectre assumes 80 columns and wraps long cells, so check the short ones.
        Assert.All(PackIds(), id => Assert.Contains(id, table));
    }

    [Fact]
    public void List_as_json_carries_the_metadata()
    {
        var r = Run("rules", "list", "--format", "json");
        Assert.Equal(0, r.ExitCode);
        var rules = JsonDocument.Parse(r.Stdout).RootElement.EnumerateArray().ToList();
        Assert.Equal(PackIds(), new SortedSet<string>(rules.Select(x => x.GetProperty("id").GetString()!), StringComparer.Ordinal));
        var da2001 = rules.Single(x => x.GetProperty("id").GetString() == "DA2001");
        Assert.Equal("WritableExecutableSection", da2001.GetProperty("name").GetString());
        Assert.Equal("error", da2001.GetProperty("level").GetString());
        Assert.Equal("very-high", da2001.GetProperty("precision").GetString());
        Assert.Equal("7.5", da2001.GetProperty("security-severity").GetString());
        Assert.Equal(JsonValueKind.Null, rules.Single(x => x.GetProperty("id").GetString() == "DA1001").GetProperty("security-severity").ValueKind);
    }

    [Fact]
    public void List_with_extra_rules_and_without_the_default_pack()
    {
        using var t = new TempDir();
        var rule = WriteRule(t, "acme.yaml", CustomRules.Make("ACME001", "LegacyPool", "import: ntoskrnl!ExAllocatePool"));
        var both = Run("rules", "list", "--rules", rule);
        Assert.Contains("ACME001", both.Stdout);
        Assert.Contains("DA1001", both.Stdout);
        var only = Run("rules", "list", "--rules", rule, "--no-default-rules");
        Assert.Contains("ACME001", only.Stdout);
        Assert.DoesNotContain("DA1001", only.Stdout);
        Assert.Equal(2, Run("rules", "list", "--no-default-rules").ExitCode);
    }

    [Fact]
    public void Show_prints_metadata_help_and_the_match_tree_as_written()
    {
        var r = Run("rules", "show", "untaggedpoolallocation"); // by name, any case
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("DA1001 UntaggedPoolAllocation: Untagged pool allocation", r.Stdout);
        Assert.Contains("precision:         very-high", r.Stdout);
        Assert.Contains("tags:              pool, reliability, diagnosability", r.Stdout);
        Assert.Contains("https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-exallocatepool", r.Stdout);
        Assert.Contains("example (match):   tests/fixtures/bin/x64/pool_legacy.sys", r.Stdout);
        Assert.Contains("ExAllocatePool2(POOL_FLAG_NON_PAGED", r.Stdout); // help markdown
        Assert.Contains("documentation:     https://github.com/driveraudit/driveraudit/blob/main/docs/rules/DA1001.md", r.Stdout);
        var match = r.Stdout[(r.Stdout.IndexOf("\nMatch:\n", StringComparison.Ordinal) + 8)..].Replace("\r\n", "\n").TrimEnd();
        Assert.Equal("match:\n  any:\n    - import: ntoskrnl!ExAllocatePool\n    - import: ntoskrnl!ExAllocatePoolWithQuota", match);
    }

    [Fact]
    public void Show_a_custom_rule_in_flow_style_and_an_unknown_id()
    {
        using var t = new TempDir();
        var rule = WriteRule(t, "acme.yaml", CustomRules.Make("ACME001", "LegacyPool", "any: [{import: ntoskrnl!ExAllocatePool}]",
            extra: "# trailing comment\nexamples:\n  match: [a.sys]\n"));
        var r = Run("rules", "show", "ACME001", "--rules", rule);
        Assert.Equal(0, r.ExitCode);
        Assert.EndsWith("Match:\nmatch:\n  any: [{import: ntoskrnl!ExAllocatePool}]", r.Stdout.Replace("\r\n", "\n").TrimEnd());
        Assert.DoesNotContain("documentation:", r.Stdout);

        var missing = Run("rules", "show", "DA9999");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("no rule 'DA9999'", missing.Stderr);
    }

    [Fact]
    public void Validate_accepts_the_default_pack_and_custom_rules_that_refer_to_it()
    {
        var pack = Run("rules", "validate", "rules");
        Assert.Equal(0, pack.ExitCode);
        Assert.Contains($"{PackIds().Count} rule(s) valid", pack.Stdout);

        using var t = new TempDir();
        var rule = WriteRule(t, "acme.yaml", CustomRules.Make("ACME001", "ReusesLegacy", "rule: DA1001"));
        var r = Run("rules", "validate", rule);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("1 rule(s) valid", r.Stdout);
        // Without the pack the reference has nothing to bind to.
        var alone = Run("rules", "validate", rule, "--no-default-rules");
        Assert.Equal(2, alone.ExitCode);
        Assert.Contains("acme.yaml:10:9: 'rule: DA1001' names no loaded rule", alone.Stderr.Replace('\\', '/'));
    }

    [Fact]
    public void Validate_reports_every_error_with_file_line_and_column()
    {
        using var t = new TempDir();
        WriteRule(t, "bad/one.yaml", CustomRules.Make("ACME001", "One", "import: ntoskrnl!ExAllocatePool", level: "loud"));
        WriteRule(t, "bad/two.yaml", CustomRules.Make("ACME002", "Two", "imports: ExAllocatePool"));
        var r = Run("rules", "validate", Path.Combine(t.Path, "bad"));
        Assert.Equal(2, r.ExitCode);
        var err = r.Stderr.Replace('\\', '/');
        Assert.Matches(@"bad/one\.yaml:4:8: .*level", err);
        Assert.Matches(@"bad/two\.yaml:10:3: .*imports", err);
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void Validate_an_edited_copy_of_a_pack_rule_replaces_the_embedded_one()
    {
        using var t = new TempDir();
        var text = File.ReadAllText(Path.Combine(RulesDir, "DA1001.yaml")).Replace("level: warning", "level: error", StringComparison.Ordinal);
        var r = Run("rules", "validate", WriteRule(t, "DA1001.yaml", text));
        Assert.Equal(0, r.ExitCode);
        Assert.DoesNotContain("duplicate", r.Stderr);
    }

    /// <summary>The default pack's own examples must hold against the real analyzer (CI runs this too).</summary>
    [Fact]
    public void Test_passes_for_the_default_pack()
    {
        var r = Run("rules", "test", "rules/");
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        Assert.DoesNotContain("FAIL", r.Stdout);
        Assert.Matches($@"^{PackIds().Count} rule\(s\), \d+ example\(s\)", r.Stdout.Trim().Split('\n').Last());
    }

    [Fact]
    public void Test_fails_naming_each_example_that_does_not_behave_and_lists_rules_without_examples()
    {
        using var t = new TempDir();
        WriteRule(t, "r/good.yaml", CustomRules.Make("ACME001", "LegacyPool", "import: ntoskrnl!ExAllocatePool",
            extra: "examples:\n  match: [tests/fixtures/bin/x64/pool_legacy.sys]\n  no-match: [tests/fixtures/bin/x64/pool_modern.sys]\n"));
        WriteRule(t, "r/bad.yaml", CustomRules.Make("ACME002", "WrongExamples", "import: ntoskrnl!ExAllocatePool",
            extra: "examples:\n  match: [tests/fixtures/bin/x64/pool_modern.sys, tests/fixtures/bin/x64/missing.sys, tests/fixtures/bin/x64/not_a_pe.sys]\n" +
                   "  no-match: [tests/fixtures/bin/x64/pool_legacy.sys]\n"));
        WriteRule(t, "r/none.yaml", CustomRules.Make("ACME003", "NoExamples", "import: ntoskrnl!ExAllocatePool"));

        // The temp folder is in no repository, so example paths are relative to the working directory.
        var r = Run("rules", "test", Path.Combine(t.Path, "r"));
        Assert.Equal(1, r.ExitCode);
        var lines = r.Stdout.Replace("\r\n", "\n").TrimEnd().Split('\n');
        Assert.Contains("FAIL ACME002 WrongExamples: tests/fixtures/bin/x64/pool_modern.sys should match but does not", lines);
        Assert.Contains("FAIL ACME002 WrongExamples: tests/fixtures/bin/x64/pool_legacy.sys matches but should not", lines);
        Assert.Contains(lines, l => l.StartsWith("FAIL ACME002 WrongExamples: tests/fixtures/bin/x64/missing.sys no such file", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("FAIL ACME002 WrongExamples: tests/fixtures/bin/x64/not_a_pe.sys cannot be analysed", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("ACME001", StringComparison.Ordinal));
        Assert.Contains("no examples: ACME003 NoExamples", lines);
        Assert.Equal("3 rule(s), 6 example(s): 1 rule(s) passed, 1 failed, 1 without examples.", lines[^1]);
        // Only the given files are tested, not the embedded pack loaded beside them.
        Assert.DoesNotContain("DA1001", r.Stdout);
    }

    [Fact]
    public void Test_resolves_examples_against_the_rule_files_repository()
    {
        using var t = new TempDir();
        Directory.CreateDirectory(Path.Combine(t.Path, "repo", ".git"));
        t.File("repo/bin/legacy.sys", File.ReadAllBytes(RepoPaths.Fixture("x64", "pool_legacy.sys")));
        WriteRule(t, "repo/rules/acme.yaml", CustomRules.Make("ACME001", "LegacyPool", "import: ntoskrnl!ExAllocatePool",
            extra: "examples:\n  match: [bin/legacy.sys]\n"));
        using var elsewhere = new TempDir();
        var r = CliRunner.Run(elsewhere.Path, "rules", "test", Path.Combine(t.Path, "repo", "rules"));
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
    }

    [Fact]
    public void Test_with_a_broken_rule_is_exit_2()
    {
        using var t = new TempDir();
        var rule = WriteRule(t, "bad.yaml", "id: ACME001\n");
        var r = Run("rules", "test", rule);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("bad.yaml:", r.Stderr);
    }
}
