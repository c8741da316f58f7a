using System.Text.Json;

namespace DriverAudit.Rules.Lists;

/// <summary>Which text format a list is in; <see cref="HashListParser.Detect"/> decides from the content.</summary>
internal enum HashListFormat { Plain, LolDriversCsv, LolDriversJson }

/// <summary>
/// Parses hash-list TEXT (no I/O; the scanner reads files). Formats:
/// <list type="bullet">
/// <item>plain: one hex hash per line (64 digits: SHA-256, 40: Authenticode SHA-1), optionally followed by
/// whitespace and anything (a file name, as <c>sha256sum</c> writes); <c>#</c> starts a comment; blank lines are skipped;</item>
/// <item>LOLDrivers <c>drivers.csv</c>: columns <c>KnownVulnerableSamples_SHA256</c>,
/// <c>KnownVulnerableSamples_Authentihash_SHA256</c>, <c>KnownVulnerableSamples_Authentihash_SHA1</c>, each cell a
/// <c>", "</c>-separated list;</item>
/// <item>LOLDrivers <c>drivers.json</c>: an array of drivers, each with <c>KnownVulnerableSamples[]</c> holding
/// <c>SHA256</c> and <c>Authentihash: {SHA256, SHA1}</c>.</item>
/// </list>
/// A malformed list is an error (with its line); LOLDrivers cells that are not hashes (empty, "-") are skipped.
/// </summary>
internal static class HashListParser
{
    public const string CsvSha256 = "KnownVulnerableSamples_SHA256";
    public const string CsvAuthentihashSha256 = "KnownVulnerableSamples_Authentihash_SHA256";
    public const string CsvAuthentihashSha1 = "KnownVulnerableSamples_Authentihash_SHA1";
    private const int MaxJsonDepth = 64;

    public static HashListFormat Detect(string text)
    {
        var t = text.AsSpan().TrimStart('\uFEFF').TrimStart();
        if (t.Length > 0 && (t[0] == '[' || t[0] == '{')) return HashListFormat.LolDriversJson;
        int eol = t.IndexOfAny('\r', '\n');
        var first = eol < 0 ? t : t[..eol];
        return first.Contains(CsvSha256, StringComparison.Ordinal) || first.Contains(CsvAuthentihashSha256, StringComparison.Ordinal)
            ? HashListFormat.LolDriversCsv : HashListFormat.Plain;
    }

    /// <summary>Parses <paramref name="text"/>; returns null and an error (naming a line where it can) when malformed.</summary>
    public static HashList? Parse(string text, out string? error) => Detect(text) switch
    {
        HashListFormat.LolDriversJson => ParseJson(text, out error),
        HashListFormat.LolDriversCsv => ParseCsv(text, out error),
        _ => ParsePlain(text, out error),
    };

    public static HashList? ParsePlain(string text, out string? error)
    {
        error = null;
        var list = new HashList();
        int lineNo = 0;
        foreach (var raw in text.AsSpan().TrimStart('\uFEFF').EnumerateLines())
        {
            lineNo++;
            var line = raw;
            int hash = line.IndexOf('#');
            if (hash >= 0) line = line[..hash];
            line = line.Trim();
            if (line.IsEmpty) continue;
            int space = line.IndexOfAny(' ', '\t');
            var token = space < 0 ? line : line[..space];
            if (HashList.IsHex(token, 64))
            {
                string h = token.ToString().ToLowerInvariant();
                list.FileSha256.Add(h);
                list.AuthentihashSha256.Add(h);
            }
            else if (HashList.IsHex(token, 40)) list.AuthentihashSha1.Add(token.ToString().ToLowerInvariant());
            else
            {
                error = $"line {lineNo}: '{Shorten(token)}' is not a SHA-256 (64 hex digits) or SHA-1 (40 hex digits) hash";
                return null;
            }
        }
        return list;
    }

    public static HashList? ParseCsv(string text, out string? error)
    {
        error = null;
        var rows = Csv.Read(text.TrimStart('\uFEFF'), out var csvError);
        if (rows is null) { error = csvError; return null; }
        if (rows.Count == 0) { error = "the CSV file is empty"; return null; }
        var header = rows[0].Fields;
        int sha = header.IndexOf(CsvSha256), authSha = header.IndexOf(CsvAuthentihashSha256), authSha1 = header.IndexOf(CsvAuthentihashSha1);
        if (sha < 0 && authSha < 0)
        {
            error = $"line 1: a LOLDrivers CSV header needs the column {CsvSha256} or {CsvAuthentihashSha256}";
            return null;
        }
        var list = new HashList();
        for (int r = 1; r < rows.Count; r++)
        {
            var fields = rows[r].Fields;
            AddCell(fields, sha, 64, list.FileSha256);
            AddCell(fields, authSha, 64, list.AuthentihashSha256);
            AddCell(fields, authSha1, 40, list.AuthentihashSha1);
        }
        return list;
    }

