using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.Data.Sqlite;

namespace DriverAudit.Scanner.Fleet;

/// <summary>
/// <c>driveraudit report</c>: the fleet's current state as one self-contained HTML file — inline CSS, inline SVG charts,
/// a few lines of inline script for the filters, and a Content-Security-Policy that forbids loading anything else.
/// Every value from a log is HTML-encoded. Lists are capped (<see cref="MaxRows"/>) so the page stays usable; the
/// caption says when rows were left out, and the database has them all.
/// </summary>
internal static class FleetReport
{
    public const int MaxRows = 5000;
    private const int TopBars = 20;
    private const int MaxHostNames = 20;

    public static void Write(FleetDatabase db, TextWriter o, string source)
    {
        var c = db.Connection;
        var hosts = Count(c, "SELECT count(*) FROM hosts");
        var images = Count(c, "SELECT count(DISTINCT image_id) FROM current_host_images");
        var findings = Count(c, "SELECT count(DISTINCT finding_id) FROM current_findings");
        var pairs = Count(c, "SELECT count(*) FROM current_findings");

        o.Write("""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>DriverAudit fleet report</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1f24;background:#fff}
            h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
            .muted{color:#57606a}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
            .card{border:1px solid #d0d7de;border-radius:6px;padding:10px 16px;min-width:120px}
            .card b{display:block;font-size:22px}
            table{border-collapse:collapse;width:100%;margin-top:6px}th,td{border-bottom:1px solid #d8dee4;padding:4px 8px;text-align:left;vertical-align:top}
            th{background:#f6f8fa;position:sticky;top:0}td.n{text-align:right;font-variant-numeric:tabular-nums}
            .error{color:#cf222e}.warning{color:#9a6700}.note{color:#0969da}
            input,select{font:inherit;padding:3px 6px;margin-right:8px}
            code{font-size:12px;word-break:break-all}
            svg text{font:12px system-ui,sans-serif;fill:#1b1f24}
            </style></head>
            <body data-ready="0">

            """);
        o.Write($"<h1>DriverAudit fleet report</h1><p class=\"muted\">From {H(source)} · DriverAudit {H(Reporting.ToolInfo.SemanticVersion)}</p>\n");
        o.Write("<div class=\"cards\">");
        Card(o, "hosts", hosts);
        Card(o, "driver images", images);
        Card(o, "distinct findings", findings);
        Card(o, "findings × hosts", pairs);
        o.Write("</div>\n");

        // Findings by rule and level: one bar per rule, length = hosts × findings, coloured by level.
        var byRule = Rows(c, """
            SELECT cf.rule_id, coalesce(r.name, ''), cf.level, count(*) FROM current_findings cf LEFT JOIN rules r ON r.id = cf.rule_id
            GROUP BY cf.rule_id, cf.level ORDER BY cf.rule_id, cf.level
            """);
        o.Write("<h2>Findings by rule and level</h2>\n");
        BarChart(o, "chart-rules", byRule.Select(r => ($"{r[0]} {r[1]}", r[2], long.Parse(r[3], CultureInfo.InvariantCulture))).ToList(), "findings × hosts");
        o.Write("<p class=\"muted\">");
        foreach (var level in new[] { "error", "warning", "note" })
            o.Write($"<span class=\"{level}\">■</span> {level} ({H(byRule.Where(r => r[2] == level).Sum(r => long.Parse(r[3], CultureInfo.InvariantCulture)).ToString(CultureInfo.InvariantCulture))}) &nbsp; ");
        o.Write("</p>\n");

        var topDrivers = Rows(c, $"""
            SELECT i.name, coalesce(i.sha256, ''), count(DISTINCT cf.host_id) AS n FROM current_findings cf JOIN images i ON i.id = cf.image_id
            GROUP BY i.id ORDER BY n DESC, i.name, i.key LIMIT {TopBars}
            """);
        o.Write("<h2>Top drivers by hosts affected</h2>\n");
        BarChart(o, "chart-drivers", topDrivers.Select(r => (r[0] + (r[1].Length > 0 ? " " + r[1][..12] : ""), "warning", long.Parse(r[2], CultureInfo.InvariantCulture))).ToList(), "hosts with a finding on it");

        o.Write("<h2>Hosts</h2>\n");
        var perHost = Rows(c, """
            SELECT h.name,
              (SELECT count(DISTINCT image_id) FROM current_host_images hi WHERE hi.host_id = h.id),
              (SELECT count(*) FROM current_findings cf WHERE cf.host_id = h.id AND cf.level = 'error'),
              (SELECT count(*) FROM current_findings cf WHERE cf.host_id = h.id AND cf.level = 'warning'),
              (SELECT count(*) FROM current_findings cf WHERE cf.host_id = h.id AND cf.level = 'note'),
              (SELECT count(*) FROM current_findings cf WHERE cf.host_id = h.id AND cf.first_merge = (SELECT max(id) FROM merges)
                 AND (SELECT count(*) FROM merges) > 1)
            FROM hosts h ORDER BY h.name
            """ + $" LIMIT {MaxRows + 1}");
        Filter(o, "hosts", levels: false);
        Table(o, "hosts", ["host", "images", "errors", "warnings", "notes", "new since previous merge"], perHost, numeric: [1, 2, 3, 4, 5]);

        o.Write("<h2>Findings</h2>\n");
        var list = Rows(c, $"""
            SELECT cf.level, cf.rule_id, i.name, cf.anchor, count(*) AS n, group_concat(cf.host, ', ')
            FROM (SELECT * FROM current_findings ORDER BY host) cf JOIN images i ON i.id = cf.image_id
            GROUP BY cf.finding_id ORDER BY instr('error warning note', cf.level), n DESC, cf.rule_id, i.name, cf.anchor LIMIT {MaxRows + 1}
            """);
        // A finding on a thousand hosts would make a row of a thousand names: the first ones, and how many more.
        foreach (var row in list)
        {
            var names = row[5].Split(", ");
            if (names.Length > MaxHostNames) row[5] = string.Join(", ", names.Take(MaxHostNames)) + $" … and {names.Length - MaxHostNames} more";
        }
        Filter(o, "findings", levels: true);
        Table(o, "findings", ["level", "rule", "driver", "anchor", "hosts", "host names"], list, numeric: [4], levelColumn: 0);

        o.Write("<h2>Driver images</h2>\n");
        var imageRows = Rows(c, $"""
            SELECT i.name, coalesce(i.sha256, ''), coalesce(i.company, ''), coalesce(i.file_version, ''), coalesce(i.signer_subject, ''),
                   (SELECT count(DISTINCT host_id) FROM current_host_images hi WHERE hi.image_id = i.id) AS n
            FROM images i WHERE i.id IN (SELECT image_id FROM current_host_images) ORDER BY n DESC, i.name, i.key LIMIT {MaxRows + 1}
            """);
        Filter(o, "images", levels: false);
        Table(o, "images", ["name", "SHA-256", "company", "file version", "signer", "hosts"], imageRows, numeric: [5], codeColumn: 1);

        o.Write("""
            <script>
            "use strict";
            window.addEventListener("error", function () { document.body.setAttribute("data-ready", "error"); });
            document.querySelectorAll("[data-filter]").forEach(function (box) {
              var table = document.getElementById(box.getAttribute("data-filter"));
              var text = box.querySelector("input"), level = box.querySelector("select"), count = box.querySelector("output");
              function apply() {
                var q = text.value.toLowerCase(), l = level ? level.value : "", shown = 0;
                table.querySelectorAll("tbody tr").forEach(function (row) {
                  var ok = row.textContent.toLowerCase().indexOf(q) >= 0 && (!l || row.getAttribute("data-level") === l);
                  row.hidden = !ok;
                  if (ok) shown++;
                });
                count.value = shown + " shown";
              }
              text.addEventListener("input", apply);
              if (level) level.addEventListener("change", apply);
              apply();
            });
            document.body.setAttribute("data-ready", "1");
            </script>
            </body></html>

            """);
    }

