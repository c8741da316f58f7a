using System.Text.RegularExpressions;
using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Patterns;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace DriverAudit.Rules.Tests;

public sealed record GlobCase(string Pattern, string Text);
public sealed record YamlText(string Value);

public static class RuleArbitraries
{
    /// <summary>Small alphabets so that matches and near-misses are both common.</summary>
    public static Arbitrary<GlobCase> Globs()
    {
        var pattern = Gen.Elements('a', 'b', 'A', '*', '?', '.').ArrayOf().Select(cs => new string(cs));
        var text = Gen.Elements('a', 'b', 'A', 'B', '.', '*').ArrayOf().Select(cs => new string(cs));
        return Gen.Zip(pattern, text).Select(t => new GlobCase(t.Item1, t.Item2)).ToArbitrary();
    }

    /// <summary>Rule-shaped YAML with random mutations: fragments of real syntax spliced at random.</summary>
    public static Arbitrary<YamlText> Yaml()
    {
        string[] pieces =
        [
            "id: ", "DA1001", "name: ", "X", "match:", "\n", "  ", "- ", "{", "}", "[", "]", ": ", ",", "&a ", "*a", "!!str ",
            "!x ", "\"", "'", "#", "|", ">", "---\n", "...", "%YAML 1.2\n", "? ", "import: ", "all:", "not: ", "/re[/", "\t", "\\",
            "{{", "rule: DA1001", "count: {of: ", "at-least: {n: 2, of: [", "level: ", "error", "message: ", "{artifact}.", "\u00e9", "\0",
        ];
        var gen = Gen.Elements(pieces).ArrayOf().Select(ps => new YamlText(string.Concat(ps)));
        return gen.ToArbitrary();
    }
}

[Properties(Arbitrary = [typeof(RuleArbitraries)], MaxTest = 500)]
public class PropertyTests
{
    [Property]
    public bool Wildcard_agrees_with_the_equivalent_regex(GlobCase c)
    {
        var regex = "^" + string.Concat(c.Pattern.Select(ch => ch switch { '*' => ".*", '?' => ".", _ => Regex.Escape(ch.ToString()) })) + "$";
        bool expected = Regex.IsMatch(c.Text, regex, RegexOptions.Singleline | RegexOptions.CultureInvariant);
        return Wildcard.IsMatch(c.Pattern, c.Text, ignoreCase: false) == expected;
    }

    [Property]
    public bool Wildcard_ignoring_case_agrees_with_the_equivalent_regex(GlobCase c)
    {
        var regex = "^" + string.Concat(c.Pattern.Select(ch => ch switch { '*' => ".*", '?' => ".", _ => Regex.Escape(ch.ToString()) })) + "$";
        bool expected = Regex.IsMatch(c.Text, regex, RegexOptions.Singleline | RegexOptions.CultureInvariant | RegexOptions.IgnoreCase);
        return Wildcard.IsMatch(c.Pattern, c.Text, ignoreCase: true) == expected;
    }

    [Property]
    public bool Arbitrary_yaml_loads_or_fails_with_positioned_errors(YamlText text) => LoadsOrFailsCleanly(text.Value);

    [Property]
    public bool Arbitrary_strings_load_or_fail_with_positioned_errors(string text) => LoadsOrFailsCleanly(text ?? "");

    private static bool LoadsOrFailsCleanly(string text)
    {
        try
        {
            RuleSet.Load([new RuleSource("fuzz.yaml", text)]);
            return true;
        }
        catch (RuleLoadException ex)
        {
            return ex.Errors.Count > 0 && ex.Errors.All(e => e.File == "fuzz.yaml" && e.Line >= 1 && e.Column >= 1 && e.Message.Length > 0);
        }
    }

    [Fact]
    public void Yaml_scanner_failure_found_by_the_fuzzer_is_a_load_error()
    {
        // YamlDotNet 16.3 throws InvalidOperationException (not YamlException) from ScanPlainScalar here.
        const string text = "X[count: {of: {artifact}.%YAML 1.2\nall:message: /re[/{\t]|name: XDA1001? ---\nid: \\}name: id: {artifact}.{{ }";
        var ex = Assert.Throws<RuleLoadException>(() => RuleSet.Load([new RuleSource("fuzz.yaml", text)]));
        Assert.Contains(ex.Errors, e => e.Message.StartsWith("invalid YAML", StringComparison.Ordinal));
    }

    [Fact]
    public void Mutated_real_rules_never_throw_anything_else()
    {
        // Every prefix of a valid rule: truncation hits every parser state once.
        var valid = RuleText.Make("all: [{import: \"ntoskrnl!ExAllocatePool*\"}, {not: {characteristic: signed}}]", extra: "tags: [pool]\nexamples: {match: [a.sys]}");
        for (int i = 0; i <= valid.Length; i++)
            Assert.True(LoadsOrFailsCleanly(valid[..i]), valid[..i]);
    }
}
