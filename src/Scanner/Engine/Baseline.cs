using System.Text.Json;

namespace DriverAudit.Scanner.Engine;

/// <summary>
/// A previous SARIF log to compare against: results whose fingerprint it holds are "unchanged", the
/// others "new"; its results not seen again are "absent". Gating then counts only new results.
/// </summary>
public sealed class Baseline
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
            using var stream = File.OpenRead(path);
            using var doc = JsonDocument.Parse(stream, new JsonDocumentOptions { MaxDepth = 128 });
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
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"cannot read baseline '{path}': {e.Message}", e);
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith('\''))
        {
            throw new InvalidDataException($"'{path}' is not a SARIF log: {e.Message}", e);
        }
    }

    internal static string? Fingerprint(JsonElement result) =>
        result.ValueKind == JsonValueKind.Object
        && result.TryGetProperty("partialFingerprints", out var pf) && pf.ValueKind == JsonValueKind.Object
        && pf.TryGetProperty("primaryLocationLineHash", out var h) && h.ValueKind == JsonValueKind.String
            ? h.GetString()
            : null;
}
