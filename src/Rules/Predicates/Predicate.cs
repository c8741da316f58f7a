using DriverAudit.Rules.Engine;

namespace DriverAudit.Rules.Predicates;

/// <summary>
/// A node of a compiled match tree. Evaluation is two-phase: <see cref="Test"/> decides truth cheaply
/// (short-circuits, allocates nothing); <see cref="Collect"/> runs only on a node already known true and
/// gathers the anchors of the finding. Nodes are immutable after load, hence thread-safe.
/// </summary>
internal abstract class Predicate
{
    /// <summary>Position in the rule file, for load-time errors that surface after compilation (cycles).</summary>
    public required int Line { get; init; }
    public required int Column { get; init; }

    public abstract Tri Test(EvalContext ctx);

    /// <summary>Adds the evidence anchors of this (true) node. Image-wide facts add nothing.</summary>
    public abstract void Collect(EvalContext ctx, List<Anchor> sink);

    /// <summary>Relative cost of <see cref="Test"/>: cheap facts first. Valid after <see cref="Prepare"/>.</summary>
    public abstract int Cost { get; }

    /// <summary>Evidence this node can leave; valid after references are bound.</summary>
    public abstract EvidenceShape Shape { get; }

    public virtual IEnumerable<Predicate> Children => [];

    /// <summary>True for features answered from the image's code (calls, instructions, code-referenced strings).</summary>
    public virtual bool ReadsCode => false;

    /// <summary>
    /// Whether every code fact this node and its children read is an instruction feature whose mnemonics all lie in
    /// <paramref name="absent"/> (and there is at least one): then the node cannot be true on such an image.
    /// </summary>
    public bool ReadsOnlyAbsentInstructions(IReadOnlySet<string> absent)
    {
        var any = false;
        return Walk(this, absent, ref any) && any;

        static bool Walk(Predicate p, IReadOnlySet<string> absent, ref bool any)
        {
            if (p.ReadsCode)
            {
                if (p is not InstructionFeature i || !i.OnlyMnemonicsIn(absent)) return false;
                any = true;
            }
            foreach (var c in p.Children)
                if (!Walk(c, absent, ref any)) return false;
            return true;
        }
    }

    /// <summary>Whether this node or a node under it reads code facts.</summary>
    public bool NeedsCode()
    {
        if (ReadsCode) return true;
        foreach (var child in Children)
            if (child.NeedsCode()) return true;
        return false;
    }

    /// <summary>
    /// Exact import names of which the image must import at least one for this node to be true (null: no
    /// such prerequisite). Lets <see cref="RuleSet"/> skip a rule after one pass over the imports.
    /// </summary>
    public virtual IReadOnlyCollection<string>? RequiredImports() => null;

    /// <summary>Called once after binding: lets logic nodes order their children by cost.</summary>
    public virtual void Prepare()
    {
        foreach (var child in Children) child.Prepare();
    }
}
