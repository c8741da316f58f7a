using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Inputs;

namespace DriverAudit.Scanner.Engine;

/// <summary>
/// Runs the pipeline: crawler items → parallel analysis → reporters in input order → exit code.
/// </summary>
internal sealed class ScanEngine(Func<InputItem, InputReport> analyze, ScanOptions options)
{
    public ScanEngine(InputAnalyzer analyzer, ScanOptions options) : this(analyzer.Analyze, options) { }

    public ScanSummary Run(IEnumerable<InputItem> items, IScanSink sink, ScanContext context, Action<int>? progress = null, CancellationToken cancel = default)
    {
        sink.Begin(context);
        // Expired suppressions are said first, once each: they no longer hide anything.
        if (context.Suppressions.ExpiredNotifications() is { Count: > 0 } expired) sink.Add(new InputReport([], expired));
        int inputs = 0, analyzed = 0, failed = 0, findings = 0, suppressed = 0, notEvaluated = 0;
        var byLevel = new Dictionary<RuleLevel, int>();
        RuleLevel? worst = null;

        foreach (var analyzed0 in OrderedParallel.Map(items, analyze, options.Jobs, cancel))
        {
            var report = context.Suppressions.Apply(context.Baseline is { } baseline ? Compare(analyzed0, baseline) : analyzed0);
            inputs++;
            foreach (var a in report.Artifacts)
            {
                if (a.Analyzed) analyzed++;
                if (a.Notifications.Any(n => n.Code == NotificationCodes.RuleNotEvaluated)) notEvaluated++;
                foreach (var f in a.Findings)
                {
                    // An accepted risk is counted apart and never gates.
                    if (f.Suppression is not null)
                    {
                        suppressed++;
                        continue;
                    }
                    findings++;
                    byLevel[f.Level] = byLevel.GetValueOrDefault(f.Level) + 1;
                    // With a baseline only new results gate: CI fails on what a change introduced.
                    if (f.BaselineState != "unchanged" && (worst is null || f.Level > worst)) worst = f.Level;
                }
            }
            if (report.Notifications.Concat(report.Artifacts.SelectMany(a => a.Notifications)).Any(NotificationCodes.IsInputFailure))
                failed++;
            sink.Add(report);
            progress?.Invoke(inputs);
        }

        var exit = ExitCodes.Clean;
        if (options.FailOn is RuleLevel threshold && worst is RuleLevel w && w >= threshold) exit = ExitCodes.Findings;
        // An error outranks findings. Without --fail-on-error a failed input is reported, not gated, as long as
        // something was analysed: when nothing was, a clean exit would pass a gate that checked nothing.
        if (failed > 0 && (options.FailOnInputError || analyzed == 0)) exit = ExitCodes.InputErrors;

        var summary = new ScanSummary(inputs, analyzed, failed, findings, byLevel, exit, DateTimeOffset.UtcNow) { Suppressed = suppressed, NotFullyEvaluated = notEvaluated };
        sink.Complete(summary);
        return summary;
    }

    private static InputReport Compare(InputReport report, Baseline baseline) => report with
    {
        Artifacts = report.Artifacts.Select(a => a.Findings.Count == 0 ? a : a with
        {
            Findings = a.Findings.Select(f => f with { BaselineState = baseline.Contains(f.Fingerprint) ? "unchanged" : "new" }).ToList(),
        }).ToList(),
    };
}
