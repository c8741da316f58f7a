using System.Globalization;
using DriverAudit.Scanner.Code;

namespace DriverAudit.Scanner.PoolUsage;

/// <summary>One tag row of a pool usage listing: outstanding allocations and bytes per pool, as the tool printed them.</summary>
/// <param name="Tag">The tag's 32-bit value (memory order: the first character is the low byte).</param>
/// <param name="Text">The tag as printed, padded to four characters with spaces.</param>
/// <param name="Description">The description column (<c>!poolused</c> with pooltag.txt, PoolMon's driver column), or null.</param>
/// <param name="Line">1-based line of the row (PoolMon: of the tag's first row).</param>
internal sealed record PoolUsageRow(uint Tag, string Text, long NonPagedAllocs, long NonPagedBytes, long PagedAllocs, long PagedBytes, string? Description, int Line);

/// <summary>A parsed listing: rows in the file's order, the <c>TOTAL</c> line when there is one.</summary>
/// <param name="Format">"poolused" (WinDbg <c>!poolused</c>) or "poolmon" (<c>poolmon -n</c> snapshot).</param>
internal sealed record PoolUsageListing(string Format, IReadOnlyList<PoolUsageRow> Rows, PoolUsageRow? Total);

/// <summary>
/// Reads the text of WinDbg's <c>!poolused</c> (any sort flag, with or without the description column, session
/// pool too) and PoolMon snapshot logs (<c>poolmon -n FILE</c>). Lines that are not tag rows (prompts, headers,
/// "Sorting by ...", progress dots, the memory summary) are skipped. A tag is the four characters the tool
/// printed, trailing spaces included; a row whose trailing spaces were lost in a copy is padded back.
/// </summary>
internal static class PoolUsageParser
{
    /// <summary>Listings bigger than this are refused: a real one has a few thousand tags (~300 KiB).</summary>
    public const long MaxBytes = 64L << 20;

    public static PoolUsageListing Parse(TextReader reader)
    {
        var lines = new List<string>();
        for (var line = reader.ReadLine(); line is not null; line = reader.ReadLine()) lines.Add(line);
        return IsPoolMon(lines) ? ParsePoolMon(lines) : ParsePoolUsed(lines);
    }

    public static PoolUsageListing Parse(string text) => Parse(new StringReader(text));

    // PoolMon's column header: " Tag  Type     Allocs            Frees            Diff   Bytes       Per Alloc".
    private static bool IsPoolMon(List<string> lines)
    {
        foreach (var l in lines)
        {
            var t = l.Trim();
            if (t.StartsWith("Tag", StringComparison.Ordinal) && t.Contains("Type", StringComparison.Ordinal) && t.Contains("Frees", StringComparison.Ordinal))
                return true;
        }
        return false;
    }

    // " Tag     Allocs         Used     Allocs         Used" then rows
    // " None    246479     50503264          0            0\tcall to ExAllocatePool".
    private static PoolUsageListing ParsePoolUsed(List<string> lines)
    {
        var rows = new List<PoolUsageRow>();
        PoolUsageRow? total = null;
        Span<long> numbers = stackalloc long[4];
        Span<int> lengths = stackalloc int[2];
        for (var n = 0; n < lines.Count; n++)
        {
            var s = Body(lines[n]);
            if (IsTotal(s))
            {
                if (Numbers(s[5..], numbers, out _)) total = new PoolUsageRow(0, "TOTAL", numbers[0], numbers[1], numbers[2], numbers[3], null, n + 1);
                continue;
            }
            var candidates = TagLengths(s, lengths);
            for (var c = 0; c < candidates; c++)
            {
                var tagText = s[..lengths[c]].ToString().PadRight(4);
                if (!Numbers(s[lengths[c]..], numbers, out var at)) continue;
                var description = s[lengths[c]..][at..].Trim();
                rows.Add(new PoolUsageRow(TagValue(tagText), tagText, numbers[0], numbers[1], numbers[2], numbers[3],
                    description.Length == 0 ? null : description.ToString(), n + 1));
                break;
            }
        }
        return new PoolUsageListing("poolused", rows, total);
    }

    // " Ntfx Nonp       1523 (   0)      1021 (   0)      502    94560 (     0)    188\t[ntfs.sys - ...]"
    // One row per (tag, pool); both rows of a tag become one PoolUsageRow at the first one's place.
    /// <summary>Exactly the next <paramref name="numbers"/>.Length decimal tokens; <paramref name="at"/> is where the rest starts.</summary>
    private static bool Numbers(ReadOnlySpan<char> s, Span<long> numbers, out int at)
    {
        at = 0;
        for (var k = 0; k < numbers.Length; k++)
        {
            if (NextNumber(s, ref at) is not { } v) return false;
            numbers[k] = v;
        }
        // Four more numbers mean the verbose layout (allocs, frees, diff, used per pool): not a summary row.
        // Fewer is a description that starts with digits ("1394 bus driver").
        var probe = at;
        for (var k = 0; k < 4; k++)
            if (NextNumber(s, ref probe) is null) return true;
        return false;
    }

