using DriverAudit.Rules.Engine;

namespace DriverAudit.Scanner.Engine;

/// <summary>What a reporter needs to know before the first input.</summary>
/// <param name="Rules">The active rules, ordered by id (SARIF rules[]).</param>
/// <param name="SourceRoot">Absolute path URIs are relative to.</param>
/// <param name="Baseline">A previous log to compare with (--baseline), or null.</param>
/// <param name="Host">The machine the inputs come from (--host), recorded in every output; null when unknown.</param>
internal sealed record ScanContext(IReadOnlyList<Rule> Rules, string SourceRoot, string SourceRootUri, DateTimeOffset StartTime, Baseline? Baseline = null, string? Host = null)
{
    /// <summary>The config file's suppressions, split by date (see <see cref="SuppressionSet"/>).</summary>
    public SuppressionSet Suppressions { get; init; } = SuppressionSet.None;
}

/// <summary>Totals, known when the scan ends.</summary>
/// <param name="Findings">Results not suppressed (<see cref="ByLevel"/> counts them by level).</param>
internal sealed record ScanSummary(int Inputs, int Analyzed, int Failed, int Findings, IReadOnlyDictionary<RuleLevel, int> ByLevel, int ExitCode, DateTimeOffset EndTime)
{
    /// <summary>Results a suppression of the config file accepted: reported, marked, not gating.</summary>
    public int Suppressed { get; init; }
    /// <summary>Analysed images on which some rule could not be evaluated (a DA0021 notification): unknown, not clean.</summary>
    public int NotFullyEvaluated { get; init; }
}

/// <summary>
/// A reporter. Receives input reports one at a time in deterministic (input) order, on one thread,
/// so it can stream: nothing forces it to hold the whole scan in memory.
/// </summary>
internal interface IScanSink : IDisposable
{
    void Begin(ScanContext context);
    void Add(InputReport report);
    /// <summary>Finishes the output (for files: the atomic rename happens here).</summary>
    void Complete(ScanSummary summary);
}