    private static void Card(TextWriter o, string label, long value) =>
        o.Write($"<div class=\"card\"><b>{value.ToString("N0", CultureInfo.InvariantCulture)}</b>{H(label)}</div>");

    /// <summary>Horizontal bars, one row per label (several levels of one label stack), scaled to the largest total.</summary>
    private static void BarChart(TextWriter o, string id, IReadOnlyList<(string Label, string Level, long Value)> bars, string unit)
    {
        if (bars.Count == 0)
        {
            o.Write("<p class=\"muted\">Nothing to show.</p>\n");
            return;
        }
        var rows = bars.GroupBy(b => b.Label).Select(g => (Label: g.Key, Parts: g.ToList(), Total: g.Sum(p => p.Value))).ToList();
        var max = Math.Max(1, rows.Max(r => r.Total));
        const int labelWidth = 300, barWidth = 520, rowHeight = 22;
        var height = rows.Count * rowHeight + 24;
        o.Write($"<svg id=\"{id}\" role=\"img\" aria-label=\"{H(unit)}\" width=\"{labelWidth + barWidth + 80}\" height=\"{height}\" viewBox=\"0 0 {labelWidth + barWidth + 80} {height}\" xmlns=\"http://www.w3.org/2000/svg\">\n");
        for (var i = 0; i < rows.Count; i++)
        {
            var y = i * rowHeight;
            var label = rows[i].Label.Length > 44 ? rows[i].Label[..43] + "…" : rows[i].Label;
            o.Write($"<text x=\"{labelWidth - 6}\" y=\"{y + 15}\" text-anchor=\"end\">{H(label)}<title>{H(rows[i].Label)}</title></text>");
            double x = labelWidth;
            foreach (var part in rows[i].Parts.OrderBy(p => Severity(p.Level)))
            {
                var w = Math.Max(1.0, part.Value * (double)barWidth / max);
                o.Write(FormattableString.Invariant($"<rect x=\"{x:0.#}\" y=\"{y + 3}\" width=\"{w:0.#}\" height=\"{rowHeight - 6}\" fill=\"{Colour(part.Level)}\"><title>{H(part.Level)}: {part.Value}</title></rect>"));
                x += w;
            }
            o.Write(FormattableString.Invariant($"<text x=\"{x + 6:0.#}\" y=\"{y + 15}\">{rows[i].Total}</text>\n"));
        }
        o.Write($"<text x=\"{labelWidth}\" y=\"{height - 6}\" class=\"muted\">{H(unit)}</text></svg>\n");
    }

