using DriverAudit.Rules.Engine;

namespace DriverAudit.Rules.Predicates;

/// <summary>Shared by all / any / at-least: children in source order, and the same children cheapest first.</summary>
internal abstract class ListNode(Predicate[] children) : Predicate
{
    private int _cost = -1;

    /// <summary>As written: evidence is gathered in this order, so the author picks the primary anchor.</summary>
    protected Predicate[] SourceOrder { get; } = children;

    /// <summary>Cheapest first (stable): <see cref="Test"/> short-circuits before touching expensive facts.</summary>
    protected Predicate[] TestOrder { get; private set; } = children;

    public override IEnumerable<Predicate> Children => SourceOrder;

    public override int Cost => _cost >= 0 ? _cost : _cost = (int)Math.Min(int.MaxValue / 2, SourceOrder.Sum(c => (long)c.Cost));

    public override void Prepare()
    {
        base.Prepare();
        TestOrder = [.. SourceOrder.OrderBy(c => c.Cost)];
    }
}

/// <summary><c>all:</c> false if any child is false, else unknown if any is unknown, else true.</summary>
internal sealed class AllNode(Predicate[] children) : ListNode(children)
{
    public override Tri Test(EvalContext ctx)
    {
        var result = Tri.True;
        foreach (var child in TestOrder)
        {
            var value = child.Test(ctx);
            if (value == Tri.False) return Tri.False;
            if (value == Tri.Unknown) result = Tri.Unknown;
        }
        return result;
    }

    /// <summary>Every child must be true, so any child's prerequisite is the node's: take the most selective.</summary>
    public override IReadOnlyCollection<string>? RequiredImports()
    {
        IReadOnlyCollection<string>? best = null;
        foreach (var child in SourceOrder)
            if (child.RequiredImports() is { } r && (best is null || r.Count < best.Count)) best = r;
        return best;
    }

    /// <summary>The first child (as written) that leaves evidence is the primary one; the others only qualify it.</summary>
    public override void Collect(EvalContext ctx, List<Anchor> sink)
    {
        foreach (var child in SourceOrder)
        {
            int before = sink.Count;
            child.Collect(ctx, sink);
            if (sink.Count > before) return;
        }
    }

    public override EvidenceShape Shape
    {
        get
        {
            var kinds = AnchorKind.None;
            foreach (var child in SourceOrder)
            {
                var shape = child.Shape;
                kinds |= shape.Kinds;
                if (!shape.MayBeEmpty) return new(kinds, false);
            }
            return new(kinds, true);
        }
    }
}

/// <summary><c>any:</c> true if any child is true, else unknown if any is unknown, else false.</summary>
internal sealed class AnyNode(Predicate[] children) : ListNode(children)
{
    public override Tri Test(EvalContext ctx)
    {
        var result = Tri.False;
        foreach (var child in TestOrder)
        {
            var value = child.Test(ctx);
            if (value == Tri.True) return Tri.True;
            if (value == Tri.Unknown) result = Tri.Unknown;
        }
        return result;
    }

    /// <summary>The union of the evidence of every true child.</summary>
    public override void Collect(EvalContext ctx, List<Anchor> sink)
    {
        foreach (var child in SourceOrder)
            if (child.Test(ctx) == Tri.True) child.Collect(ctx, sink);
    }

    public override IReadOnlyCollection<string>? RequiredImports() => UnionOfRequirements(SourceOrder);

    /// <summary>Some child must be true: a prerequisite only when every child has one (their union).</summary>
    internal static IReadOnlyCollection<string>? UnionOfRequirements(Predicate[] children)
    {
        var union = new HashSet<string>(StringComparer.Ordinal);
        foreach (var child in children)
            if (child.RequiredImports() is { } r) union.UnionWith(r); else return null;
        return union;
    }

    public override EvidenceShape Shape => Union(SourceOrder);

