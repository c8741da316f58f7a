using System.Text.Json;
using DriverAudit.Scanner.Inputs;

namespace DriverAudit.Scanner.Engine;

/// <summary>
/// A previous SARIF log to compare against: results whose fingerprint it holds are "unchanged", the
/// others "new"; its results not seen again are "absent". Gating then counts only new results.
/// </summary>
internal sealed class Baseline
{
    private readonly HashSet<string> _fingerprints;

    private Baseline(string path, HashSet<string> fingerprints, string? guid)
    {
        Path = path;
        _fingerprints = fingerprints;
        Guid = guid;
    }

    public string Path { get; }

    /// <summary>runs[0].automationDetails.guid of the baseline, when it has one (SARIF baselineGuid).</summary>
    public string? Guid { get; }

    public int Count => _fingerprints.Count;

    public bool Contains(string fingerprint) => _fingerprints.Contains(fingerprint);

    /// <summary>Reads the fingerprints of a SARIF log. Throws <see cref="InvalidDataException"/> with a readable message.</summary>
    public static Baseline Load(string path)
    {
        try
        {
            using var doc = Parse(path);
            var fingerprints = new HashSet<string>(StringComparer.Ordinal);
            string? guid = null;
            if (!doc.RootElement.TryGetProperty("runs", out var runs) || runs.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException("it has no runs array");
            foreach (var run in runs.EnumerateArray())
            {
                if (guid is null && run.TryGetProperty("automationDetails", out var ad) && ad.TryGetProperty("guid", out var g) && g.ValueKind == JsonValueKind.String)
                    guid = g.GetString();
                if (!run.TryGetProperty("results", out var results) || results.ValueKind != JsonValueKind.Array) continue;
                foreach (var result in results.EnumerateArray())
                    if (Fingerprint(result) is { } fp) fingerprints.Add(fp);
            }
            return new Baseline(path, fingerprints, guid);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a SARIF log: {e.Message}", e);
        }
        catch (ArgumentFileException e)
        {
            throw new InvalidDataException(e.Message, e);
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith('\''))
        {
            throw new InvalidDataException($"'{path}' is not a SARIF log: {e.Message}", e);
        }
    }

    /// <summary>
    /// The baseline as JSON, read through <see cref="ArgumentFile"/> (a regular file of at most
    /// <see cref="ArgumentFile.MaxBaselineBytes"/>): a FIFO or <c>/dev/zero</c> is a clear error, not a hang.
    /// </summary>
    internal static JsonDocument Parse(string path) =>
        JsonDocument.Parse(ArgumentFile.ReadAllBytes(path, ArgumentFile.MaxBaselineBytes, "baseline"), new JsonDocumentOptions { MaxDepth = 128 });

    internal static string? Fingerprint(JsonElement result) =>
        result.ValueKind == JsonValueKind.Object
        && result.TryGetProperty("partialFingerprints", out var pf) && pf.ValueKind == JsonValueKind.Object
        && pf.TryGetProperty("primaryLocationLineHash", out var h) && h.ValueKind == JsonValueKind.String
            ? h.GetString()
            : null;
}
