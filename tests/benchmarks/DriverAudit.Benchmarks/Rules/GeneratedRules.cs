using DriverAudit.Rules.Engine;

namespace DriverAudit.Benchmarks.Rules;

/// <summary>Rule texts made in memory for scaling measurements.</summary>
public static class GeneratedRules
{
    /// <summary><paramref name="count"/> rules each requiring an ntoskrnl import no image has (BENCH0001…).</summary>
    public static IReadOnlyList<RuleSource> NonMatchingImportRules(int count) =>
        [.. Enumerable.Range(1, count).Select(i => new RuleSource($"generated:BENCH{i:D4}.yaml", $"""
            id: BENCH{i:D4}
            name: NoSuchRoutine{i:D4}
            title: Imports a routine that does not exist
            level: note
            precision: high
            description: Generated for the rule-count scaling benchmark.
            help: None.
            message: "{"{artifact}"} imports {"{import}"}."
            match:
              import: ntoskrnl!DriverAuditBenchNoSuchRoutine{i:D4}
            """))];
}