    internal static EvidenceShape Union(IEnumerable<Predicate> children)
    {
        var kinds = AnchorKind.None;
        bool mayBeEmpty = false;
        foreach (var child in children)
        {
            var shape = child.Shape;
            kinds |= shape.Kinds;
            mayBeEmpty |= shape.MayBeEmpty;
        }
        return new(kinds, mayBeEmpty);
    }
}

/// <summary><c>at-least: {n, of}</c>: true when n children are true; false when even the unknown ones cannot reach n.</summary>
internal sealed class AtLeastNode(int n, Predicate[] children) : ListNode(children)
{
    public int N { get; } = n;

    public override Tri Test(EvalContext ctx)
    {
        int trues = 0, unknowns = 0, remaining = TestOrder.Length;
        foreach (var child in TestOrder)
        {
            remaining--;
            var value = child.Test(ctx);
            if (value == Tri.True && ++trues >= N) return Tri.True;
            if (value == Tri.Unknown) unknowns++;
            if (trues + unknowns + remaining < N) return Tri.False;
        }
        return Tri.Unknown;
    }

    public override void Collect(EvalContext ctx, List<Anchor> sink)
    {
        foreach (var child in SourceOrder)
            if (child.Test(ctx) == Tri.True) child.Collect(ctx, sink);
    }

    public override EvidenceShape Shape => AnyNode.Union(SourceOrder);

    public override IReadOnlyCollection<string>? RequiredImports() => AnyNode.UnionOfRequirements(SourceOrder);
}

/// <summary><c>not:</c> Kleene negation (not unknown = unknown). Leaves no evidence: absence has no location.</summary>
internal sealed class NotNode(Predicate child) : Predicate
{
    public override Tri Test(EvalContext ctx) => TriLogic.Not(child.Test(ctx));
    public override void Collect(EvalContext ctx, List<Anchor> sink) { }
    public override int Cost => child.Cost;
    public override EvidenceShape Shape => EvidenceShape.Nothing;
    public override IEnumerable<Predicate> Children => [child];
}

/// <summary><c>count: {of: feature, min, max}</c>: how many items the feature matches.</summary>
internal sealed class CountNode(ItemFeature of, int min, int max) : Predicate
{
    public override Tri Test(EvalContext ctx)
    {
        // Counting past max+1 (or past min when there is no max) cannot change the answer.
        int limit = max == int.MaxValue ? min : max + 1;
        int n = of.CountMatches(ctx, limit);
        return TriLogic.From(n >= min && n <= max);
    }

    public override void Collect(EvalContext ctx, List<Anchor> sink) => of.Collect(ctx, sink);
    public override int Cost => of.Cost;
    public override EvidenceShape Shape => new(of.Shape.Kinds, min == 0);
    public override IReadOnlyCollection<string>? RequiredImports() => min > 0 ? of.RequiredImports() : null;
    public override IEnumerable<Predicate> Children => [of];
}

/// <summary><c>rule: ID</c>: another rule's match tree, its result cached per evaluation.</summary>
internal sealed class RuleRefNode(string targetId) : Predicate
{
    private CompiledRule? _target;

    public string TargetId { get; } = targetId;
    public bool IsBound => _target is not null;

    /// <summary>Set once at load, after every rule is compiled and ordered.</summary>
    public CompiledRule Target
    {
        get => _target ?? throw new InvalidOperationException($"rule reference {TargetId} was not bound");
        set => _target = value;
    }

    public override Tri Test(EvalContext ctx) => ctx.TestRule(Target.Index);
    public override void Collect(EvalContext ctx, List<Anchor> sink) => ctx.MatchOf(Target.Index).Collect(ctx, sink);
    public override int Cost => Target.Match.Cost;
    public override EvidenceShape Shape => Target.Match.Shape;
    public override IReadOnlyCollection<string>? RequiredImports() => Target.Match.RequiredImports();

    // The target is prepared as a rule of its own; Children stays empty so trees remain trees.
    public override void Prepare() { }
}
