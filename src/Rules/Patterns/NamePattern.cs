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

    /// <summary>
    /// Regexes whose estimated automaton size (<see cref="EstimateSize"/>) is above this are built at load, so a
    /// pattern the non-backtracking engine refuses (it has a node limit: <c>/(a{100}){100}/</c> is short but
    /// huge) is a rule error with its position instead of an internal error on every input at scan time.
    /// Smaller ones cannot reach the engine's limit and are built on first use (building costs milliseconds).
    /// </summary>
    public const long EagerBuildSize = 1_000;

    /// <summary>The sum of <see cref="EstimateSize"/> over every regex of one rule set (memory and build time).</summary>
    public const long MaxTotalRegexSize = 200_000;

    /// <summary>
    /// Set by the rule loader for the duration of one load: the regex size used so far by the set. Thread-static
    /// because patterns are parsed deep inside the compiler, and a load runs on one thread.
    /// </summary>
    [ThreadStatic] internal static long? LoadBudgetUsed;

    public abstract bool IsMatch(ReadOnlySpan<char> text);

    /// <summary>The pattern as written, for diagnostics.</summary>
    public abstract string Text { get; }

    /// <summary>The exact, case-sensitive name this pattern accepts; null for wildcards, regexes and ignore-case patterns (used by the import index).</summary>
    public virtual string? ExactName => null;

    /// <summary>Literal text every match starts with, case-sensitive (a regex's anchored prefix); null when there is none.</summary>
    public virtual string? RequiredPrefix => null;

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
            // that engine may refuse (lookarounds, atomic groups, conditionals, backreferences) or may be over its
            // size limit, which must fail at load with its position, not in the middle of a scan.
            _ = new Regex(body, options & ~RegexOptions.NonBacktracking);
            var size = EstimateSize(body);
            if (LoadBudgetUsed is { } used)
            {
                if (used + size > MaxTotalRegexSize)
                {
                    error = $"the rules' regexes are too large together: this one (estimated size {size:N0}) brings the total past {MaxTotalRegexSize:N0}";
                    return null;
                }
                LoadBudgetUsed = used + size;
            }
            if (MayNeedBacktracking(body) || size > EagerBuildSize) _ = new Regex(body, options);
            var final = options;
            return new RegexPattern(text, new Lazy<Regex>(() => new Regex(body, final)), AnchoredPrefix(body, options));
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

    /// <summary>
    /// An upper estimate of the automaton's size: atoms counted once, bounded repetitions multiplying what they
    /// repeat (<c>a{1000}</c> is 1,000, <c>(a{100}){100}</c> 10,000), alternatives adding up. Saturates.
    /// </summary>
    internal static long EstimateSize(string body)
    {
        const long Cap = 1L << 40;
        var stack = new Stack<(long Done, long Branch)>();
        long done = 0, branch = 0, last = 0; // last: the size of the atom a quantifier would apply to
        for (var i = 0; i < body.Length; i++)
        {
            var c = body[i];
            switch (c)
            {
                case '\\':
                    i++;
                    if (i < body.Length && body[i] is 'p' or 'P' && i + 1 < body.Length && body[i + 1] == '{')
                        i = Math.Max(i, body.IndexOf('}', i) is var close && close > 0 ? close : body.Length);
                    last = 1; branch += 1;
                    break;
                case '[':
                    // A class is one atom, whatever it lists; skip to its closing bracket (a leading ']' is literal).
                    var j = i + 1;
                    if (j < body.Length && body[j] == '^') j++;
                    if (j < body.Length && body[j] == ']') j++;
                    while (j < body.Length && body[j] != ']') j += body[j] == '\\' ? 2 : 1;
                    i = Math.Min(j, body.Length);
                    last = 1; branch += 1;
                    break;
                case '(':
                    stack.Push((done, branch));
                    done = 0; branch = 0; last = 0;
                    break;
                case ')':
                    var group = Math.Min(Cap, done + branch + 1);
                    (done, branch) = stack.Count > 0 ? stack.Pop() : (0, 0);
                    branch = Math.Min(Cap, branch + group);
                    last = group;
                    break;
                case '|':
                    done = Math.Min(Cap, done + branch);
                    branch = 0; last = 0;
                    break;
                case '{':
                    var end = body.IndexOf('}', i);
                    if (end > i && TryRepeat(body.AsSpan(i + 1, end - i - 1), out var times))
                    {
                        // The atom is already counted once; add the other copies.
                        branch = Math.Min(Cap, branch + Math.Min(Cap, last * Math.Max(0, times - 1)));
                        last = Math.Min(Cap, last * times);
                        i = end;
                    }
                    else { last = 1; branch += 1; }
                    break;
                case '*' or '+' or '?':
                    break; // unbounded or optional: the automaton loops, it does not copy
                default:
                    last = 1; branch += 1;
                    break;
            }
        }
        while (stack.Count > 0) { var (d, b) = stack.Pop(); done += d; branch += b; }
        return Math.Min(Cap, done + branch);

        static bool TryRepeat(ReadOnlySpan<char> inner, out long times)
        {
            times = 0;
            var comma = inner.IndexOf(',');
            var first = comma < 0 ? inner : inner[..comma];
            if (!long.TryParse(first, out var n)) return false;
            var m = n;
            if (comma >= 0 && comma + 1 < inner.Length && !long.TryParse(inner[(comma + 1)..], out m)) return false;
            if (comma >= 0 && comma + 1 == inner.Length) m = n + 1; // {n,}: n copies then a loop
            times = Math.Clamp(Math.Max(n, m), 1, Cap);
            return true;
        }
    }

    /// <summary>Conservative: true for anything that could be a construct the non-backtracking engine refuses.</summary>
    private static bool MayNeedBacktracking(string body) =>
        body.Contains("(?", StringComparison.Ordinal) || Regex.IsMatch(body, @"\\[1-9k]", RegexOptions.CultureInvariant);

    private sealed class RegexPattern(string text, Lazy<Regex> regex, string? prefix) : NamePattern
    {
        public override string Text => text;
        public override string? RequiredPrefix => prefix;

        // A string rule's regex runs on every string of every image; most fail on their first characters, so an
        // anchored literal prefix (/^D:/) is checked first, without the automaton.
        public override bool IsMatch(ReadOnlySpan<char> value) =>
            (prefix is null || value.StartsWith(prefix, StringComparison.Ordinal)) && regex.Value.IsMatch(value);
    }

    /// <summary>
    /// The literal text every match must start with, for a case-sensitive regex anchored at the start
    /// (<c>^D:[A-Z]*\(</c> → <c>D:</c>); null when there is none or when it cannot be known simply (ignore-case,
    /// multiline or whitespace flags, a top-level alternative). A literal followed by <c>*</c>, <c>?</c> or
    /// <c>{</c> is left out: it may be absent.
    /// </summary>
    internal static string? AnchoredPrefix(string body, RegexOptions options)
    {
        if ((options & (RegexOptions.IgnoreCase | RegexOptions.Multiline | RegexOptions.IgnorePatternWhitespace | RegexOptions.RightToLeft)) != 0) return null;
        if (body.Length < 2 || body[0] != '^' || HasTopLevelAlternative(body)) return null;
        var prefix = new System.Text.StringBuilder();
        var i = 1;
        while (i < body.Length)
        {
            var c = body[i];
            if (char.IsAsciiLetterOrDigit(c) || ":;,-_=/!@%&'\"<>~` ".Contains(c)) { prefix.Append(c); i++; }
            else if (c == '\\' && i + 1 < body.Length && "\\.()[]{}*+?|^$/-".Contains(body[i + 1])) { prefix.Append(body[i + 1]); i += 2; }
            else break;
        }
        if (i < body.Length && body[i] is '*' or '?' or '{' && prefix.Length > 0) prefix.Length--;
        return prefix.Length > 0 ? prefix.ToString() : null;
    }

    private static bool HasTopLevelAlternative(string body)
    {
        var depth = 0;
        for (var i = 0; i < body.Length; i++)
        {
            switch (body[i])
            {
                case '\\': i++; break;
                case '[':
                    var j = i + 1;
                    if (j < body.Length && body[j] == '^') j++;
                    if (j < body.Length && body[j] == ']') j++;
                    while (j < body.Length && body[j] != ']') j += body[j] == '\\' ? 2 : 1;
                    i = j;
                    break;
                case '(': depth++; break;
                case ')': depth--; break;
                case '|' when depth <= 0: return true;
            }
        }
        return false;
    }
}
