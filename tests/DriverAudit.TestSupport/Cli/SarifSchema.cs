using System.Text.Json;
using Json.Schema;

namespace DriverAudit.TestSupport;

/// <summary>Validates SARIF logs against the official 2.1.0 schema (from the Sarif.Sdk package).</summary>
public static class SarifSchema
{
    private static readonly Lazy<JsonSchema> Schema = new(() =>
        JsonSchema.FromFile(Path.Combine(AppContext.BaseDirectory, "Schemata", "sarif-2.1.0.json")));

    /// <summary>Throws with every schema error when <paramref name="sarif"/> is not a valid log.</summary>
    public static void AssertValid(string sarif)
    {
        using var doc = JsonDocument.Parse(sarif);
        var result = Schema.Value.Evaluate(doc.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (result.IsValid) return;
        var errors = (result.Details ?? [])
            .Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key}: {e.Value}"))
            .Take(30);
        throw new Xunit.Sdk.XunitException("SARIF does not validate against the 2.1.0 schema:\n" + string.Join("\n", errors));
    }
}
