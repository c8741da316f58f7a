using System.Text;
using System.Text.Json;
using Xunit;

namespace DriverAudit.Scanner.Tests.Cli;

/// <summary>
/// <c>rules show|validate|test --format json</c>: one JSON document with the shape the README documents, and the
/// same exit codes as text.
/// </summary>
public sealed class RulesJsonTests
{
    private static CliRunner.Outcome Run(params string[] args) => CliRunner.Run(RepoPaths.Root, args);

    private static JsonElement Json(CliRunner.Outcome r) => JsonDocument.Parse(r.Stdout).RootElement;

    private static string[] Keys(JsonElement e) => [.. e.EnumerateObject().Select(p => p.Name)];

    private static string[] Strings(JsonElement e) => [.. e.EnumerateArray().Select(x => x.GetString()!)];

    [Fact]
    public void Show_as_json_carries_what_the_text_shows()
    {
        var r = Run("rules", "show", "da1001", "--format", "json");
        Assert.Equal(0, r.ExitCode);
        var rule = Json(r);
        Assert.Equal(["id", "name", "level", "precision", "security-severity", "title", "source", "tags", "cwe", "report", "message",
            "documentation", "references", "examples", "description", "help", "match"], Keys(rule));
        Assert.Equal("DA1001", rule.GetProperty("id").GetString());
        Assert.Equal("UntaggedPoolAllocation", rule.GetProperty("name").GetString());
        Assert.Equal(JsonValueKind.Null, rule.GetProperty("security-severity").ValueKind);
        Assert.All(rule.GetProperty("cwe").EnumerateArray(), c => Assert.Equal(JsonValueKind.Number, c.ValueKind));
        Assert.Contains(rule.GetProperty("report").GetString(), new[] { "per-image", "per-anchor" });
        Assert.Equal(["match", "no-match"], Keys(rule.GetProperty("examples")));
        Assert.Contains("tests/fixtures/bin/x64/pool_legacy.sys", Strings(rule.GetProperty("examples").GetProperty("match")));
        // The same texts as `rules show` prints: description, help and the match tree as written.
        var text = Run("rules", "show", "DA1001").Stdout;
        Assert.Contains(rule.GetProperty("help").GetString()!, text, StringComparison.Ordinal);
        Assert.Contains(rule.GetProperty("match").GetString()!, text, StringComparison.Ordinal);
        Assert.Contains(rule.GetProperty("message").GetString()!, text, StringComparison.Ordinal);
    }

    [Fact]
    public void Show_of_an_unknown_rule_is_exit_2_with_nothing_on_stdout()
    {
        var r = Run("rules", "show", "NOPE", "--format", "json");
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void Validate_as_json_lists_the_rules_checked()
    {
        using var t = new TempDir();
        var file = t.File("acme.yaml", Encoding.UTF8.GetBytes(CustomRules.Make("ACME001", "One", "import: ntoskrnl!ExAllocatePool")));
        var r = Run("rules", "validate", file, "--format", "json");
        Assert.Equal(0, r.ExitCode);
        var v = Json(r);
        Assert.Equal(["valid", "rules", "errors", "warnings"], Keys(v));
        Assert.True(v.GetProperty("valid").GetBoolean());
        var rule = Assert.Single(v.GetProperty("rules").EnumerateArray());
        Assert.Equal(("ACME001", "One", file), (rule.GetProperty("id").GetString(), rule.GetProperty("name").GetString(), rule.GetProperty("source").GetString()));
        Assert.Empty(v.GetProperty("errors").EnumerateArray());
    }

    [Fact]
    public void Validate_as_json_reports_every_error_with_its_position_and_exits_2()
    {
        using var t = new TempDir();
        t.File("bad/one.yaml", Encoding.UTF8.GetBytes(CustomRules.Make("ACME001", "One", "import: ntoskrnl!ExAllocatePool", level: "loud")));
        t.File("bad/two.yaml", Encoding.UTF8.GetBytes(CustomRules.Make("ACME002", "Two", "imports: ExAllocatePool")));
        var r = Run("rules", "validate", Path.Combine(t.Path, "bad"), "--format", "json");
        Assert.Equal(2, r.ExitCode);
        var v = Json(r);
        Assert.False(v.GetProperty("valid").GetBoolean());
        Assert.Empty(v.GetProperty("rules").EnumerateArray());
        var errors = v.GetProperty("errors").EnumerateArray()
            .Select(e => (Path.GetFileName(e.GetProperty("file").GetString()), e.GetProperty("line").GetInt32(), e.GetProperty("column").GetInt32())).ToList();
        Assert.Contains(("one.yaml", 4, 8), errors);
        Assert.Contains(("two.yaml", 10, 3), errors);
        Assert.Matches(@"one\.yaml:4:8: .*level", r.Stderr.Replace('\\', '/')); // people still read stderr
    }

    [Fact]
    public void Test_as_json_counts_and_names_failures()
    {
        using var t = new TempDir();
        t.File("r/good.yaml", Encoding.UTF8.GetBytes(CustomRules.Make("ACME001", "LegacyPool", "import: ntoskrnl!ExAllocatePool",
            extra: "examples:\n  match: [tests/fixtures/bin/x64/pool_legacy.sys]\n")));
        t.File("r/bad.yaml", Encoding.UTF8.GetBytes(CustomRules.Make("ACME002", "Wrong", "import: ntoskrnl!ExAllocatePool",
            extra: "examples:\n  match: [tests/fixtures/bin/x64/pool_modern.sys]\n")));
        t.File("r/none.yaml", Encoding.UTF8.GetBytes(CustomRules.Make("ACME003", "NoExamples", "import: ntoskrnl!ExAllocatePool")));
        var r = Run("rules", "test", Path.Combine(t.Path, "r"), "--format", "json");
        Assert.Equal(1, r.ExitCode);
        var v = Json(r);
        Assert.Equal(["rules", "examples", "passed", "failed", "failures", "without-examples", "errors"], Keys(v));
        Assert.Equal((3, 2, 1, 1), (v.GetProperty("rules").GetInt32(), v.GetProperty("examples").GetInt32(), v.GetProperty("passed").GetInt32(), v.GetProperty("failed").GetInt32()));
        var failure = Assert.Single(v.GetProperty("failures").EnumerateArray());
        Assert.Equal(("ACME002", "tests/fixtures/bin/x64/pool_modern.sys", "should match but does not"),
            (failure.GetProperty("id").GetString(), failure.GetProperty("example").GetString(), failure.GetProperty("problem").GetString()));
        Assert.Equal("ACME003", Assert.Single(v.GetProperty("without-examples").EnumerateArray()).GetProperty("id").GetString());
        Assert.Empty(v.GetProperty("errors").EnumerateArray());
    }

    [Fact]
    public void Test_as_json_with_a_broken_rule_reports_the_errors_and_exits_2()
    {
        using var t = new TempDir();
        var file = t.File("bad.yaml", Encoding.UTF8.GetBytes(CustomRules.Make("ACME001", "One", "imports: ExAllocatePool")));
        var r = Run("rules", "test", file, "--format", "json");
        Assert.Equal(2, r.ExitCode);
        var v = Json(r);
        Assert.Equal(0, v.GetProperty("rules").GetInt32());
        Assert.Equal(file, Assert.Single(v.GetProperty("errors").EnumerateArray()).GetProperty("file").GetString());
    }
}
