namespace DriverAudit.Rules.Patterns;

/// <summary>
/// A case-insensitive text test built from one or more patterns, each optionally negated with a leading
/// <c>!</c> (used by <c>module</c>, <c>signature</c> and <c>version-info</c>). Positive patterns are
/// alternatives; negated ones are exclusions: a value matches when it matches some positive pattern (or
/// there is none) and no negated one. So <c>["!A*", "!B*"]</c> means "neither A* nor B*".
/// </summary>
internal sealed class FilterPattern
{
    private readonly NamePattern[] _include;
    private readonly NamePattern[] _exclude;

    private FilterPattern(NamePattern[] include, NamePattern[] exclude)
    {
        _include = include;
        _exclude = exclude;
    }

    public bool IsMatch(ReadOnlySpan<char> value)
    {
        foreach (var p in _exclude)
            if (p.IsMatch(value)) return false;
        if (_include.Length == 0) return true;
        foreach (var p in _include)
            if (p.IsMatch(value)) return true;
        return false;
    }

    /// <summary>Parses each text; on failure returns null and the error of the first bad pattern.</summary>
    public static FilterPattern? Parse(IEnumerable<string> texts, out string? error)
    {
        List<NamePattern> include = [], exclude = [];
        error = null;
        foreach (var text in texts)
        {
            bool negated = text.StartsWith('!');
            var body = negated ? text[1..] : text;
            var pattern = NamePattern.Parse(body, ignoreCase: true, out error, allowWhitespace: true);
            if (pattern is null) return null;
            (negated ? exclude : include).Add(pattern);
        }
        return new FilterPattern([.. include], [.. exclude]);
    }
}
