using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Predicates;

namespace DriverAudit.Rules.Loading;

/// <summary>
/// Loads many rule files as one set: reads each, then checks what spans files (duplicate ids and names,
/// <c>rule:</c> references and their cycles, placeholders against the anchors a rule can report).
/// </summary>
internal static class RuleLoader
{
    /// <summary>Rules in one set (the default pack has a few dozen): each costs memory and a place in the index.</summary>
    public const int MaxRules = 10_000;

    /// <summary>
    /// Longest chain of <c>rule:</c> references (A uses B uses C … is 3): evaluation follows them recursively,
    /// so a deep chain could exhaust the stack at scan time.
    /// </summary>
    public const int MaxReferenceDepth = 32;

    public static IReadOnlyList<CompiledRule> Load(IEnumerable<RuleSource> sources, RuleLoadOptions? options, out IReadOnlyList<RuleWarning> warnings)
    {
        var lists = new ListResolver(options);
        ArgumentNullException.ThrowIfNull(sources);
        var sinks = new List<ErrorSink>();
        var drafts = new List<RuleDraft>();
        var idsOfBrokenFiles = new HashSet<string>(StringComparer.Ordinal);
        Patterns.NamePattern.LoadBudgetUsed = 0; // the set's regexes share one size budget
        try
        {
            foreach (var source in sources)
            {
                ArgumentNullException.ThrowIfNull(source);
                var sink = new ErrorSink(source.Path);
                sinks.Add(sink);
                var draft = RuleFileReader.Read(source, sink, lists, out var declaredId);
                var maxRules = options?.MaxRules ?? MaxRules;
                if (draft is not null && drafts.Count == maxRules)
                    draft.Errors.Add(draft.IdNode, $"too many rules: at most {maxRules:N0} are loaded in one set, and this is rule {maxRules + 1:N0}");
                if (draft is not null) drafts.Add(draft);
                else if (declaredId is not null) idsOfBrokenFiles.Add(declaredId);
            }
        }
        finally
        {
            Patterns.NamePattern.LoadBudgetUsed = null;
        }

        var byId = UniqueIds(drafts);
        UniqueNames(drafts);
        var compiled = byId.Values.Select(d => new CompiledRule(d.Rule, d.Match, d.Message)).ToDictionary(c => c.Rule.Id, StringComparer.Ordinal);
        Bind(drafts, compiled, idsOfBrokenFiles);
        bool acyclic = CheckCycles(drafts, byId);

        if (acyclic && CheckDepth(byId))
        {
            // Placeholders depend on the anchors a rule can report, which follow rule: references;
            // check every rule whose references all resolve, so these errors come with the others.
            // Iterative, like the other walks over references: a long chain must not exhaust the stack.
            var resolvable = new Dictionary<RuleDraft, bool>();
            foreach (var draft in drafts)
                if (Resolvable(draft, byId, resolvable)) CheckPlaceholders(draft);
        }

        var errors = sinks.SelectMany(s => s.Errors.OrderBy(e => e.Line).ThenBy(e => e.Column)).ToList();
        if (errors.Count > 0) throw new RuleLoadException(errors);

        var ordered = compiled.Values.OrderBy(c => c.Rule.Id, StringComparer.Ordinal).ToList();
        for (int i = 0; i < ordered.Count; i++) ordered[i].Index = i;
        foreach (var rule in ordered) rule.Match.Prepare();
        warnings = [.. lists.Warnings.OrderBy(w => w.File, StringComparer.Ordinal).ThenBy(w => w.Line).ThenBy(w => w.Column)];
        return ordered;
    }

    private static Dictionary<string, RuleDraft> UniqueIds(List<RuleDraft> drafts)
    {
        var byId = new Dictionary<string, RuleDraft>(StringComparer.Ordinal);
        foreach (var draft in drafts)
        {
            if (byId.TryGetValue(draft.Rule.Id, out var first))
                draft.Errors.Add(draft.IdNode, $"duplicate rule id {draft.Rule.Id} (already defined at {Where(first, first.IdNode.Line, first.IdNode.Column)})");
            else
                byId.Add(draft.Rule.Id, draft);
        }
        return byId;
    }

    /// <summary>Names are compared ignoring case: they become SARIF rule names and file-system-ish labels.</summary>
    private static void UniqueNames(List<RuleDraft> drafts)
    {
        var byName = new Dictionary<string, RuleDraft>(StringComparer.OrdinalIgnoreCase);
        foreach (var draft in drafts)
        {
            if (byName.TryGetValue(draft.Rule.Name, out var first))
                draft.Errors.Add(draft.NameNode, $"duplicate rule name {draft.Rule.Name} (already used by {first.Rule.Id} at {Where(first, first.NameNode.Line, first.NameNode.Column)})");
            else
                byName.Add(draft.Rule.Name, draft);
        }
    }

    private static void Bind(List<RuleDraft> drafts, Dictionary<string, CompiledRule> compiled, HashSet<string> idsOfBrokenFiles)
    {
        foreach (var draft in drafts)
        {
            foreach (var reference in draft.References)
            {
                if (compiled.TryGetValue(reference.TargetId, out var target))
                    reference.Target = target;
                else if (!idsOfBrokenFiles.Contains(reference.TargetId)) // that file's own errors already say why
                    draft.Errors.Add(reference.Line, reference.Column, $"'rule: {reference.TargetId}' names no loaded rule");
            }
        }
    }

