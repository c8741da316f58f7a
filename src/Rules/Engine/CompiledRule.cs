using DriverAudit.Rules.Messages;
using DriverAudit.Rules.Predicates;

namespace DriverAudit.Rules.Engine;

/// <summary>A rule's metadata with its compiled match tree and message; immutable once loaded.</summary>
internal sealed class CompiledRule(Rule rule, Predicate match, MessageTemplate message)
{
    public Rule Rule { get; } = rule;
    public Predicate Match { get; } = match;
    public MessageTemplate Message { get; } = message;

    /// <summary>Position in <see cref="RuleSet.Rules"/>; set once when the set is ordered.</summary>
    public int Index { get; set; }
}
