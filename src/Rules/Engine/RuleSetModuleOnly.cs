using DriverAudit.Rules.Facts;
using DriverAudit.Rules.Predicates;

namespace DriverAudit.Rules.Engine;

public sealed partial class RuleSet
{
    private bool[]? _moduleOnly;

    /// <summary>
    /// Evaluates only the rules whose match uses nothing but <c>module</c> (origin, name, path), through logic
    /// nodes and rule references: the rules that can judge a module a dump lists without holding its image
    /// (a triage dump's uncaptured modules, unloaded drivers). Every other fact of <paramref name="facts"/> is
    /// never read, so it may be empty.
    /// </summary>
    public IReadOnlyList<RuleMatch> EvaluateModuleOnly(IImageFacts facts)
    {
        var only = _moduleOnly ??= [.. _compiled.Select(c => ModuleOnly(c.Match, 0))];
        return Evaluate(facts, only, notEvaluated: null);
    }

    /// <summary>Names of the rules <see cref="EvaluateModuleOnly"/> runs, in id order.</summary>
    public IReadOnlyList<string> ModuleOnlyRuleIds =>
        [.. _compiled.Where(c => ModuleOnly(c.Match, 0)).Select(c => c.Rule.Id)];

    private static bool ModuleOnly(Predicate node, int depth) => depth < 64 && node switch
    {
        ModuleFeature => true,
        RuleRefNode r => r.IsBound && ModuleOnly(r.Target.Match, depth + 1),
        AllNode or AnyNode or AtLeastNode or NotNode => node.Children.All(c => ModuleOnly(c, depth + 1)),
        _ => false,
    };
}