    /// <summary>
    /// Depth-first search over <c>rule:</c> edges; each cycle is reported once, at the reference that closes it.
    /// Iterative (an explicit stack of rule and next-reference index): a 60,000-link chain is only data.
    /// </summary>
    private static bool CheckCycles(List<RuleDraft> drafts, Dictionary<string, RuleDraft> byId)
    {
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1 = on the path, 2 = done
        var path = new List<string>();
        var onPath = new Dictionary<string, int>(StringComparer.Ordinal); // id → index in path
        var stack = new Stack<(RuleDraft Draft, int Next)>();
        bool acyclic = true;

        foreach (var root in byId.Values)
        {
            if (state.GetValueOrDefault(root.Rule.Id) != 0) continue;
            Enter(root);
            while (stack.Count > 0)
            {
                var (draft, next) = stack.Pop();
                if (next == draft.References.Count)
                {
                    path.RemoveAt(path.Count - 1);
                    onPath.Remove(draft.Rule.Id);
                    state[draft.Rule.Id] = 2;
                    continue;
                }
                stack.Push((draft, next + 1));
                var reference = draft.References[next];
                if (!byId.TryGetValue(reference.TargetId, out var target)) continue;
                switch (state.GetValueOrDefault(target.Rule.Id))
                {
                    case 0:
                        Enter(target);
                        break;
                    case 1:
                        var cycle = path.Skip(onPath[target.Rule.Id]).Append(target.Rule.Id);
                        draft.Errors.Add(reference.Line, reference.Column, $"rule reference cycle: {Shorten(cycle.ToList())}");
                        acyclic = false;
                        break;
                }
            }
        }
        return acyclic;

        void Enter(RuleDraft draft)
        {
            state[draft.Rule.Id] = 1;
            onPath[draft.Rule.Id] = path.Count;
            path.Add(draft.Rule.Id);
            stack.Push((draft, 0));
        }
    }

    /// <summary>
    /// With no cycle: the longest reference chain below each rule, computed bottom-up without recursion. A rule
    /// whose chain is deeper than <see cref="MaxReferenceDepth"/> is an error, reported only where the chain
    /// starts (rules that no other too-deep rule references), so one long chain is one error.
    /// </summary>
    private static bool CheckDepth(Dictionary<string, RuleDraft> byId)
    {
        var depth = new Dictionary<string, int>(StringComparer.Ordinal);
        var stack = new Stack<(RuleDraft Draft, bool Expanded)>();
        foreach (var root in byId.Values)
        {
            if (depth.ContainsKey(root.Rule.Id)) continue;
            stack.Push((root, false));
            while (stack.Count > 0)
            {
                var (draft, expanded) = stack.Pop();
                if (depth.ContainsKey(draft.Rule.Id)) continue;
                if (!expanded)
                {
                    stack.Push((draft, true));
                    foreach (var r in draft.References)
                        if (byId.TryGetValue(r.TargetId, out var t) && !depth.ContainsKey(t.Rule.Id)) stack.Push((t, false));
                    continue;
                }
                var d = 0;
                foreach (var r in draft.References)
                    if (byId.TryGetValue(r.TargetId, out var t)) d = Math.Max(d, depth.GetValueOrDefault(t.Rule.Id));
                depth[draft.Rule.Id] = draft.References.Count > 0 ? d + 1 : 0;
            }
        }

        var tooDeep = byId.Values.Where(d => depth[d.Rule.Id] > MaxReferenceDepth).ToList();
        if (tooDeep.Count == 0) return true;
        var referencedByTooDeep = new HashSet<string>(StringComparer.Ordinal);
        foreach (var d in tooDeep)
            foreach (var r in d.References) referencedByTooDeep.Add(r.TargetId);
        foreach (var d in tooDeep.Where(d => !referencedByTooDeep.Contains(d.Rule.Id)))
        {
            var first = d.References.First(r => byId.ContainsKey(r.TargetId) && depth[r.TargetId] == depth[d.Rule.Id] - 1);
            d.Errors.Add(first.Line, first.Column,
                $"rule reference chain too deep: {d.Rule.Id} starts a chain of {depth[d.Rule.Id]:N0} nested 'rule:' references; at most {MaxReferenceDepth} are allowed");
        }
        return false;
    }

    /// <summary>Every reference below <paramref name="draft"/> is bound (no recursion: depth is checked, but stay iterative anyway).</summary>
    private static bool Resolvable(RuleDraft draft, Dictionary<string, RuleDraft> byId, Dictionary<RuleDraft, bool> memo)
    {
        if (memo.TryGetValue(draft, out var known)) return known;
        var stack = new Stack<(RuleDraft Draft, bool Expanded)>();
        stack.Push((draft, false));
        while (stack.Count > 0)
        {
            var (d, expanded) = stack.Pop();
            if (memo.ContainsKey(d)) continue;
            if (!expanded)
            {
                stack.Push((d, true));
                foreach (var r in d.References)
                    if (r.IsBound && byId.TryGetValue(r.TargetId, out var t) && !memo.ContainsKey(t)) stack.Push((t, false));
                continue;
            }
            memo[d] = d.References.All(r => r.IsBound && byId.TryGetValue(r.TargetId, out var t) && memo.GetValueOrDefault(t));
        }
        return memo[draft];
    }

    /// <summary>"A -> B -> … -> Z" for long cycles: the first and last few ids and a count.</summary>
    private static string Shorten(List<string> ids) =>
        ids.Count <= 12 ? string.Join(" -> ", ids) : $"{string.Join(" -> ", ids.Take(5))} -> … ({ids.Count - 10:N0} more) -> {string.Join(" -> ", ids.TakeLast(5))}";

    private static void CheckPlaceholders(RuleDraft draft)
    {
        var reported = draft.Rule.Report == RuleReport.PerImage ? AnchorKind.Image : draft.Match.Shape.Reported;
        foreach (var problem in draft.Message.Unavailable(reported))
            draft.Errors.Add(draft.MessageNode, problem);
    }

    private static string Where(RuleDraft draft, int line, int column) => $"{draft.Errors.File}:{line}:{column}";
}
