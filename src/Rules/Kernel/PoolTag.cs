using System.Text;

namespace DriverAudit.Rules.Kernel;

/// <summary>
/// Pool tags as PoolMon and <c>!poolused</c> print them: the four bytes of the 32-bit value in memory order
/// (little-endian, so the C literal <c>'tseT'</c> shows as <c>Test</c>), trailing spaces kept, bytes outside
/// printable ASCII (and the backslash) escaped as <c>\xNN</c>. The one spelling of a tag: findings, the tags
/// command and rule messages all use <see cref="Format"/>.
/// </summary>
public static class PoolTag
{
    public static string Format(uint tag)
    {
        var sb = new StringBuilder(4);
        for (var k = 0; k < 4; k++)
        {
            var b = (byte)(tag >> (8 * k));
            if (b is >= 0x20 and < 0x7F && b != (byte)'\\') sb.Append((char)b);
            else sb.Append($"\\x{b:X2}");
        }
        return sb.ToString();
    }

    /// <summary>"Ddk " → 0x206B6444: four characters in memory order (as !poolused prints them) to the tag value.</summary>
    public static uint FromText(string text)
    {
        if (text.Length != 4) throw new ArgumentException("a tag is 4 characters", nameof(text));
        uint value = 0;
        for (var i = 3; i >= 0; i--) value = (value << 8) | (byte)text[i];
        return value;
    }

    /// <summary>
    /// The tag the kernel charges for the untagged allocators (ExAllocatePool, ExAllocatePoolWithQuota):
    /// <c>'enoN'</c>, shown as <c>None</c> by <c>!poolused</c> and PoolMon.
    /// </summary>
    public const uint None = 0x656E6F4E;

    /// <summary>
    /// A tag pattern as people type it: characters match themselves (case-sensitive, as the kernel compares tags,
    /// unless <paramref name="ignoreCase"/>), <c>?</c> one byte, <c>*</c> any run of bytes, <c>\xNN</c> one byte by
    /// value, <c>\\</c>, <c>\*</c>, <c>\?</c> the character. Trailing spaces are optional on both sides:
    /// <c>Ddk</c>, <c>Ddk </c> and <c>Ddk   </c> (pasted from a table) all match the tag <c>Ddk </c>.
    /// </summary>
    public static bool TryParsePattern(string pattern, out TagPattern result, out string? error) =>
        TryParsePattern(pattern, ignoreCase: false, out result, out error);

    public static bool TryParsePattern(string pattern, bool ignoreCase, out TagPattern result, out string? error)
    {
        result = default;
        var tokens = new List<int>(); // 0..255 byte, -1 '?', -2 '*'
        for (var k = 0; k < pattern.Length; k++)
        {
            var c = pattern[k];
            if (c == '*') tokens.Add(-2);
            else if (c == '?') tokens.Add(-1);
            else if (c == '\\')
            {
                if (k + 1 < pattern.Length && pattern[k + 1] is '\\' or '*' or '?') { tokens.Add(pattern[++k]); continue; }
                if (k + 3 < pattern.Length && (pattern[k + 1] == 'x' || pattern[k + 1] == 'X')
                    && byte.TryParse(pattern.AsSpan(k + 2, 2), System.Globalization.NumberStyles.HexNumber, null, out var b))
                {
                    tokens.Add(b);
                    k += 3;
                    continue;
                }
                error = $"bad escape in tag pattern '{pattern}' (use \\xNN, \\\\, \\* or \\?)";
                return false;
            }
            else if (c > 0xFF) { error = $"tag pattern '{pattern}' has a character outside Latin-1"; return false; }
            else tokens.Add(c);
        }
        // Trailing spaces are padding: drop them from the pattern, and match against the tag with and without its own.
        var n = tokens.Count;
        while (n > 0 && tokens[n - 1] == ' ') n--;
        if (tokens.Count == 0) { error = "an empty tag pattern matches nothing"; return false; }
        if (n == 0) n = tokens.Count; // only spaces: the all-space tag, taken literally
        var bytes = 0;
        for (var k = 0; k < n; k++) if (tokens[k] != -2) bytes++;
        if (bytes > 4) { error = $"tag pattern '{pattern}' is longer than the 4 bytes of a pool tag"; return false; }
        if (ignoreCase)
            for (var k = 0; k < n; k++) tokens[k] = FoldCase(tokens[k]);
        result = new TagPattern(pattern, [.. tokens.GetRange(0, n)], ignoreCase);
        error = null;
        return true;
    }

    /// <summary>ASCII case folding (tags are bytes; nothing else has a case the kernel would know).</summary>
    internal static int FoldCase(int b) => b is >= 'A' and <= 'Z' ? b + 32 : b;
}

/// <summary>A parsed tag pattern (see <see cref="PoolTag.TryParsePattern(string, bool, out TagPattern, out string?)"/>).</summary>
public readonly record struct TagPattern(string Text, int[] Tokens, bool IgnoreCase = false)
{
    public bool Matches(uint tag)
    {
        Span<byte> bytes = stackalloc byte[4];
        for (var k = 0; k < 4; k++)
        {
            var b = (byte)(tag >> (8 * k));
            bytes[k] = IgnoreCase ? (byte)PoolTag.FoldCase(b) : b;
        }
        var trimmed = 4;
        while (trimmed > 0 && bytes[trimmed - 1] == (byte)' ') trimmed--;
        return Match(Tokens, 0, bytes, 0) || (trimmed < 4 && Match(Tokens, 0, bytes[..trimmed], 0));
    }

    private static bool Match(int[] p, int pi, ReadOnlySpan<byte> s, int si)
    {
        while (pi < p.Length)
        {
            if (p[pi] == -2)
            {
                for (var k = si; k <= s.Length; k++)
                    if (Match(p, pi + 1, s, k)) return true;
                return false;
            }
            if (si >= s.Length) return false;
            if (p[pi] != -1 && p[pi] != s[si]) return false;
            pi++;
            si++;
        }
        return si == s.Length;
    }
}
