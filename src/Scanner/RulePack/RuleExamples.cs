using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Inputs;

namespace DriverAudit.Scanner.RulePack;

/// <summary>One example file of one rule that did not behave.</summary>
internal sealed record ExampleFailure(Rule Rule, string Example, string Problem);

/// <summary>What <c>rules test</c> found: failures, and rules that name no example file.</summary>
internal sealed record ExampleResults(int RulesTested, int ExamplesRun, IReadOnlyList<ExampleFailure> Failures, IReadOnlyList<Rule> WithoutExamples);

/// <summary>
/// Runs every rule's <c>examples:</c> through the real analyzer (the same path a scan takes), so an
/// example proves the rule against the parser, not against hand-made facts.
/// </summary>
internal static class RuleExamples
{
    public static ExampleResults Run(RuleCatalog catalog, string workingDirectory)
    {
        var analyzer = new InputAnalyzer(catalog.Set, new ScanOptions(1, null, false, ComputeHashes: false));
        var reports = new Dictionary<string, (HashSet<string>? Ids, string? Problem)>(StringComparer.Ordinal);
        var failures = new List<ExampleFailure>();
        var without = new List<Rule>();
        int rules = 0, examples = 0;

        foreach (var rule in catalog.FocusRules)
        {
            rules++;
            if (rule.MatchExamples.Count + rule.NoMatchExamples.Count == 0)
            {
                without.Add(rule);
                continue;
            }
            var root = RepositoryRoot(rule.SourcePath) ?? workingDirectory;
            foreach (var (example, shouldMatch) in rule.MatchExamples.Select(e => (e, true)).Concat(rule.NoMatchExamples.Select(e => (e, false))))
            {
                examples++;
                var full = Path.GetFullPath(Path.Combine(root, example));
                if (!reports.TryGetValue(full, out var outcome)) reports[full] = outcome = Analyze(analyzer, full, example);
                if (outcome.Ids is null)
                    failures.Add(new ExampleFailure(rule, example, outcome.Problem!));
                else if (outcome.Ids.Contains(rule.Id) != shouldMatch)
                    failures.Add(new ExampleFailure(rule, example, shouldMatch ? "should match but does not" : "matches but should not"));
            }
        }
        return new ExampleResults(rules, examples, failures, without);
    }

    private static (HashSet<string>? Ids, string? Problem) Analyze(InputAnalyzer analyzer, string fullPath, string display)
    {
        if (!File.Exists(fullPath)) return (null, $"no such file ({fullPath})");
        var report = analyzer.Analyze(new InputFile(fullPath, display, Explicit: true));
        var artifact = report.Artifacts.FirstOrDefault();
        if (artifact is not { Analyzed: true })
        {
            var why = report.Notifications.Concat(artifact?.Notifications ?? []).Select(n => n.Message).FirstOrDefault() ?? "not analysed";
            return (null, "cannot be analysed: " + why);
        }
        return (artifact.Findings.Select(f => f.Rule.Id).ToHashSet(StringComparer.Ordinal), null);
    }

    /// <summary>
    /// The repository holding a rule file (the nearest folder above it with <c>.git</c>, a folder in a
    /// clone and a file in a worktree); null for embedded rules and files outside any repository.
    /// </summary>
    internal static string? RepositoryRoot(string ruleSourcePath)
    {
        if (!Path.IsPathRooted(ruleSourcePath)) return null;
        for (var dir = Path.GetDirectoryName(ruleSourcePath); !string.IsNullOrEmpty(dir); dir = Path.GetDirectoryName(dir))
        {
            var git = Path.Combine(dir, ".git");
            if (Directory.Exists(git) || File.Exists(git)) return dir;
        }
        return null;
    }

    public static void Print(ExampleResults results, TextWriter o)
    {
        foreach (var f in results.Failures)
            o.WriteLine($"FAIL {f.Rule.Id} {f.Rule.Name}: {f.Example} {f.Problem}");
        foreach (var r in results.WithoutExamples)
            o.WriteLine($"no examples: {r.Id} {r.Name}");
        int failedRules = results.Failures.Select(f => f.Rule.Id).Distinct().Count();
        o.WriteLine($"{results.RulesTested} rule(s), {results.ExamplesRun} example(s): " +
                    $"{results.RulesTested - failedRules - results.WithoutExamples.Count} rule(s) passed, {failedRules} failed, " +
                    $"{results.WithoutExamples.Count} without examples.");
    }
}
