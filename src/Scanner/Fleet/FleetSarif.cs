using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DriverAudit.Scanner.Reporting;
using DriverAudit.Scanner.Reporting.Sarif;

namespace DriverAudit.Scanner.Fleet;

/// <summary>
/// Writes the fleet's current state (each host as its latest merge saw it) as one SARIF run: one artifact per image
/// (de-duplicated by SHA-256) listing the hosts that have it, one result per finding listing its hosts
/// (<c>properties.hosts</c>), each rule described once. Rows are streamed in a fixed order, so the output is
/// deterministic and memory holds only the image index, not the results.
/// </summary>
internal static class FleetSarif
{
    public const string Category = "driveraudit/fleet/";

    /// <param name="notifications">Problems of this merge (unreadable logs), as toolExecutionNotifications.</param>
    public static void Write(FleetDatabase db, Stream output, IReadOnlyList<string> notifications, bool executionSuccessful)
    {
        using var w = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        var connection = db.Connection;
        w.WriteStartObject();
        w.WriteString("$schema", SarifWriter.SchemaUri);
        w.WriteString("version", "2.1.0");
        w.WriteStartArray("runs");
        w.WriteStartObject();

        w.WriteStartObject("tool");
        w.WriteStartObject("driver");
        w.WriteString("name", ToolInfo.Name);
        w.WriteString("semanticVersion", ToolInfo.SemanticVersion);
        w.WriteString("informationUri", ToolInfo.InformationUri);
        w.WriteStartArray("rules");
        var ruleIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        using (var cmd = connection.CreateCommand())
        {
            cmd.CommandText = "SELECT id, descriptor FROM rules ORDER BY id";
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                ruleIndex[r.GetString(0)] = ruleIndex.Count;
                w.WriteRawValue(r.GetString(1));
            }
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();

        w.WriteStartObject("automationDetails");
        w.WriteString("id", Category);
        w.WriteEndObject();

        w.WriteStartObject("properties");
        w.WriteStartArray("hosts");
        using (var cmd = connection.CreateCommand())
        {
            cmd.CommandText = "SELECT name FROM hosts ORDER BY name";
            using var r = cmd.ExecuteReader();
            while (r.Read()) w.WriteStringValue(r.GetString(0));
        }
        w.WriteEndArray();
        w.WriteNumber("merge", FleetDatabase.Scalar<long>(connection, "SELECT coalesce(max(id), 0) FROM merges"));
        w.WriteEndObject();

        // Artifacts first into the index (results need it); written after the results, as SARIF orders them.
        var imageIndex = new Dictionary<long, int>();
        using (var cmd = connection.CreateCommand())
        {
            cmd.CommandText = "SELECT DISTINCT i.id FROM images i JOIN current_host_images hi ON hi.image_id = i.id ORDER BY i.key";
            using var r = cmd.ExecuteReader();
            while (r.Read()) imageIndex[r.GetInt64(0)] = imageIndex.Count;
        }

        w.WriteStartArray("results");
        using (var cmd = connection.CreateCommand())
        {
            cmd.CommandText = """
                WITH paths AS MATERIALIZED (SELECT image_id, min(path) AS path FROM current_host_images GROUP BY image_id)
                SELECT cf.finding_id, cf.rule_id, cf.image_id, cf.anchor_kind, cf.anchor, cf.level, cf.message, cf.host, i.key, p.path
                FROM current_findings cf JOIN images i ON i.id = cf.image_id JOIN paths p ON p.image_id = cf.image_id
                ORDER BY cf.rule_id, i.key, cf.anchor_kind, cf.anchor, cf.host
                """;
            using var r = cmd.ExecuteReader();
            long current = -1;
            var open = false;
            while (r.Read())
            {
                var id = r.GetInt64(0);
                if (id != current)
                {
                    if (open) EndResult(w);
                    current = id;
                    open = true;
                    var ruleId = r.GetString(1);
                    var imageId = r.GetInt64(2);
                    w.WriteStartObject();
                    w.WriteString("ruleId", ruleId);
                    if (ruleIndex.TryGetValue(ruleId, out var ri)) w.WriteNumber("ruleIndex", ri);
                    w.WriteString("level", r.GetString(5));
                    w.WriteStartObject("message");
                    w.WriteString("text", r.GetString(6));
                    w.WriteEndObject();
                    w.WriteStartArray("locations");
                    w.WriteStartObject();
                    w.WriteStartObject("physicalLocation");
                    w.WriteStartObject("artifactLocation");
                    w.WriteString("uri", r.IsDBNull(9) ? "" : r.GetString(9));
                    if (imageIndex.TryGetValue(imageId, out var ai)) w.WriteNumber("index", ai);
                    w.WriteEndObject();
                    w.WriteEndObject();
                    w.WriteEndObject();
                    w.WriteEndArray();
                    w.WriteStartObject("partialFingerprints");
                    w.WriteString("driverauditFleet/v1", Fingerprint(ruleId, r.GetString(8), r.GetString(3), r.GetString(4)));
                    w.WriteEndObject();
                    w.WriteStartObject("properties");
                    w.WriteString("anchor", r.GetString(4));
                    w.WriteString("anchorKind", r.GetString(3));
                    w.WriteStartArray("hosts");
                }
                w.WriteStringValue(r.GetString(7));
                if (w.BytesPending > 1 << 16) w.Flush();
            }
            if (open) EndResult(w);
        }
        w.WriteEndArray();

        w.WriteStartArray("artifacts");
        using (var cmd = connection.CreateCommand())
        {
            cmd.CommandText = """
                WITH paths AS MATERIALIZED (SELECT image_id, min(path) AS path FROM current_host_images GROUP BY image_id)
                SELECT i.id, i.sha256, i.size, i.name, p.path, hi.module, h.name
                FROM images i JOIN current_host_images hi ON hi.image_id = i.id JOIN hosts h ON h.id = hi.host_id JOIN paths p ON p.image_id = i.id
                ORDER BY i.key, h.name, hi.path, hi.module
                """;
            using var r = cmd.ExecuteReader();
            long current = -1;
            string? lastHost = null;
            while (r.Read())
            {
                var id = r.GetInt64(0);
                var host = r.GetString(6);
                if (id != current)
                {
                    if (current != -1) EndArtifact(w);
                    current = id;
                    lastHost = null;
                    w.WriteStartObject();
                    w.WriteStartObject("location");
                    w.WriteString("uri", r.GetString(4));
                    w.WriteEndObject();
                    if (!r.IsDBNull(2)) w.WriteNumber("length", r.GetInt64(2));
                    w.WriteStartArray("roles");
                    w.WriteStringValue("analysisTarget");
                    w.WriteEndArray();
                    if (!r.IsDBNull(1))
                    {
                        w.WriteStartObject("hashes");
                        w.WriteString("sha-256", r.GetString(1));
                        w.WriteEndObject();
                    }
                    w.WriteStartObject("properties");
                    w.WriteString("name", r.GetString(3));
                    if (r.GetString(5) is { Length: > 0 } module) w.WriteString("moduleName", module);
                    w.WriteStartArray("hosts");
                }
                // One host may hold the image at several paths: list the host once.
                if (host != lastHost) w.WriteStringValue(host);
                lastHost = host;
                if (w.BytesPending > 1 << 16) w.Flush();
            }
            if (current != -1) EndArtifact(w);
        }
        w.WriteEndArray();

        w.WriteStartArray("invocations");
        w.WriteStartObject();
        w.WriteBoolean("executionSuccessful", executionSuccessful);
        w.WriteStartArray("toolExecutionNotifications");
        foreach (var n in notifications)
        {
            w.WriteStartObject();
            w.WriteString("level", "error");
            w.WriteStartObject("message");
            w.WriteString("text", n);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndArray();

        w.WriteEndObject(); // run
        w.WriteEndArray();
        w.WriteEndObject();
        w.Flush();
        output.Write("\n"u8);
    }

    private static void EndResult(Utf8JsonWriter w)
    {
        w.WriteEndArray(); // hosts
        w.WriteEndObject(); // properties
        w.WriteEndObject(); // result
    }

    private static void EndArtifact(Utf8JsonWriter w)
    {
        w.WriteEndArray(); // hosts
        w.WriteEndObject(); // properties
        w.WriteEndObject(); // artifact
    }

    /// <summary>Stable across merges and hosts: rule, image identity and anchor, never a path or a host.</summary>
    internal static string Fingerprint(string ruleId, string imageKey, string anchorKind, string anchor)
    {
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes($"{ruleId}\n{imageKey}\n{anchorKind}\n{anchor}"));
        return Convert.ToHexStringLower(digest.AsSpan(0, 16));
    }
}
