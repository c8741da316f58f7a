using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Patterns;

namespace DriverAudit.Scanner.RulePack;

/// <summary>A rule pattern as the user wrote it, and where (for warnings that point back at it).</summary>
/// <param name="Text">An id or name, with <c>*</c> and <c>?</c> wildcards; compared ignoring case.</param>
/// <param name="Origin">"--only", or "driveraudit.yaml:3:9: only".</param>
internal sealed record RulePattern(string Text, string Origin)
{
    public bool Matches(Rule rule) => Wildcard.IsMatch(Text, rule.Id, ignoreCase: true) || Wildcard.IsMatch(Text, rule.Name, ignoreCase: true);

    /// <summary>Splits comma lists ("DA1*,DA2001") of one option value or config entry.</summary>
    public static IEnumerable<RulePattern> Split(string value, string origin) =>
        value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(p => new RulePattern(p, origin));
}

/// <summary>A level override: rules matching <see cref="Pattern"/> report at <see cref="Level"/>.</summary>
internal sealed record LevelOverride(RulePattern Pattern, RuleLevel Level);

/// <summary>One layer of selection: the config file's, then the command line's on top.</summary>
internal sealed record SelectionLayer(IReadOnlyList<RulePattern> Only, IReadOnlyList<RulePattern> Disable, IReadOnlyList<LevelOverride> Levels)
{
    public static SelectionLayer Empty { get; } = new([], [], []);
}

/// <summary>
/// Applies <c>--only</c>, <c>--disable</c> and <c>--level</c> over a loaded rule set, layered: the config
/// file first, then the command line, which wins. A command-line <c>--only</c> starts again from every
/// rule (so it can bring back a rule the config disabled); <c>--disable</c> removes more; level overrides
/// apply in order, the last one matching a rule wins.
/// </summary>
internal static class RuleSelector
{
    public static bool TryParseLevel(string text, out RuleLevel level)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "note": level = RuleLevel.Note; return true;
            case "warning": level = RuleLevel.Warning; return true;
            case "error": level = RuleLevel.Error; return true;
            default: level = default; return false;
        }
    }

    /// <summary>Parses <c>--level ID=LEVEL</c> values (comma lists allowed); returns null after printing the problem.</summary>
    public static IReadOnlyList<LevelOverride>? ParseLevelOptions(IEnumerable<string> values, TextWriter error)
    {
        var list = new List<LevelOverride>();
        foreach (var value in values)
        {
            foreach (var item in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                int eq = item.IndexOf('=');
                if (eq <= 0 || eq == item.Length - 1)
                {
                    error.WriteLine($"driveraudit: --level '{item}': expected RULE=LEVEL, e.g. DA1003=error");
                    return null;
                }
                if (!TryParseLevel(item[(eq + 1)..], out var level))
                {
                    error.WriteLine($"driveraudit: --level '{item}': level must be note, warning or error");
                    return null;
                }
                list.Add(new LevelOverride(new RulePattern(item[..eq].Trim(), "--level"), level));
            }
        }
        return list;
    }

    /// <summary>
    /// The selected, re-levelled set, or null after printing why it cannot run (exit 2): a command-line pattern
    /// that selects no loaded rule (a typo such as <c>--only DA9999</c> must not run zero rules and pass), or a
    /// selection that leaves no rule at all. Config-file patterns that select nothing are warned about only:
    /// one file may serve several rule packs.
    /// </summary>
    public static RuleSet? Apply(RuleSet rules, IReadOnlyList<SelectionLayer> layers, TextWriter errors)
    {
        var all = rules.Rules;
        var refused = false;
        foreach (var layer in layers)
        {
            var unused = layer.Only.Concat(layer.Disable).Concat(layer.Levels.Select(l => l.Pattern))
                .Where(p => !all.Any(p.Matches));
            foreach (var p in unused)
            {
                var commandLine = p.Origin.StartsWith("--", StringComparison.Ordinal);
                refused |= commandLine;
                errors.WriteLine($"driveraudit: {(commandLine ? "error" : "warning")}: {p.Origin} '{p.Text}' matches no rule " +
                                 $"(rule ids and names: see 'driveraudit rules list'){(commandLine ? Suggestion(p.Text, all) : "")}");
            }
        }
        if (refused)
        {
            errors.WriteLine("driveraudit: nothing was scanned.");
            return null;
        }

        var kept = new HashSet<string>(all.Select(r => r.Id), StringComparer.Ordinal);
        var levels = new Dictionary<string, RuleLevel>(StringComparer.Ordinal);
        foreach (var layer in layers)
        {
            if (layer.Only.Count > 0)
                kept = new HashSet<string>(all.Where(r => layer.Only.Any(p => p.Matches(r))).Select(r => r.Id), StringComparer.Ordinal);
            foreach (var r in all)
                if (layer.Disable.Any(p => p.Matches(r))) kept.Remove(r.Id);
            foreach (var o in layer.Levels)
                foreach (var r in all.Where(o.Pattern.Matches))
                    levels[r.Id] = o.Level;
        }

        if (kept.Count == all.Count && levels.Count == 0) return rules;
        if (kept.Count == 0)
        {
            errors.WriteLine("driveraudit: error: the selection leaves no rule to run; nothing was scanned.");
            return null;
        }
        return rules.Select(r => kept.Contains(r.Id), levels);
    }

    /// <summary>"; did you mean DA1003?" for a near miss of a rule id or name, else the three nearest rule ids; empty for a wildcard.</summary>
    private static string Suggestion(string text, IReadOnlyList<Rule> all)
    {
        if (text.Contains('*') || text.Contains('?')) return "";
        var best = Spelling.Closest(text, all.SelectMany(r => new[] { r.Id, r.Name }));
        if (best is not null) return $"; did you mean {best}?";
        // No near miss: name the nearest ids anyway, so "DA9999" points somewhere useful.
        return $"; nearest rule ids: {string.Join(", ", Spelling.Nearest(text, all.Select(r => r.Id), 3))}";
    }
}
