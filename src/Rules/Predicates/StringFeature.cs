using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;
using DriverAudit.Rules.Patterns;

namespace DriverAudit.Rules.Predicates;

/// <summary>Which encodings a <c>string:</c> feature looks at.</summary>
[Flags]
internal enum StringEncodings : byte { Ascii = 1, Utf16 = 2, Any = Ascii | Utf16 }

/// <summary>
/// <c>string:</c> strings found in the image's sections (code sections included). A literal matches as a <b>substring</b> (or the whole string
/// with <c>whole: true</c>), case-sensitive unless <c>ignore-case: true</c>; a regex is searched. Each
/// distinct string is one anchor (key: the value, plus <c>#utf16</c> for UTF-16 strings).
/// </summary>
internal sealed class StringFeature(string? literal, bool ignoreCase, bool whole, NamePattern? regex, StringEncodings encodings, bool referenced = false) : ItemFeature
{
    /// <summary><c>referenced: true</c>: only strings the decoded code uses (needs code analysis).</summary>
    public override bool ReadsCode => referenced;

    private readonly StringComparison _comparison = ignoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    /// <summary>
    /// What every matching string contains: the literal (at the start for <c>whole</c>), or a regex's anchored literal
    /// prefix; null when a regex has none (then every image's strings are extracted).
    /// </summary>
    private readonly StringNeedle? _needle = (regex is null ? literal : regex.RequiredPrefix) is { Length: > 0 } text
        ? new StringNeedle(text, regex is null && ignoreCase, regex is not null || whole,
            (encodings & StringEncodings.Ascii) != 0, (encodings & StringEncodings.Utf16) != 0)
        : null;

    private Func<StringFact, bool>? _matches;

    /// <summary>False when the image cannot hold a matching string (checked without extracting its strings).</summary>
    private bool MayMatch(EvalContext ctx) => _needle is not { } needle || ctx.Facts.MayHaveString(needle, _matches ??= Matches, ctx.StringNeedles);

    /// <summary>What every matching string contains; null when nothing can be searched for first.</summary>
    public StringNeedle? Needle => _needle;

    public override int Cost => Costs.String;
    public override EvidenceShape Shape => EvidenceShape.Always(AnchorKind.String);

    public bool Matches(StringFact s)
    {
        if ((encodings & (s.Utf16 ? StringEncodings.Utf16 : StringEncodings.Ascii)) == 0) return false;
        if (regex is not null) return regex.IsMatch(s.Value);
        return whole ? s.Value.Equals(literal, _comparison) : s.Value.Contains(literal!, _comparison);
    }

    private bool Used(EvalContext ctx, StringFact s) => !referenced || ctx.Facts.IsStringReferenced(s) == true;

    public override int CountMatches(EvalContext ctx, int limit)
    {
        if (limit <= 0 || !MayMatch(ctx)) return 0;
        var items = ctx.Facts.Strings;
        int n = 0;
        for (int i = 0; i < items.Count; i++)
            if (Matches(items[i]) && Used(ctx, items[i]) && ++n >= limit) break;
        return n;
    }

    public override void Collect(EvalContext ctx, List<Anchor> sink)
    {
        if (!MayMatch(ctx)) return;
        foreach (var s in ctx.Facts.Strings)
        {
            if (!Matches(s) || !Used(ctx, s)) continue;
            var values = ctx.Values(3);
            values["string"] = s.Value;
            values["section"] = s.Section;
            values["value"] = s.Value;
            sink.Add(new Anchor(AnchorKind.String, s.Utf16 ? s.Value + "#utf16" : s.Value, values) { Rva = s.Rva });
        }
    }
}
