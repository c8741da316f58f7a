using System.Globalization;
using System.Text.Json;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Reporting.Sarif;

namespace DriverAudit.Scanner.RulePack;

/// <summary>
/// The JSON of <c>rules list|show|validate|test --format json</c>. The shapes are documented in the README
/// ("Rules" section) and are a contract for scripts: keys are only ever added, never renamed or removed.
/// </summary>
internal static class RulesJson
{
    /// <summary><c>rules list</c>: an array of {id, name, level, precision, security-severity, title, source}.</summary>
    public static void WriteList(Utf8JsonWriter w, IReadOnlyList<Rule> rules)
    {
        w.WriteStartArray();
        foreach (var r in rules)
        {
            w.WriteStartObject();
            WriteSummary(w, r);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary><c>rules show</c>: list's fields, then everything the text shows, the match tree as written.</summary>
    public static void WriteRule(Utf8JsonWriter w, Rule r, string? matchSource)
    {
        w.WriteStartObject();
        WriteSummary(w, r);
        WriteStrings(w, "tags", r.Tags);
        w.WriteStartArray("cwe");
        foreach (var c in r.Cwe) w.WriteNumberValue(c);
        w.WriteEndArray();
        w.WriteString("report", r.Report == RuleReport.PerImage ? "per-image" : "per-anchor");
        w.WriteString("message", r.MessageTemplate);
        if (SarifRules.HelpUri(r) is { } uri) w.WriteString("documentation", uri);
        else w.WriteNull("documentation");
        WriteStrings(w, "references", r.References);
        w.WriteStartObject("examples");
        WriteStrings(w, "match", r.MatchExamples);
        WriteStrings(w, "no-match", r.NoMatchExamples);
        w.WriteEndObject();
        w.WriteString("description", r.Description.Trim());
        w.WriteString("help", r.Help.Trim());
        if (matchSource is null) w.WriteNull("match");
        else w.WriteString("match", matchSource);
        w.WriteEndObject();
    }

    /// <summary>
    /// <c>rules validate</c>: {valid, rules: [{id, name, source}] (the files checked, empty when invalid),
    /// errors: [{file, line, column, message}], warnings: [same]}.
    /// </summary>
    public static void WriteValidation(Utf8JsonWriter w, RuleCatalog? catalog, IReadOnlyList<RuleError> errors)
    {
        w.WriteStartObject();
        w.WriteBoolean("valid", catalog is not null);
        w.WriteStartArray("rules");
        foreach (var r in catalog?.FocusRules ?? [])
        {
            w.WriteStartObject();
            w.WriteString("id", r.Id);
            w.WriteString("name", r.Name);
            w.WriteString("source", r.SourcePath);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        WriteErrors(w, errors);
        w.WriteStartArray("warnings");
        // The embedded pack's named lists are optional by design: only the warnings the loader prints.
        foreach (var x in catalog?.Set.Warnings.Where(x => !x.File.StartsWith("embedded:", StringComparison.Ordinal)) ?? [])
            WritePosition(w, x.File, x.Line, x.Column, x.Message);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>
    /// <c>rules test</c>: {rules, examples, passed, failed (rule counts as the text summary), failures: [{id, name,
    /// example, problem}], without-examples: [{id, name}], errors: [...]} — counts 0 when the rules did not load.
    /// </summary>
    public static void WriteTest(Utf8JsonWriter w, ExampleResults? results, IReadOnlyList<RuleError> errors)
    {
        var failures = results?.Failures ?? [];
        var without = results?.WithoutExamples ?? [];
        var failedRules = failures.Select(f => f.Rule.Id).Distinct(StringComparer.Ordinal).Count();
        w.WriteStartObject();
        w.WriteNumber("rules", results?.RulesTested ?? 0);
        w.WriteNumber("examples", results?.ExamplesRun ?? 0);
        w.WriteNumber("passed", (results?.RulesTested ?? 0) - failedRules - without.Count);
        w.WriteNumber("failed", failedRules);
        w.WriteStartArray("failures");
        foreach (var f in failures)
        {
            w.WriteStartObject();
            w.WriteString("id", f.Rule.Id);
            w.WriteString("name", f.Rule.Name);
            w.WriteString("example", f.Example);
            w.WriteString("problem", f.Problem);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("without-examples");
        foreach (var r in without)
        {
            w.WriteStartObject();
            w.WriteString("id", r.Id);
            w.WriteString("name", r.Name);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        WriteErrors(w, errors);
        w.WriteEndObject();
    }

    /// <summary>The security-severity as text ("-" when the rule has none), as the tables print it.</summary>
    public static string Severity(Rule r) => r.SecuritySeverity is double s ? s.ToString("0.0", CultureInfo.InvariantCulture) : "-";

    private static void WriteSummary(Utf8JsonWriter w, Rule r)
    {
        w.WriteString("id", r.Id);
        w.WriteString("name", r.Name);
        w.WriteString("level", SarifRules.LevelName(r.Level));
        w.WriteString("precision", r.Precision);
        if (r.SecuritySeverity is not null) w.WriteString("security-severity", Severity(r));
        else w.WriteNull("security-severity");
        w.WriteString("title", r.Title);
        w.WriteString("source", r.SourcePath);
    }

    private static void WriteErrors(Utf8JsonWriter w, IReadOnlyList<RuleError> errors)
    {
        w.WriteStartArray("errors");
        foreach (var e in errors) WritePosition(w, e.File, e.Line, e.Column, e.Message);
        w.WriteEndArray();
    }

    private static void WritePosition(Utf8JsonWriter w, string file, int line, int column, string message)
    {
        w.WriteStartObject();
        w.WriteString("file", file);
        w.WriteNumber("line", line);
        w.WriteNumber("column", column);
        w.WriteString("message", message);
        w.WriteEndObject();
    }

    private static void WriteStrings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }
}
