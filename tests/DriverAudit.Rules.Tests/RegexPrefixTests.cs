using System.Text.RegularExpressions;
using DriverAudit.Rules.Patterns;

namespace DriverAudit.Rules.Tests;

/// <summary>The anchored-literal shortcut of regex patterns: the prefix it derives, and the same answers as the regex.</summary>
public class RegexPrefixTests
{
    private const RegexOptions Options = RegexOptions.NonBacktracking | RegexOptions.CultureInvariant;

    [Theory]
    [InlineData(@"^D:[A-Z]*\(", "D:")]
    [InlineData(@"^D:[A-Z]*(\([^)]*\))*\(A;[^;()]*;[^;()]+;[^;()]*;[^;()]*;(WD|BU|S-1-1-0|S-1-5-32-545)\)", "D:")]
    [InlineData(@"^\\Device\\PhysicalMemory$", @"\Device\PhysicalMemory")]
    [InlineData(@"^abc*", "ab")]
    [InlineData(@"^abc?d", "ab")]
    [InlineData(@"^ab{2}", "a")]
    [InlineData(@"^ab+", "ab")]
    [InlineData(@"^a\d", "a")]
    [InlineData(@"^ab|cd", null)]
    [InlineData(@"^(ab|cd)", null)]
    [InlineData(@"^[|]ab", null)]
    [InlineData(@"D:", null)]
    [InlineData(@"^.x", null)]
    public void Prefix_of_a_case_sensitive_anchored_regex(string body, string? prefix) =>
        Assert.Equal(prefix, NamePattern.AnchoredPrefix(body, Options));

    [Theory]
    [InlineData(RegexOptions.IgnoreCase)]
    [InlineData(RegexOptions.Multiline)]
    [InlineData(RegexOptions.IgnorePatternWhitespace)]
    public void No_prefix_under_flags_that_change_what_a_literal_or_anchor_means(RegexOptions flag) =>
        Assert.Null(NamePattern.AnchoredPrefix("^D:x", Options | flag));

    [Fact]
    public void Patterns_with_a_prefix_answer_as_the_regex_does()
    {
        string[] patterns = [@"/^D:[A-Z]*\(/", @"/^abc*/", @"/^ab{2}c/", @"/^a\.b+/", @"/^ab|cd/", @"/^(ab|cd)e/", @"/^x?y/"];
        string[] values = ["", "D:", "D:(", "D:P(A;;GA;;;WD)", "d:(", "ab", "abc", "abbc", "a.b", "a.bbb", "cd", "xcd", "abe", "cde", "y", "xy", "xxy", "aD:("];
        foreach (var p in patterns)
        {
            var pattern = NamePattern.Parse(p, ignoreCase: false, out var error);
            Assert.True(pattern is not null, error);
            var regex = new Regex(p[1..^1], Options);
            foreach (var v in values) Assert.True(regex.IsMatch(v) == pattern.IsMatch(v), $"{p} on '{v}'");
        }
    }
}