    private static int Severity(string level) => level switch { "error" => 0, "warning" => 1, _ => 2 };

    private static string Colour(string level) => level switch { "error" => "#cf222e", "warning" => "#d4a72c", _ => "#0969da" };

    private static void Filter(TextWriter o, string table, bool levels)
    {
        o.Write($"<div data-filter=\"{table}\"><input type=\"search\" placeholder=\"Filter…\" aria-label=\"Filter {table}\">");
        if (levels) o.Write("<select aria-label=\"Level\"><option value=\"\">all levels</option><option>error</option><option>warning</option><option>note</option></select>");
        o.Write("<output></output></div>\n");
    }

    private static void Table(TextWriter o, string id, string[] headers, List<string[]> rows, int[] numeric, int levelColumn = -1, int codeColumn = -1)
    {
        o.Write($"<table id=\"{id}\"><thead><tr>");
        foreach (var h in headers) o.Write($"<th>{H(h)}</th>");
        o.Write("</tr></thead><tbody>\n");
        foreach (var row in rows.Take(MaxRows))
        {
            o.Write(levelColumn >= 0 ? $"<tr data-level=\"{H(row[levelColumn])}\">" : "<tr>");
            for (var i = 0; i < row.Length; i++)
            {
                var cls = i == levelColumn ? $" class=\"{H(row[i])}\"" : numeric.Contains(i) ? " class=\"n\"" : "";
                o.Write(i == codeColumn ? $"<td><code>{H(row[i])}</code></td>" : $"<td{cls}>{H(row[i])}</td>");
            }
            o.Write("</tr>\n");
        }
        o.Write("</tbody></table>\n");
        if (rows.Count > MaxRows) o.Write($"<p class=\"muted\">Only the first {MaxRows:N0} rows are listed; the fleet database has them all.</p>\n");
    }

    private static string H(string s) => WebUtility.HtmlEncode(s);

    private static long Count(SqliteConnection c, string sql) => FleetDatabase.Scalar<long>(c, sql);

    private static List<string[]> Rows(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        using var r = cmd.ExecuteReader();
        var rows = new List<string[]>();
        while (r.Read())
        {
            var row = new string[r.FieldCount];
            for (var i = 0; i < row.Length; i++) row[i] = r.IsDBNull(i) ? "" : Convert.ToString(r.GetValue(i), CultureInfo.InvariantCulture)!;
            rows.Add(row);
        }
        return rows;
    }
}
