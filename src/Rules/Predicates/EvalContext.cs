using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;

namespace DriverAudit.Rules.Predicates;

/// <summary>
/// State of one <see cref="RuleSet.Evaluate"/> call: the facts, and each rule's result once computed (so
/// <c>rule:</c> references are evaluated once per image). One per call, never shared between threads.
/// </summary>
internal sealed class EvalContext(IImageFacts facts, IReadOnlyList<CompiledRule> rules)
{
    private Tri?[]? _ruleResults;
    private string? _artifact;

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
