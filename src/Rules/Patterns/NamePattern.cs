using System.Text.RegularExpressions;

namespace DriverAudit.Rules.Patterns;

/// <summary>
/// A name test written as text: exact (<c>ExAllocatePool</c>), wildcard (<c>ExAllocatePool*</c>, <c>Zw?ead*</c>)
/// or regex (<c>/^Zw(Read|Write)VirtualMemory$/i</c>). Regexes run on the non-backtracking engine, so no
/// pattern can run away on hostile names. Immutable and thread-safe.
/// </summary>
internal abstract class NamePattern
{
    /// <summary>Longer regexes are refused; the non-backtracking engine's construction cost grows with size.</summary>
    public const int MaxRegexLength = 512;

    public abstract bool IsMatch(ReadOnlySpan<char> text);

    /// <summary>The pattern as written, for diagnostics.</summary>
    public abstract string Text { get; }

    /// <summary>The exact, case-sensitive name this pattern accepts; null for wildcards, regexes and ignore-case patterns (used by the import index).</summary>
    public virtual string? ExactName => null;

    public static bool LooksLikeRegex(string text) => text.StartsWith('/');

    /// <summary>Parses <paramref name="text"/>; on failure returns null and sets <paramref name="error"/>.</summary>
    /// <param name="allowWhitespace">Paths, strings and version values may contain spaces; symbol names never do.</param>
    public static NamePattern? Parse(string text, bool ignoreCase, out string? error, bool allowWhitespace = false)
    {
        error = null;
        if (text.Length == 0) { error = "the pattern is empty"; return null; }
        if (LooksLikeRegex(text)) return ParseRegex(text, ignoreCase, out error);
        if (!allowWhitespace && text.AsSpan().IndexOfAny(" \t\r\n") >= 0) { error = $"'{text}' contains whitespace; names never do"; return null; }
        return Wildcard.HasWildcards(text) ? new WildcardPattern(text, ignoreCase) : new ExactPattern(text, ignoreCase);
    }

    private static NamePattern? ParseRegex(string text, bool ignoreCase, out string? error)
    {
        error = null;
        int close = text.LastIndexOf('/');
        if (close == 0) { error = $"regex '{text}' has no closing '/' (write /pattern/flags)"; return null; }
        string body = text[1..close];
        if (body.Length == 0) { error = "the regex is empty"; return null; }
        if (body.Length > MaxRegexLength) { error = $"the regex is longer than {MaxRegexLength} characters"; return null; }

        var options = RegexOptions.NonBacktracking | RegexOptions.CultureInvariant;
        if (ignoreCase) options |= RegexOptions.IgnoreCase;
        foreach (char flag in text.AsSpan(close + 1))
        {
            var bit = flag switch
            {
                'i' => RegexOptions.IgnoreCase,
                'm' => RegexOptions.Multiline,
                's' => RegexOptions.Singleline,
                'x' => RegexOptions.IgnorePatternWhitespace,
                _ => RegexOptions.None,
            };
            if (bit == RegexOptions.None) { error = $"unknown regex flag '{flag}' (allowed: i, m, s, x)"; return null; }
            options |= bit;
        }
        try
        {
            // Syntax is checked now with the interpreter's parse (microseconds). The non-backtracking automaton
            // costs tens of milliseconds cold, so it is built on first use — unless the pattern has a construct
            // that engine may refuse (lookarounds, atomic groups, conditionals, backreferences), which must fail
            // at load with its position, not in the middle of a scan.
            _ = new Regex(body, options & ~RegexOptions.NonBacktracking);
            if (MayNeedBacktracking(body)) _ = new Regex(body, options);
            var final = options;
            return new RegexPattern(text, new Lazy<Regex>(() => new Regex(body, final)));
        }
        catch (ArgumentException ex)
        {
            error = $"invalid regex '{body}': {ex.Message}";
        }
        catch (NotSupportedException ex)
        {
            // Backreferences, lookarounds and atomic groups cannot run without backtracking.
            error = $"regex '{body}' uses a construct the non-backtracking engine refuses: {ex.Message}";
        }
        return null;
    }

    private sealed class ExactPattern(string text, bool ignoreCase) : NamePattern
    {
        private readonly StringComparison _comparison = ignoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        public override string Text => text;
        public override bool IsMatch(ReadOnlySpan<char> value) => value.Equals(text, _comparison);
        public override string? ExactName => ignoreCase ? null : text;
    }

    private sealed class WildcardPattern(string text, bool ignoreCase) : NamePattern
    {
        public override string Text => text;
        public override bool IsMatch(ReadOnlySpan<char> value) => Wildcard.IsMatch(text, value, ignoreCase);
    }

    /// <summary>Conservative: true for anything that could be a construct the non-backtracking engine refuses.</summary>
    private static bool MayNeedBacktracking(string body) =>
        body.Contains("(?", StringComparison.Ordinal) || Regex.IsMatch(body, @"\\[1-9k]", RegexOptions.CultureInvariant);

    private sealed class RegexPattern(string text, Lazy<Regex> regex) : NamePattern
    {
        public override string Text => text;
        public override bool IsMatch(ReadOnlySpan<char> value) => regex.Value.IsMatch(value);
    }
}
