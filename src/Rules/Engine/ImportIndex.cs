using DriverAudit.Rules.Facts;

namespace DriverAudit.Rules.Engine;

/// <summary>
/// Import name → rules that cannot match unless the image imports that name (see
/// <see cref="Predicates.Predicate.RequiredImports"/>). Built once per <see cref="RuleSet"/>; per image one
/// pass over the imports marks the candidate rules, and the others are skipped without reading anything else.
/// Names are exact and case-sensitive, module ignored (a necessary condition only: features still check modules).
/// </summary>
internal sealed class ImportIndex
{
    private readonly Dictionary<string, int[]> _rulesByName;
    private readonly bool[] _unconditional;
    private readonly bool _any;

    public ImportIndex(IReadOnlyList<CompiledRule> rules)
    {
        var byName = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        _unconditional = new bool[rules.Count];
        for (int i = 0; i < rules.Count; i++)
        {
            var required = rules[i].Match.RequiredImports();
            if (required is null) { _unconditional[i] = true; continue; }
            _any = true;
            foreach (var name in required)
            {
                if (!byName.TryGetValue(name, out var list)) byName[name] = list = [];
                list.Add(i);
            }
        }
        _rulesByName = byName.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray(), StringComparer.Ordinal);
    }

    /// <summary>Which rules (by position) may match this image; null when no rule has a prerequisite (all may).</summary>
    public bool[]? Candidates(IImageFacts facts)
    {
        if (!_any) return null;
        var result = (bool[])_unconditional.Clone();
        var imports = facts.Imports;
        for (int i = 0; i < imports.Count; i++)
        {
            if (imports[i].Name is { } name && _rulesByName.TryGetValue(name, out var rules))
                foreach (int r in rules) result[r] = true;
        }
        return result;
    }
}
