using System.Text;
using System.Text.Json;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Reporting;

namespace DriverAudit.Scanner.Fleet;

/// <summary>
/// <c>driveraudit inventory</c>'s output: one record per analysed driver image (a file or a dump module) with the
/// ids of the rules that fired on it, as JSON Lines (<c>"kind":"image"</c>) or CSV. Streamed in input order.
/// Inputs that are not images get no record: their notifications go to stderr.
/// </summary>
internal sealed class InventorySink : IScanSink
{
    private readonly Stream _out;
    private readonly ReportOutput _target;
    private readonly bool _csv;
    private readonly TextWriter _diagnostics;
    private readonly Utf8JsonWriter _json;
    private string? _host;

    /// <param name="target">Opened by the command before the work starts; committed by <see cref="Complete"/>, disposed by the command.</param>
    public InventorySink(ReportOutput target, bool csv, TextWriter diagnostics)
    {
        _target = target;
        _out = target.Stream;
        _csv = csv;
        _diagnostics = diagnostics;
        _json = new Utf8JsonWriter(_out, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    public void Begin(ScanContext context)
    {
        _host = context.Host;
        if (_csv) WriteCsvLine(ImageRecord.Columns);
    }

    public void Add(InputReport report)
    {
        foreach (var a in report.Artifacts)
        {
            foreach (var n in a.Notifications) Note(n);
            if (a.Image is not { } image) continue;
            var ruleIds = a.Findings.Select(f => f.Rule.Id).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            if (_csv)
            {
                WriteCsvLine([_host, a.DisplayPath, a.ModuleName, a.Length?.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    .. image.Cells(), string.Join(';', ruleIds)]);
                continue;
            }
            _json.WriteStartObject();
            _json.WriteString("kind", "image");
            WriteHead(_json, _host, a.DisplayPath, a.ModuleName, a.Length);
            image.WriteFields(_json);
            _json.WriteStartArray("ruleIds");
            foreach (var id in ruleIds) _json.WriteStringValue(id);
            _json.WriteEndArray();
            _json.WriteEndObject();
            _json.Flush();
            _json.Reset();
            _out.WriteByte((byte)'\n');
        }
        foreach (var n in report.Notifications) Note(n);
    }

    /// <summary>host, path, module, size: the fields before <see cref="ImageRecord.WriteFields"/> (shared with inspect).</summary>
    public static void WriteHead(Utf8JsonWriter w, string? host, string path, string? module, long? size)
    {
        if (host is null) w.WriteNull("host"); else w.WriteString("host", host);
        w.WriteString("path", path);
        if (module is null) w.WriteNull("module"); else w.WriteString("module", module);
        if (size is long s) w.WriteNumber("size", s); else w.WriteNull("size");
    }

    private void Note(Notification n) =>
        _diagnostics.WriteLine($"driveraudit: {n.Level.ToString().ToLowerInvariant()} {n.Code}: {n.Message}");

    private void WriteCsvLine(IEnumerable<string?> cells)
    {
        var line = string.Join(',', cells.Select(CsvCell)) + "\r\n";
        _out.Write(Encoding.UTF8.GetBytes(line));
    }

    /// <summary>
    /// RFC 4180 quoting. Text from a binary (company, product...) may start with '=', '+', '-' or '@', which
    /// spreadsheets run as a formula: such cells get a leading apostrophe (OWASP's CSV-injection advice).
    /// </summary>
    internal static string CsvCell(string? value)
    {
        if (string.IsNullOrEmpty(value)) return "";
        if (value[0] is '=' or '+' or '-' or '@' or '\t' or '\r') value = "'" + value;
        return value.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + value.Replace("\"", "\"\"") + "\"" : value;
    }

    public void Complete(ScanSummary summary)
    {
        _json.Flush();
        _json.Dispose(); // before the rename: a disposed writer must not flush into a closed file
        _target.Commit();
    }

    public void Dispose() => _json.Dispose();
}
