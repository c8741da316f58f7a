using System.Globalization;
using System.Text;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Engine;

namespace DriverAudit.Scanner.Reporting;

/// <summary>
/// A Markdown report (<c>--format markdown</c>, <c>-o report.md</c>): totals, a table per rule, then the findings
/// and notifications, each list capped so the page stays readable and fits a GitHub job summary (1 MiB).
/// Findings are streamed to a temporary file and copied after the totals, so memory stays flat.
/// </summary>
internal sealed class MarkdownSink : IScanSink
{
    /// <summary>Finding rows shown; the rest are counted ("… and N more").</summary>
    public const int MaxFindingRows = 500;
    public const int MaxNotificationRows = 100;

    private readonly ReportOutput _output;
    private readonly StreamWriter _out;
    private readonly FileStream _rows = TempFiles.CreateScratch();
    private readonly StreamWriter _rowWriter;
    private readonly StringBuilder _notes = new();
    private readonly Dictionary<string, (Rule Rule, RuleLevel Level, int Count)> _byRule = new(StringComparer.Ordinal);
    private int _rowCount, _noteCount;
    private bool _baseline;
    private bool _completed;

    /// <param name="output">Where the page goes; committed by <see cref="Complete"/>, owned by the caller.</param>
    public MarkdownSink(ReportOutput output)
    {
        _output = output;
        _out = new StreamWriter(output.Stream, new UTF8Encoding(false), 1 << 14, leaveOpen: true);
        _rowWriter = new StreamWriter(_rows, new UTF8Encoding(false), 1 << 14, leaveOpen: true);
    }

    public void Begin(ScanContext context) => _baseline = context.Baseline is not null;

    public void Add(InputReport report)
    {
        foreach (var a in report.Artifacts)
        {
            var where = a.DisplayName;
            foreach (var f in a.Findings)
            {
                if (f.Suppression is not null) continue; // counted in the totals; SARIF and JSON Lines keep them, marked
                _byRule[f.Rule.Id] = _byRule.TryGetValue(f.Rule.Id, out var c) ? c with { Count = c.Count + 1 } : (f.Rule, f.Level, 1);
                if (++_rowCount > MaxFindingRows) continue;
                var state = _baseline ? $" {f.BaselineState ?? "new"} |" : "";
                _rowWriter.WriteLine($"| {LevelName(f.Level)} |{state} {f.Rule.Id} | `{Code(where)}` | {Cell(f.Message)} |");
            }
            foreach (var n in a.Notifications) Note(n);
        }
        foreach (var n in report.Notifications) Note(n);
    }

    private void Note(Notification n)
    {
        if (++_noteCount > MaxNotificationRows) return;
        _notes.Append(CultureInfo.InvariantCulture, $"- **{n.Level.ToString().ToLowerInvariant()}** {n.Code}: {Cell(n.Message)}\n");
    }

    public void Complete(ScanSummary summary)
    {
        int Count(RuleLevel l) => summary.ByLevel.TryGetValue(l, out var n) ? n : 0;
        var o = _out;
        o.WriteLine("## DriverAudit");
        o.WriteLine();
        var failed = summary.Failed > 0 ? $", {summary.Failed} could not be analysed" : "";
        var partial = summary.NotFullyEvaluated > 0 ? $", {summary.NotFullyEvaluated} not fully evaluated" : "";
        var suppressed = summary.Suppressed > 0 ? $" ({summary.Suppressed} suppressed)" : "";
        o.WriteLine($"**{Count(RuleLevel.Error)} error(s), {Count(RuleLevel.Warning)} warning(s), {Count(RuleLevel.Note)} note(s)**{suppressed} " +
                    $"in {summary.Analyzed} image(s) from {summary.Inputs} input(s){failed}{partial}. Exit code {summary.ExitCode}.");
        if (_byRule.Count > 0)
        {
            o.WriteLine();
            o.WriteLine("| rule | name | level | results |");
            o.WriteLine("|---|---|---|---:|");
            foreach (var (id, (rule, level, count)) in _byRule.OrderBy(k => k.Key, StringComparer.Ordinal))
                o.WriteLine($"| {id} | {Cell(rule.Name)} | {LevelName(level)} | {count.ToString(CultureInfo.InvariantCulture)} |");
            o.WriteLine();
            o.WriteLine("### Findings");
            o.WriteLine();
            o.WriteLine(_baseline ? "| level | baseline | rule | where | message |" : "| level | rule | where | message |");
            o.WriteLine(_baseline ? "|---|---|---|---|---|" : "|---|---|---|---|");
            o.Flush();
            _rowWriter.Flush();
            _rows.Position = 0;
            _rows.CopyTo(o.BaseStream);
            if (_rowCount > MaxFindingRows)
            {
                o.WriteLine();
                o.WriteLine($"_… and {_rowCount - MaxFindingRows:N0} more; the SARIF or JSON report has them all._");
            }
        }
        if (_noteCount > 0)
        {
            o.WriteLine();
            o.WriteLine("### Notifications");
            o.WriteLine();
            o.Write(_notes.ToString());
            if (_noteCount > MaxNotificationRows) o.WriteLine($"- _… and {_noteCount - MaxNotificationRows:N0} more._");
        }
        o.Dispose();
        _completed = true;
        _output.Commit();
    }

    private static string LevelName(RuleLevel level) => level.ToString().ToLowerInvariant();

    /// <summary>A table cell: one line, pipes escaped, no HTML.</summary>
    private static string Cell(string text) =>
        text.Replace("\r", " ").Replace("\n", " ").Replace("|", "\\|").Replace("<", "&lt;");

    private static string Code(string text) => text.Replace("`", "'").Replace("|", "\\|");

    public void Dispose()
    {
        if (!_completed) _out.Dispose(); // after Complete the file is closed and renamed
        _rowWriter.Dispose();
        _rows.Dispose();
    }
}
