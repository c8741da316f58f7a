using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Engine;
using Spectre.Console;
using Rule = DriverAudit.Rules.Engine.Rule;

namespace DriverAudit.Scanner.Reporting;

/// <summary>
/// Human output, one line per finding in the compiler style editors and grep understand:
/// <c>path: level RULEID Name: message [anchor]</c>; then a summary. Notifications go to the
/// diagnostics writer (stderr) so they never mix with results piped elsewhere.
/// </summary>
internal sealed class TextWriterSink : IScanSink
{
    private readonly TextWriter _out;
    private readonly TextWriter _diagnostics;
    private readonly ReportOutput _output;
    private readonly bool _ownsWriter;
    private readonly bool _color;
    private readonly bool _quiet;
    private bool _completed;
    private readonly Dictionary<string, (Rule Rule, RuleLevel Level, int Count)> _byRule = new(StringComparer.Ordinal);

    /// <param name="output">Where the report goes; committed by <see cref="Complete"/>, owned by the caller.</param>
    /// <param name="console">The text writer of standard output, used when <paramref name="output"/> is stdout.</param>
    /// <param name="color">ANSI colours on every line (the caller decides: --color, NO_COLOR, a terminal).</param>
    /// <param name="quiet">Findings only: no per-rule table, no summary, notifications only at error level.</param>
    public TextWriterSink(ReportOutput output, TextWriter console, TextWriter diagnostics, bool color, bool quiet = false)
    {
        _output = output;
        _ownsWriter = !output.IsStdout;
        _out = output.IsStdout ? console : new StreamWriter(output.Stream, new System.Text.UTF8Encoding(false), 1 << 14, leaveOpen: true);
        _color = color;
        _quiet = quiet;
        _diagnostics = diagnostics;
    }

    private string? _host;

    public void Begin(ScanContext context) => _host = context.Host;

    public void Add(InputReport report)
    {
        foreach (var artifact in report.Artifacts)
        {
            var where = artifact.DisplayName;
            foreach (var f in artifact.Findings)
            {
                // Accepted risks are counted in the summary, not listed: the SARIF and JSON Lines reports keep them, marked.
                if (f.Suppression is not null) continue;
                // With a baseline, say which results a change introduced.
                var state = f.BaselineState is { } b ? $" ({b})" : "";
                _out.WriteLine($"{where}: {Level(f.Level)} {f.Rule.Id} {f.Rule.Name}: {f.Message} [{f.Location}]{state}");
                _byRule[f.Rule.Id] = _byRule.TryGetValue(f.Rule.Id, out var c) ? c with { Count = c.Count + 1 } : (f.Rule, f.Level, 1);
            }
            foreach (var n in artifact.Notifications) WriteNotification(n);
        }
        foreach (var n in report.Notifications) WriteNotification(n);
    }

    private void WriteNotification(Notification n)
    {
        if (_quiet && n.Level != NotificationLevel.Error) return;
        _diagnostics.WriteLine($"driveraudit: {n.Level.ToString().ToLowerInvariant()} {n.Code}: {n.Message}");
    }

    public void Complete(ScanSummary summary)
    {
        var byRule = _byRule.OrderBy(k => k.Key, StringComparer.Ordinal).ToList();
        if (_quiet) { }
        else if (_color)
        {
            // A person at a terminal: a table (plain text everywhere else, so logs and CI stay greppable).
            var console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(_out),
                Ansi = AnsiSupport.Yes,
                ColorSystem = ColorSystemSupport.Standard,
            });
            if (byRule.Count > 0)
            {
                var table = new Table().Border(TableBorder.Rounded).AddColumn("rule").AddColumn("name").AddColumn("level").AddColumn(new TableColumn("results").RightAligned());
                foreach (var (id, (rule, level, count)) in byRule)
                    table.AddRow(Markup.Escape(id), Markup.Escape(rule.Name), LevelMarkup(level), count.ToString(System.Globalization.CultureInfo.InvariantCulture));
                console.Write(table);
            }
            if (_host is not null) console.WriteLine($"Host: {_host}");
            console.WriteLine(SummaryLine(summary));
        }
        else
        {
            if (byRule.Count > 0)
            {
                _out.WriteLine();
                foreach (var (id, (rule, level, count)) in byRule)
                    _out.WriteLine($"  {id,-8} {rule.Name,-32} {level.ToString().ToLowerInvariant(),-8} {count,6}");
            }
            _out.WriteLine();
            if (_host is not null) _out.WriteLine($"Host: {_host}");
            _out.WriteLine(SummaryLine(summary));
        }
        _out.Flush();
        if (_ownsWriter) _out.Dispose();
        _completed = true;
        _output.Commit();
    }

    public static string SummaryLine(ScanSummary s)
    {
        int Count(RuleLevel l) => s.ByLevel.TryGetValue(l, out var n) ? n : 0;
        var failed = s.Failed > 0 ? $", {s.Failed} could not be analysed" : "";
        // Absence of findings on such an image means unknown, not clean: say how many (DA0021 names the rules).
        var partial = s.NotFullyEvaluated > 0 ? $", {s.NotFullyEvaluated} not fully evaluated" : "";
        var suppressed = s.Suppressed > 0 ? $" ({s.Suppressed} suppressed)" : "";
        return $"Scanned {s.Inputs} input(s), analysed {s.Analyzed} image(s){failed}{partial}: " +
               $"{Count(RuleLevel.Error)} error(s), {Count(RuleLevel.Warning)} warning(s), {Count(RuleLevel.Note)} note(s){suppressed}.";
    }

    private static string LevelMarkup(RuleLevel level) => level switch
    {
        RuleLevel.Error => "[red]error[/]",
        RuleLevel.Warning => "[yellow]warning[/]",
        _ => "[cyan]note[/]",
    };

    private string Level(RuleLevel level)
    {
        var name = level.ToString().ToLowerInvariant();
        if (!_color) return name;
        var code = level switch { RuleLevel.Error => "31", RuleLevel.Warning => "33", _ => "36" };
        return $"\u001b[{code}m{name}\u001b[0m";
    }

    public void Dispose()
    {
        // After Complete the file is closed and renamed: a second flush would fail.
        if (_ownsWriter && !_completed) _out.Dispose();
    }
}
