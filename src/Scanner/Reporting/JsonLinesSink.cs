using System.Text.Json;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Engine;

namespace DriverAudit.Scanner.Reporting;

/// <summary>
/// JSON Lines for scripts: one object per result (<c>"kind":"result"</c>), per notification
/// (<c>"kind":"notification"</c>), and a final <c>"kind":"summary"</c>. Streamed, deterministic.
/// </summary>
internal sealed class JsonLinesSink : IScanSink
{
    private readonly Stream _out;
    private readonly ReportOutput _output;
    private readonly Utf8JsonWriter _json;

    /// <param name="output">Where the lines go; committed by <see cref="Complete"/>, owned by the caller.</param>
    public JsonLinesSink(ReportOutput output)
    {
        _output = output;
        _out = output.Stream;
        _json = new Utf8JsonWriter(_out);
    }

    private string? _host;

    public void Begin(ScanContext context) => _host = context.Host;

    public void Add(InputReport report)
    {
        foreach (var a in report.Artifacts)
        {
            foreach (var f in a.Findings)
            {
                _json.WriteStartObject();
                _json.WriteString("kind", "result");
                if (_host is not null) _json.WriteString("host", _host);
                _json.WriteString("ruleId", f.Rule.Id);
                _json.WriteString("rule", f.Rule.Name);
                _json.WriteString("level", f.Level.ToString().ToLowerInvariant());
                _json.WriteString("path", a.Uri);
                if (a.ModuleName is not null)
                {
                    _json.WriteString("module", a.ModuleName);
                    _json.WriteString("moduleBase", $"0x{a.ModuleBase:x}");
                    if (a.Capture is not null) _json.WriteString("capture", a.Capture);
                }
                _json.WriteString("anchorKind", f.Anchor.Kind.Name());
                _json.WriteString("anchor", f.Anchor.Key);
                _json.WriteString("message", f.Message);
                _json.WriteString("fingerprint", f.Fingerprint);
                if (f.BaselineState is not null) _json.WriteString("baselineState", f.BaselineState);
                if (f.Suppression is { } sup)
                {
                    _json.WriteStartObject("suppression");
                    _json.WriteString("justification", sup.Justification);
                    if (sup.Expires is { } until) _json.WriteString("expires", until.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
                    _json.WriteString("source", sup.Origin);
                    _json.WriteEndObject();
                }
                _json.WriteEndObject();
                EndLine();
            }
            foreach (var n in a.Notifications) Write(n);
        }
        foreach (var n in report.Notifications) Write(n);
    }

    private void Write(Notification n)
    {
        _json.WriteStartObject();
        _json.WriteString("kind", "notification");
        if (_host is not null) _json.WriteString("host", _host);
        _json.WriteString("code", n.Code);
        _json.WriteString("level", n.Level.ToString().ToLowerInvariant());
        if (n.Uri is not null) _json.WriteString("path", n.Uri);
        _json.WriteString("message", n.Message);
        _json.WriteEndObject();
        EndLine();
    }

    private void EndLine()
    {
        _json.Flush();
        _json.Reset();
        _out.WriteByte((byte)'\n');
    }

    public void Complete(ScanSummary summary)
    {
        _json.WriteStartObject();
        _json.WriteString("kind", "summary");
        if (_host is not null) _json.WriteString("host", _host);
        _json.WriteNumber("inputs", summary.Inputs);
        _json.WriteNumber("analyzed", summary.Analyzed);
        _json.WriteNumber("failed", summary.Failed);
        _json.WriteNumber("results", summary.Findings); // not suppressed
        _json.WriteNumber("suppressed", summary.Suppressed);
        _json.WriteNumber("notFullyEvaluated", summary.NotFullyEvaluated);
        foreach (var level in new[] { RuleLevel.Error, RuleLevel.Warning, RuleLevel.Note })
            _json.WriteNumber(level.ToString().ToLowerInvariant(), summary.ByLevel.TryGetValue(level, out var c) ? c : 0);
        _json.WriteNumber("exitCode", summary.ExitCode);
        _json.WriteEndObject();
        EndLine();
        _json.Dispose();
        _out.Flush();
        _output.Commit();
    }

    public void Dispose()
    {
        _json.Dispose();
    }
}