    private static PoolUsageListing ParsePoolMon(List<string> lines)
    {
        var order = new List<uint>();
        var byTag = new Dictionary<uint, PoolUsageRow>();
        Span<long> numbers = stackalloc long[5];
        Span<int> lengths = stackalloc int[2];
        for (var n = 0; n < lines.Count; n++)
        {
            var s = Body(lines[n]);
            var candidates = TagLengths(s, lengths);
            var tagText = "";
            ReadOnlySpan<char> rest = default;
            bool paged = false, found = false;
            var at = 0;
            for (var c = 0; c < candidates && !found; c++)
            {
                rest = s[lengths[c]..].TrimStart();
                if (rest.StartsWith("Nonp", StringComparison.Ordinal)) paged = false;
                else if (rest.StartsWith("Paged", StringComparison.Ordinal)) paged = true;
                else continue;
                at = rest.IndexOf(' ');
                if (at < 0) continue;
                var count = 0;
                // Allocs ( delta ) Frees ( delta ) Diff Bytes ( delta ) PerAlloc: the deltas are skipped.
                while (count < 5)
                {
                    SkipDelta(rest, ref at);
                    if (NextNumber(rest, ref at) is not { } v) break;
                    numbers[count++] = v;
                }
                if (count < 5) continue;
                tagText = s[..lengths[c]].ToString().PadRight(4);
                found = true;
            }
            if (!found) continue;
            var description = rest[at..].Trim();
            var tag = TagValue(tagText);
            var diff = numbers[2];
            var bytes = numbers[3];
            if (!byTag.TryGetValue(tag, out var row))
            {
                order.Add(tag);
                row = new PoolUsageRow(tag, tagText, 0, 0, 0, 0, null, n + 1);
            }
            row = paged ? row with { PagedAllocs = diff, PagedBytes = bytes } : row with { NonPagedAllocs = diff, NonPagedBytes = bytes };
            if (row.Description is null && description.Length > 0) row = row with { Description = description.ToString() };
            byTag[tag] = row;
        }
        return new PoolUsageListing("poolmon", [.. order.Select(t => byTag[t])], null);
    }

    /// <summary>
    /// Where the tag of a row may end: after four characters (the tool's own layout, which keeps a tag's inner and
    /// trailing spaces: <c>Io  </c>, <c>Ddk </c>), or after a shorter first word when a copy squeezed the padding.
    /// Lengths to try in order; empty for a line that cannot be a row.
    /// </summary>
    private static int TagLengths(ReadOnlySpan<char> s, Span<int> result)
    {
        var n = 0;
        if (s.Length == 0 || char.IsWhiteSpace(s[0])) return 0;
        foreach (var c in s[..Math.Min(4, s.Length)])
            if (c > 0xFF || (char.IsControl(c) && c != '\t')) return 0;
        if (s.Length > 4 && char.IsWhiteSpace(s[4]) && s[..4].IndexOf('\t') < 0) result[n++] = 4;
        var word = 0;
        while (word < s.Length && !char.IsWhiteSpace(s[word])) word++;
        if (word < 4 && (n == 0 || result[0] != word)) result[n++] = word;
        return n;
    }

    /// <summary>A line with its single leading space (both tools print one) and any carriage return removed.</summary>
    private static ReadOnlySpan<char> Body(string line)
    {
        var s = line.AsSpan().TrimEnd('\r');
        return s.Length > 0 && s[0] == ' ' ? s[1..] : s;
    }

    private static bool IsTotal(ReadOnlySpan<char> s) =>
        s.StartsWith("TOTAL", StringComparison.Ordinal) && s.Length > 5 && char.IsWhiteSpace(s[5]);

    /// <summary>The next whitespace-separated token as a non-negative decimal (digit grouping commas allowed), or null.</summary>
    private static long? NextNumber(ReadOnlySpan<char> s, ref int at)
    {
        var k = at;
        while (k < s.Length && char.IsWhiteSpace(s[k])) k++;
        var start = k;
        while (k < s.Length && !char.IsWhiteSpace(s[k])) k++;
        if (k == start) return null;
        var token = s[start..k];
        Span<char> digits = stackalloc char[Math.Min(token.Length, 32)];
        var d = 0;
        foreach (var c in token)
        {
            if (c == ',') continue;
            if (c is < '0' or > '9' || d == digits.Length) return null;
            digits[d++] = c;
        }
        if (d == 0 || !long.TryParse(digits[..d], NumberStyles.None, CultureInfo.InvariantCulture, out var v)) return null;
        at = k;
        return v;
    }

    // PoolMon prints "(   0)" after counters: the change since the last refresh.
    private static void SkipDelta(ReadOnlySpan<char> s, ref int at)
    {
        var k = at;
        while (k < s.Length && char.IsWhiteSpace(s[k])) k++;
        if (k >= s.Length || s[k] != '(') return;
        var close = s[k..].IndexOf(')');
        if (close >= 0) at = k + close + 1;
    }

    /// <summary>Memory order: the first printed character is the tag's low byte.</summary>
    public static uint TagValue(string text)
    {
        uint v = 0;
        for (var k = 3; k >= 0; k--) v = (v << 8) | (k < text.Length ? (byte)text[k] : (byte)' ');
        return v;
    }
}
