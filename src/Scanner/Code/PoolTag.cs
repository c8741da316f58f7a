using System.Text;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// Pool tags as PoolMon and <c>!poolused</c> print them: the four bytes of the 32-bit value in memory order
/// (little-endian, so the C literal <c>'tseT'</c> shows as <c>Test</c>), trailing spaces kept, bytes outside
/// printable ASCII (and the backslash) escaped as <c>\xNN</c>.
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

    /// <summary>
    /// A tag pattern: characters match themselves (case-sensitive, as the kernel compares tags), <c>?</c> one byte,
    /// <c>*</c> any run of bytes, <c>\xNN</c> one byte by value, <c>\\</c>, <c>\*</c>, <c>\?</c> the character.
    /// Patterns shorter than four bytes are not padded: <c>Ddk</c> does not match <c>Ddk </c>, <c>Ddk*</c> does.
    /// </summary>
    public static bool TryParsePattern(string pattern, out TagPattern result, out string? error)
    {
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
                result = default; error = $"bad escape in tag pattern '{pattern}' (use \\xNN, \\\\, \\* or \\?)"; return false;
            }
            else if (c > 0xFF) { result = default; error = $"tag pattern '{pattern}' has a character outside Latin-1"; return false; }
            else tokens.Add(c);
        }
        result = new TagPattern(pattern, [.. tokens]);
        error = null;
        return true;
    }
}

/// <summary>A parsed tag pattern (see <see cref="PoolTag.TryParsePattern"/>).</summary>
public readonly record struct TagPattern(string Text, int[] Tokens)
{
    public bool Matches(uint tag)
    {
        Span<byte> bytes = stackalloc byte[4];
        for (var k = 0; k < 4; k++) bytes[k] = (byte)(tag >> (8 * k));
        return Match(Tokens, 0, bytes, 0);
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
