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
    [InlineData("Ddk", 0x206B6444u, false)]
    [InlineData("Ddk ", 0x206B6444u, true)]
    [InlineData(@"\x00*", 0u, true)]
    [InlineData("*", 0u, true)]
    public void Patterns_match_memory_order_bytes(string pattern, uint value, bool matches)
    {
        Assert.True(PoolTag.TryParsePattern(pattern, out var p, out _));
        Assert.Equal(matches, p.Matches(value));
    }

    [Property]
    public bool A_formatted_tag_is_a_pattern_matching_exactly_itself(uint value, uint other)
    {
        PoolTag.TryParsePattern(PoolTag.Format(value).Replace("*", @"\*").Replace("?", @"\?"), out var p, out _);
        return p.Matches(value) && (other == value || !p.Matches(other));
    }
}
