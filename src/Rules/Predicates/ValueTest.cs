namespace DriverAudit.Rules.Predicates;

/// <summary>
/// Constraints on one recovered call argument. A value the analysis could not prove constant (null) satisfies
/// no value constraint — not even <c>ne</c> or <c>not-in</c> — and is matched only by <c>unknown: true</c>.
/// With <c>unknown: true</c> and value constraints, either an unknown value or a value meeting them matches.
/// <c>mask</c> applies to <c>eq</c>, <c>ne</c>, <c>in</c> and <c>not-in</c>: they compare <c>value &amp; mask</c>.
/// </summary>
internal sealed class ValueTest
{
    public ulong Mask { get; init; } = ulong.MaxValue;
    public ulong? Eq { get; init; }
    public ulong? Ne { get; init; }
    public ulong[]? In { get; init; }
    public ulong[]? NotIn { get; init; }
    public ulong? HasAny { get; init; }
    public ulong? HasAll { get; init; }
    public ulong? Lacks { get; init; }
    public bool? Unknown { get; init; }

    private bool HasValueConstraints =>
        Eq is not null || Ne is not null || In is not null || NotIn is not null || HasAny is not null || HasAll is not null || Lacks is not null;

    public bool Matches(ulong? value)
    {
        if (value is not ulong v) return Unknown == true;
        if (!HasValueConstraints) return Unknown != true;
        ulong m = v & Mask;
        return (Eq is not ulong eq || m == eq)
            && (Ne is not ulong ne || m != ne)
            && (In is null || Array.IndexOf(In, m) >= 0)
            && (NotIn is null || Array.IndexOf(NotIn, m) < 0)
            && (HasAny is not ulong any || (v & any) != 0)
            && (HasAll is not ulong all || (v & all) == all)
            && (Lacks is not ulong lacks || (v & lacks) == 0);
    }
}
