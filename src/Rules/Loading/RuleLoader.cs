using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Predicates;

namespace DriverAudit.Rules.Loading;

/// <summary>
/// Loads many rule files as one set: reads each, then checks what spans files (duplicate ids and names,
/// <c>rule:</c> references and their cycles, placeholders against the anchors a rule can report).
/// </summary>
internal static class RuleLoader
{
    public static IReadOnlyList<CompiledRule> Load(IEnumerable<RuleSource> sources, RuleLoadOptions? options, out IReadOnlyList<RuleWarning> warnings)
    {
        var lists = new ListResolver(options);
        ArgumentNullException.ThrowIfNull(sources);
        var sinks = new List<ErrorSink>();
        var drafts = new List<RuleDraft>();
        var idsOfBrokenFiles = new HashSet<string>(StringComparer.Ordinal);
        foreach (var source in sources)
        {
            ArgumentNullException.ThrowIfNull(source);
            var sink = new ErrorSink(source.Path);
            sinks.Add(sink);
            var draft = RuleFileReader.Read(source, sink, lists, out var declaredId);
            if (draft is not null) drafts.Add(draft);
            else if (declaredId is not null) idsOfBrokenFiles.Add(declaredId);
        }

        var byId = UniqueIds(drafts);
        UniqueNames(drafts);
        var compiled = byId.Values.Select(d => new CompiledRule(d.Rule, d.Match, d.Message)).ToDictionary(c => c.Rule.Id, StringComparer.Ordinal);
        Bind(drafts, compiled, idsOfBrokenFiles);
        bool acyclic = CheckCycles(drafts, byId);

        if (acyclic)
        {
            // Placeholders depend on the anchors a rule can report, which follow rule: references;
            // check every rule whose references all resolve, so these errors come with the others.
            var resolvable = new Dictionary<RuleDraft, bool>();
            bool Resolvable(RuleDraft d) => resolvable.TryGetValue(d, out bool r) ? r
                : resolvable[d] = d.References.All(x => x.IsBound && Resolvable(byId[x.TargetId]));
            foreach (var draft in drafts)
                if (Resolvable(draft)) CheckPlaceholders(draft);
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

    /// <summary>Depth-first search over <c>rule:</c> edges; each cycle is reported once, at the reference that closes it.</summary>
    private static bool CheckCycles(List<RuleDraft> drafts, Dictionary<string, RuleDraft> byId)
    {
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1 = on the path, 2 = done
        var path = new List<string>();
        bool acyclic = true;

        void Visit(RuleDraft draft)
        {
            state[draft.Rule.Id] = 1;
            path.Add(draft.Rule.Id);
            foreach (var reference in draft.References)
            {
                if (!byId.TryGetValue(reference.TargetId, out var target)) continue;
                switch (state.GetValueOrDefault(target.Rule.Id))
                {
                    case 0:
                        Visit(target);
                        break;
                    case 1:
                        var cycle = path.Skip(path.IndexOf(target.Rule.Id)).Append(target.Rule.Id);
                        draft.Errors.Add(reference.Line, reference.Column, $"rule reference cycle: {string.Join(" -> ", cycle)}");
                        acyclic = false;
                        break;
                }
            }
            path.RemoveAt(path.Count - 1);
            state[draft.Rule.Id] = 2;
        }

        foreach (var draft in byId.Values)
            if (state.GetValueOrDefault(draft.Rule.Id) == 0) Visit(draft);
        return acyclic;
    }

    private static void CheckPlaceholders(RuleDraft draft)
    {
        var reported = draft.Rule.Report == RuleReport.PerImage ? AnchorKinds.Image : draft.Match.Shape.Reported;
        foreach (var problem in draft.Message.Unavailable(reported))
            draft.Errors.Add(draft.MessageNode, problem);
    }

    private static string Where(RuleDraft draft, int line, int column) => $"{draft.Errors.File}:{line}:{column}";
}
