using DriverAudit.Rules.Predicates;

namespace DriverAudit.Rules.Engine;

/// <summary>
/// Selection and re-levelling (<c>--only</c>, <c>--disable</c>, <c>--level</c>): a view of a loaded set that
/// reports fewer rules, some at another level, without compiling anything again.
/// </summary>
/// <remarks>
/// Evaluation indexes rules by <see cref="CompiledRule.Index"/>, and <c>rule:</c> references keep the
/// index of their target. So a selected set keeps every rule at its original position (a referenced rule
/// must still evaluate), but a rule that is not kept sits there as a stand-in whose own
/// <see cref="CompiledRule.Index"/> points at a trailing sentinel that never matches: the reporting loop
/// tests the sentinel and skips it, while references still reach the real match tree at the real index.
/// Kept rules are fresh <see cref="CompiledRule"/>s carrying the re-levelled <see cref="Rule"/>, so
/// <see cref="RuleMatch.Rule"/> and <see cref="Rules"/> show the effective level. The loaded set is not touched.
/// </remarks>
public sealed partial class RuleSet
{
    /// <summary>The loaded rules in index order, when this set is a selection of them; null for a loaded set.</summary>
    private readonly IReadOnlyList<CompiledRule>? _loaded;

    private RuleSet(IReadOnlyList<CompiledRule> slots, IReadOnlyList<CompiledRule> loaded, IReadOnlyList<Rule> reported)
        : this(slots)
    {
        _loaded = loaded;
        Rules = reported;
    }

    /// <summary>
    /// A set whose <see cref="Rules"/> and <see cref="Evaluate"/> cover only the rules <paramref name="keep"/>
    /// accepts (it sees each rule with its current, possibly overridden level), with levels overridden by id.
    /// Rules referenced with <c>rule:</c> by kept rules still evaluate, but only kept rules report.
    /// Selecting from a selection narrows it further; later level overrides win.
    /// </summary>
    public RuleSet Select(Func<Rule, bool> keep, IReadOnlyDictionary<string, RuleLevel>? levels = null)
    {
        ArgumentNullException.ThrowIfNull(keep);
        var loaded = _loaded ?? _compiled;
        var reported = new Dictionary<string, Rule>(StringComparer.Ordinal);
        foreach (var rule in Rules)
        {
            if (!keep(rule)) continue;
            reported[rule.Id] = levels is not null && levels.TryGetValue(rule.Id, out var level) && level != rule.Level
                ? WithLevel(rule, level)
                : rule;
        }

        int n = loaded.Count;
        bool hidesSome = reported.Count < n;
        var slots = new CompiledRule[hidesSome ? n + 1 : n];
        for (int i = 0; i < n; i++)
        {
            var original = loaded[i];
            if (original.Index != i) throw new InvalidOperationException($"rule {original.Rule.Id} is at position {i} but has index {original.Index}");
            slots[i] = reported.TryGetValue(original.Rule.Id, out var effective)
                ? new CompiledRule(effective, original.Match, original.Message) { Index = i }
                : new CompiledRule(original.Rule, original.Match, original.Message) { Index = n };
        }
        if (hidesSome)
        {
            var never = new NeverMatches { Line = 0, Column = 0 };
            slots[n] = new CompiledRule(loaded[0].Rule, never, loaded[0].Message) { Index = n };
        }
        var ordered = reported.Values.OrderBy(r => r.Id, StringComparer.Ordinal).ToList();
        return new RuleSet(slots, loaded, ordered);
    }

    /// <summary>A copy of <paramref name="rule"/> at another level (Rule is immutable and shared).</summary>
    private static Rule WithLevel(Rule rule, RuleLevel level) => new()
    {
        Id = rule.Id,
        Name = rule.Name,
        Title = rule.Title,
        Level = level,
        SecuritySeverity = rule.SecuritySeverity,
        Precision = rule.Precision,
        Tags = rule.Tags,
        Cwe = rule.Cwe,
        References = rule.References,
        Description = rule.Description,
        Help = rule.Help,
        MessageTemplate = rule.MessageTemplate,
        SourcePath = rule.SourcePath,
        MatchExamples = rule.MatchExamples,
        NoMatchExamples = rule.NoMatchExamples,
        Report = rule.Report,
    };

    /// <summary>The sentinel's match tree: false on every image, costs nothing, leaves no evidence.</summary>
    private sealed class NeverMatches : Predicate
    {
        public override Tri Test(EvalContext ctx) => Tri.False;
        public override void Collect(EvalContext ctx, List<Anchor> sink) { }
        public override int Cost => 0;
        public override EvidenceShape Shape => EvidenceShape.Nothing;
    }
}