    private static void AddCell(List<string> fields, int column, int length, HashSet<string> into)
    {
        if (column < 0 || column >= fields.Count) return;
        foreach (var part in fields[column].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            if (HashList.IsHex(part, length)) into.Add(part.ToLowerInvariant());
    }

    public static HashList? ParseJson(string text, out string? error)
    {
        error = null;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(text.TrimStart('\uFEFF'), new JsonDocumentOptions { MaxDepth = MaxJsonDepth, AllowTrailingCommas = false });
        }
        catch (JsonException ex)
        {
            error = $"line {(ex.LineNumber ?? 0) + 1}: invalid JSON: {ex.Message}";
            return null;
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Array)
            {
                error = "a LOLDrivers JSON list is an array of drivers (drivers.json)";
                return null;
            }
            var list = new HashList();
            foreach (var driver in root.EnumerateArray())
            {
                if (driver.ValueKind != JsonValueKind.Object
                    || !driver.TryGetProperty("KnownVulnerableSamples", out var samples) || samples.ValueKind != JsonValueKind.Array)
                    continue;
                foreach (var sample in samples.EnumerateArray())
                {
                    if (sample.ValueKind != JsonValueKind.Object) continue;
                    AddJson(sample, "SHA256", 64, list.FileSha256);
                    if (sample.TryGetProperty("Authentihash", out var auth) && auth.ValueKind == JsonValueKind.Object)
                    {
                        AddJson(auth, "SHA256", 64, list.AuthentihashSha256);
                        AddJson(auth, "SHA1", 40, list.AuthentihashSha1);
                    }
                }
            }
            return list;
        }
    }

    private static void AddJson(JsonElement obj, string name, int length, HashSet<string> into)
    {
        if (obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() is { } s && HashList.IsHex(s.Trim(), length))
            into.Add(s.Trim().ToLowerInvariant());
    }

    private static string Shorten(ReadOnlySpan<char> s) => s.Length <= 40 ? s.ToString() : s[..37].ToString() + "...";
}

/// <summary>RFC 4180 CSV: quoted fields with <c>""</c> escapes and embedded newlines; CRLF or LF rows.</summary>
internal static class Csv
{
    internal sealed record Row(int Line, List<string> Fields);

    public static List<Row>? Read(string text, out string? error)
    {
        error = null;
        var rows = new List<Row>();
        var fields = new List<string>();
        var field = new System.Text.StringBuilder();
        int line = 1, rowLine = 1, quoteLine = 0, i = 0;
        bool inQuotes = false, rowHasContent = false;
        while (i < text.Length)
        {
            char c = text[i];
            if (inQuotes)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i += 2; continue; }
                    inQuotes = false;
                    i++;
                    if (i < text.Length && text[i] is not (',' or '\r' or '\n'))
                    {
                        error = $"line {line}: unexpected character after a closing quote";
                        return null;
                    }
                    continue;
                }
                if (c == '\n') line++;
                field.Append(c);
                i++;
                continue;
            }
            switch (c)
            {
                case '"' when field.Length == 0:
                    inQuotes = true;
                    quoteLine = line;
                    rowHasContent = true;
                    break;
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    rowHasContent = true;
                    break;
                case '\r' or '\n':
                    if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
                    if (rowHasContent || field.Length > 0)
                    {
                        fields.Add(field.ToString());
                        rows.Add(new Row(rowLine, fields));
                        fields = [];
                        field.Clear();
                    }
                    rowHasContent = false;
                    line++;
                    rowLine = line;
                    break;
                default:
                    field.Append(c);
                    rowHasContent = true;
                    break;
            }
            i++;
        }
        if (inQuotes)
        {
            error = $"line {quoteLine}: unterminated quoted field";
            return null;
        }
        if (rowHasContent || field.Length > 0)
        {
            fields.Add(field.ToString());
            rows.Add(new Row(rowLine, fields));
        }
        return rows;
    }
}
