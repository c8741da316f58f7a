using DriverAudit.Rules.Kernel;
using DriverAudit.Scanner.Code;
using FsCheck.Xunit;
using Xunit;

namespace DriverAudit.Scanner.Tests.Code;

public class PoolTagTests
{
    [Theory]
    [InlineData(0x74736554u, "Test")]
    [InlineData(0x206B6444u, "Ddk ")]
    [InlineData(0u, @"\x00\x00\x00\x00")]
    [InlineData(0x5C410A41u, @"A\x0AA\x5C")]
    public void Formats_in_memory_order_with_escapes(uint value, string text) => Assert.Equal(text, PoolTag.Format(value));

    [Theory]
    [InlineData("Test", 0x74736554u, true)]
    [InlineData("test", 0x74736554u, false)]
    [InlineData("Te*", 0x74736554u, true)]
    [InlineData("T??t", 0x74736554u, true)]
    [InlineData("Ddk", 0x206B6444u, true)]    // trailing spaces are optional, as people type tags
    [InlineData("Ddk ", 0x206B6444u, true)]
    [InlineData("Ddk   ", 0x206B6444u, true)] // pasted from a table
    [InlineData("Ddk", 0x6B6B6444u, false)]   // 'Ddkk'
    [InlineData("Dd", 0x206B6444u, false)]
    [InlineData("Dd?", 0x206B6444u, true)]
    [InlineData("Dd??", 0x206B6444u, true)]
    [InlineData("Io", 0x20206F49u, true)]     // 'Io  '
    [InlineData("None", 0x656E6F4Eu, true)]
    [InlineData(@"\x00*", 0u, true)]
    [InlineData("*", 0u, true)]
    public void Patterns_match_memory_order_bytes(string pattern, uint value, bool matches)
    {
        Assert.True(PoolTag.TryParsePattern(pattern, out var p, out _));
        Assert.Equal(matches, p.Matches(value));
    }

    [Theory]
    [InlineData("ddk", 0x206B6444u, true)]
    [InlineData("NONE", 0x656E6F4Eu, true)]
    [InlineData("n?NE", 0x656E6F4Eu, true)]
    [InlineData("none", 0x656E6F4Fu, false)]
    public void Ignore_case_folds_ascii_letters(string pattern, uint value, bool matches)
    {
        Assert.True(PoolTag.TryParsePattern(pattern, ignoreCase: true, out var p, out _));
        Assert.Equal(matches, p.Matches(value));
        Assert.True(PoolTag.TryParsePattern(pattern, ignoreCase: false, out var exact, out _));
        Assert.False(exact.Matches(value) && pattern != PoolTag.Format(value).TrimEnd());
    }

    [Theory]
    [InlineData("Thread", "longer than the 4 bytes")]
    [InlineData("", "empty")]
    [InlineData(@"Ab\q", "bad escape")]
    public void Bad_patterns_say_why(string pattern, string reason)
    {
        Assert.False(PoolTag.TryParsePattern(pattern, out _, out var error));
        Assert.Contains(reason, error);
    }

    [Property]
    public bool A_formatted_tag_is_a_pattern_matching_exactly_itself(uint value, uint other)
    {
        PoolTag.TryParsePattern(PoolTag.Format(value).Replace("*", @"\*").Replace("?", @"\?"), out var p, out _);
        return p.Matches(value) && (other == value || !p.Matches(other));
    }
}
