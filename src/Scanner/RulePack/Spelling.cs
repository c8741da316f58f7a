namespace DriverAudit.Scanner.RulePack;

/// <summary>Near-miss suggestions for mistyped commands, options and rule ids ("did you mean --format?").</summary>
internal static class Spelling
{
    /// <summary>The candidate closest to <paramref name="text"/> (case-insensitive edit distance), if close enough to be a typo.</summary>
    public static string? Closest(string text, IEnumerable<string> candidates)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var c in candidates)
        {
            var d = Distance(text.ToLowerInvariant(), c.ToLowerInvariant());
            if (d < bestDistance || (d == bestDistance && string.CompareOrdinal(c, best) < 0))
            {
                best = c;
                bestDistance = d;
            }
        }
        // A third of the word, at least one edit: "--fromat" → "--format", "DA1030" → "DA1003"; never a wild guess.
        return best is not null && bestDistance <= Math.Max(1, text.Length / 3) ? best : null;
    }

    /// <summary>The <paramref name="count"/> candidates nearest to <paramref name="text"/> (edit distance, then ordinal), however far.</summary>
    public static IReadOnlyList<string> Nearest(string text, IEnumerable<string> candidates, int count) =>
        [.. candidates.Distinct(StringComparer.Ordinal)
            .Select(c => (c, d: Distance(text.ToLowerInvariant(), c.ToLowerInvariant())))
            .OrderBy(x => x.d).ThenBy(x => x.c, StringComparer.Ordinal).Take(count).Select(x => x.c)];

    /// <summary>Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions.</summary>
    public static int Distance(string a, string b)
    {
        if (a.Length > 64 || b.Length > 64) return Math.Max(a.Length, b.Length); // not a typo; no quadratic cost
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        }
        return d[a.Length, b.Length];
    }
}
