using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;

namespace DriverAudit.Rules.Predicates;

/// <summary>
/// State of one <see cref="RuleSet.Evaluate"/> call: the facts, and each rule's result once computed (so
/// <c>rule:</c> references are evaluated once per image). One per call, never shared between threads.
/// </summary>
internal sealed class EvalContext(IImageFacts facts, IReadOnlyList<CompiledRule> rules, Func<IReadOnlyList<StringNeedle>>? stringNeedles = null)
{
    private Tri?[]? _ruleResults;
    private string? _artifact;
    private IReadOnlyList<StringNeedle>? _stringNeedles;

    /// <summary>
    /// The needles of the <c>string:</c> features this evaluation may test (see <see cref="IImageFacts.MayHaveString"/>),
    /// found on the first question so that an image no string feature asks about costs nothing.
    /// </summary>
    public IReadOnlyList<StringNeedle> StringNeedles => _stringNeedles ??= stringNeedles?.Invoke() ?? [];

    public IImageFacts Facts { get; } = facts;

    /// <summary>Read only when a finding is rendered: a rule set that matches nothing never asks for it.</summary>
    public string Artifact => _artifact ??= Facts.DisplayName;

    public Tri TestRule(int index)
    {
        _ruleResults ??= new Tri?[rules.Count];
        return _ruleResults[index] ??= rules[index].Match.Test(this);
    }

    public Predicate MatchOf(int index) => rules[index].Match;

    public Dictionary<string, string> Values(int capacity)
        => new(capacity + 2, StringComparer.Ordinal) { ["artifact"] = Artifact };
}
