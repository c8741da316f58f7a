using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace DriverAudit.Scanner.Fleet;

/// <summary>
/// Reads per-host logs into a <see cref="FleetDatabase"/> for one merge: SARIF logs of <c>scan</c> (or of an earlier
/// <c>merge</c>: results and artifacts then list their hosts) and JSON Lines inventories. One transaction per log, so
/// a log that turns out to be unreadable halfway leaves nothing behind. One log is in memory at a time: memory does
/// not grow with the number of hosts.
/// </summary>
internal sealed class FleetIngest : IDisposable
{
    /// <summary>Largest log read (a per-host SARIF is a few MB; the cap keeps a wrong argument from exhausting memory).</summary>
    public const long MaxLogBytes = 1L << 30;

    private readonly FleetDatabase _db;
    private readonly long _merge;
    private readonly Dictionary<string, long> _hosts = new(StringComparer.Ordinal);
    private readonly SqliteCommand _host, _image, _hostImage, _rule, _finding, _findingHost;

    public FleetIngest(FleetDatabase db, long merge)
    {
        _db = db;
        _merge = merge;
        _host = Prepare("INSERT INTO hosts(name, first_merge, last_merge) VALUES ($name, $m, $m) " +
                        "ON CONFLICT(name) DO UPDATE SET last_merge = excluded.last_merge RETURNING id", "$name");
        _image = Prepare("""
            INSERT INTO images(key, sha256, sha1, authentihash_sha256, name, size, machine, timestamp, pdb_name, pdb_guid, pdb_age,
                               company, product, file_version, original_filename, signed, signer_subject, signer_issuer,
                               signer_serial, signing_time, test_signed, first_merge)
            VALUES ($key, $sha256, $sha1, $authentihash, $name, $size, $machine, $timestamp, $pdb_name, $pdb_guid, $pdb_age,
                    $company, $product, $file_version, $original_filename, $signed, $signer_subject, $signer_issuer,
                    $signer_serial, $signing_time, $test_signed, $m)
            ON CONFLICT(key) DO UPDATE SET
              name = min(name, excluded.name),
              sha1 = coalesce(excluded.sha1, sha1), authentihash_sha256 = coalesce(excluded.authentihash_sha256, authentihash_sha256),
              size = coalesce(excluded.size, size), machine = coalesce(excluded.machine, machine),
              timestamp = coalesce(excluded.timestamp, timestamp), pdb_name = coalesce(excluded.pdb_name, pdb_name),
              pdb_guid = coalesce(excluded.pdb_guid, pdb_guid), pdb_age = coalesce(excluded.pdb_age, pdb_age),
              company = coalesce(excluded.company, company), product = coalesce(excluded.product, product),
              file_version = coalesce(excluded.file_version, file_version),
              original_filename = coalesce(excluded.original_filename, original_filename),
              signed = coalesce(excluded.signed, signed), signer_subject = coalesce(excluded.signer_subject, signer_subject),
              signer_issuer = coalesce(excluded.signer_issuer, signer_issuer), signer_serial = coalesce(excluded.signer_serial, signer_serial),
              signing_time = coalesce(excluded.signing_time, signing_time), test_signed = coalesce(excluded.test_signed, test_signed)
            RETURNING id
            """, "$key", "$sha256", "$sha1", "$authentihash", "$name", "$size", "$machine", "$timestamp", "$pdb_name", "$pdb_guid", "$pdb_age",
            "$company", "$product", "$file_version", "$original_filename", "$signed", "$signer_subject", "$signer_issuer",
            "$signer_serial", "$signing_time", "$test_signed");
        _hostImage = Prepare("INSERT INTO host_images(host_id, image_id, path, module, first_merge, last_merge) VALUES ($h, $i, $path, $module, $m, $m) " +
                             "ON CONFLICT DO UPDATE SET last_merge = excluded.last_merge", "$h", "$i", "$path", "$module");
        _rule = Prepare("INSERT INTO rules(id, name, level, short_description, descriptor) VALUES ($id, $name, $level, $short, $descriptor) " +
                        "ON CONFLICT(id) DO UPDATE SET name = excluded.name, level = excluded.level, short_description = excluded.short_description, " +
                        "descriptor = excluded.descriptor", "$id", "$name", "$level", "$short", "$descriptor");
        _finding = Prepare("INSERT INTO findings(rule_id, image_id, anchor_kind, anchor, level, message, first_merge) " +
                           "VALUES ($rule, $i, $kind, $anchor, $level, $message, $m) " +
                           // Whatever the order of the logs: the most severe level, the smallest message.
                           "ON CONFLICT DO UPDATE SET message = min(message, excluded.message), " +
                           "level = CASE WHEN instr('note warning error', excluded.level) > instr('note warning error', level) THEN excluded.level ELSE level END " +
                           "RETURNING id", "$rule", "$i", "$kind", "$anchor", "$level", "$message");
        _findingHost = Prepare("INSERT INTO finding_hosts(finding_id, host_id, first_merge, last_merge) VALUES ($f, $h, $m, $m) " +
                               "ON CONFLICT DO UPDATE SET last_merge = excluded.last_merge", "$f", "$h");
    }

    /// <summary>What one log added.</summary>
    internal sealed record LogSummary(IReadOnlyList<string> Hosts, int Images, int Results, string? Warning);

    /// <summary>Reads one log. Throws <see cref="InvalidDataException"/> (nothing of the log kept) when it cannot be read.</summary>
    public LogSummary Add(string path)
    {
        byte[] bytes;
        // Regular files only, size-capped: a FIFO or a wrong argument is an error, not a hang or an out-of-memory crash.
        try { bytes = Inputs.ArgumentFile.ReadAllBytes(path, MaxLogBytes, "log"); }
        catch (Inputs.ArgumentFileException e) { throw new InvalidDataException(e.Message); }
        var fallbackHost = System.IO.Path.GetFileNameWithoutExtension(path);
        using var tx = _db.Connection.BeginTransaction();
        foreach (var c in new[] { _host, _image, _hostImage, _rule, _finding, _findingHost }) c.Transaction = tx;
        _hosts.Clear(); // ids are stable, but a rolled-back log must not leave a cached id behind
        LogSummary summary;
        try
        {
            summary = IsInventory(bytes) ? AddInventory(bytes, path, fallbackHost) : AddSarif(bytes, path, fallbackHost);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a SARIF log or an inventory: {e.Message}");
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new InvalidDataException($"'{path}' does not have the shape of a DriverAudit SARIF log or inventory: {e.Message}");
        }
        tx.Commit();
        return summary;
    }

    /// <summary>An inventory is JSON Lines whose first object has "kind":"image"; anything else is read as SARIF.</summary>
    private static bool IsInventory(byte[] bytes)
    {
        var span = bytes.AsSpan();
        var end = span.IndexOf((byte)'\n');
        var first = end < 0 ? span : span[..end];
        try
        {
            var reader = new Utf8JsonReader(first);
            using var doc = JsonDocument.ParseValue(ref reader);
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("kind", out var kind)) return false;
            if (kind.ValueEquals("image")) return true;
            throw new InvalidDataException("JSON Lines of scan results carry no image hashes; merge SARIF logs (scan -f sarif) or inventories.");
        }
        catch (JsonException) { return false; } // not one object on the first line: a SARIF log (possibly indented)
    }

    private LogSummary AddSarif(byte[] bytes, string path, string fallbackHost)
    {
        using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 128 });
        if (!doc.RootElement.TryGetProperty("runs", out var runs) || runs.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"'{path}' is not a SARIF log (no runs).");
        var hosts = new SortedSet<string>(StringComparer.Ordinal);
        int images = 0, results = 0;
        string? warning = null;
        foreach (var run in runs.EnumerateArray())
        {
            var runHost = Str(Prop(Prop(run, "properties"), "host"));
            if (runHost is null && Prop(Prop(run, "properties"), "hosts") is null)
            {
                runHost = fallbackHost;
                warning = $"'{path}' names no host (scan without --host); its file name '{fallbackHost}' is used as the host label.";
            }
            if (Prop(Prop(Prop(run, "tool"), "driver"), "rules") is { ValueKind: JsonValueKind.Array } rules)
                foreach (var rule in rules.EnumerateArray())
                    AddRule(rule);

            // Artifacts: one image per artifact, except a dump (it is the parent of its modules).
            var artifacts = Prop(run, "artifacts") is { ValueKind: JsonValueKind.Array } a ? a.EnumerateArray().ToList() : [];
            var parents = new HashSet<int>(artifacts.Select(x => Int(Prop(x, "parentIndex")) ?? -1));
            var imageIds = new long?[artifacts.Count];
            var byUri = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < artifacts.Count; i++)
            {
                var art = artifacts[i];
                var uri = Str(Prop(Prop(art, "location"), "uri")) ?? "";
                var module = Str(Prop(Prop(art, "properties"), "moduleName"));
                var sha256 = Str(Prop(Prop(art, "hashes"), "sha-256"))?.ToLowerInvariant();
                if (module is null) byUri.TryAdd(uri, i);
                if (parents.Contains(i) && sha256 is null) continue;
                var artHosts = Hosts(Prop(Prop(art, "properties"), "hosts"), runHost);
                var pathOf = Int(Prop(art, "parentIndex")) is int p && p >= 0 && p < artifacts.Count
                    ? Str(Prop(Prop(artifacts[p], "location"), "uri")) ?? uri : uri;
                var key = sha256 ?? $"{string.Join(',', artHosts)}|{pathOf}|{module}";
                var id = UpsertImage(new ImageFields(key, sha256, module ?? BaseName(pathOf), Long(Prop(art, "length"))));
                imageIds[i] = id;
                images++;
                foreach (var h in artHosts)
                {
                    hosts.Add(h);
                    AddHostImage(HostId(h), id, pathOf, module);
                }
            }

            if (Prop(run, "results") is not { ValueKind: JsonValueKind.Array } resultList) continue;
            foreach (var r in resultList.EnumerateArray())
            {
                if (Str(Prop(r, "baselineState")) == "absent") continue; // fixed on that host: not something it has
                var location = Prop(Prop(Prop(r, "locations") is { ValueKind: JsonValueKind.Array } locs && locs.GetArrayLength() > 0 ? locs[0] : null, "physicalLocation"), "artifactLocation");
                var index = Int(Prop(location, "index")) ?? (Str(Prop(location, "uri")) is { } u && byUri.TryGetValue(u, out var bi) ? bi : null);
                if (index is not int ix || ix < 0 || ix >= imageIds.Length || imageIds[ix] is not long imageId) continue;
                var props = Prop(r, "properties");
                var ruleId = Str(Prop(r, "ruleId")) ?? throw new InvalidDataException($"'{path}': a result has no ruleId.");
                EnsureRule(ruleId);
                _finding.Parameters["$rule"].Value = ruleId;
                _finding.Parameters["$i"].Value = imageId;
                _finding.Parameters["$kind"].Value = Str(Prop(props, "anchorKind")) ?? "image";
                _finding.Parameters["$anchor"].Value = Str(Prop(props, "anchor")) ?? "image";
                _finding.Parameters["$level"].Value = Str(Prop(r, "level")) ?? "warning";
                _finding.Parameters["$message"].Value = Str(Prop(Prop(r, "message"), "text")) ?? "";
                var findingId = (long)_finding.ExecuteScalar()!;
                foreach (var h in Hosts(Prop(props, "hosts"), runHost))
                {
                    hosts.Add(h);
                    _findingHost.Parameters["$f"].Value = findingId;
                    _findingHost.Parameters["$h"].Value = HostId(h);
                    _findingHost.ExecuteNonQuery();
                }
                results++;
            }
        }
        return new LogSummary([.. hosts], images, results, warning);
    }

    private LogSummary AddInventory(byte[] bytes, string path, string fallbackHost)
    {
        var hosts = new SortedSet<string>(StringComparer.Ordinal);
        var images = 0;
        string? warning = null;
        var lineNumber = 0;
        foreach (var line in System.Text.Encoding.UTF8.GetString(bytes).Split('\n'))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            using var doc = JsonDocument.Parse(line);
            var x = doc.RootElement;
            if (Str(Prop(x, "kind")) != "image") throw new InvalidDataException($"'{path}' line {lineNumber}: not an inventory record.");
            var host = Str(Prop(x, "host"));
            if (host is null)
            {
                host = fallbackHost;
                warning = $"'{path}' names no host (inventory without --host); its file name '{fallbackHost}' is used as the host label.";
            }
            var itemPath = Str(Prop(x, "path")) ?? "";
            var module = Str(Prop(x, "module"));
            var sha256 = Str(Prop(x, "sha256"))?.ToLowerInvariant();
            var id = UpsertImage(new ImageFields(sha256 ?? $"{host}|{itemPath}|{module}", sha256, module ?? BaseName(itemPath), Long(Prop(x, "size")))
            {
                Record = x,
            });
            hosts.Add(host);
            AddHostImage(HostId(host), id, itemPath, module);
            images++;
        }
        return new LogSummary([.. hosts], images, 0, warning);
    }

    private sealed record ImageFields(string Key, string? Sha256, string Name, long? Size)
    {
        /// <summary>An inventory record: the rest of the columns.</summary>
        public JsonElement? Record { get; init; }
    }

    private long UpsertImage(ImageFields f)
    {
        var p = _image.Parameters;
        p["$key"].Value = f.Key;
        p["$sha256"].Value = (object?)f.Sha256 ?? DBNull.Value;
        p["$name"].Value = f.Name;
        p["$size"].Value = (object?)f.Size ?? DBNull.Value;
        var r = f.Record;
        Set(p["$sha1"], Str(Prop(r, "sha1")));
        Set(p["$authentihash"], Str(Prop(r, "authentihashSha256")));
        Set(p["$machine"], Str(Prop(r, "machine")));
        Set(p["$timestamp"], Long(Prop(r, "timestamp")));
        Set(p["$pdb_name"], Str(Prop(r, "pdbName")));
        Set(p["$pdb_guid"], Str(Prop(r, "pdbGuid")));
        Set(p["$pdb_age"], Long(Prop(r, "pdbAge")));
        Set(p["$company"], Str(Prop(r, "company")));
        Set(p["$product"], Str(Prop(r, "product")));
        Set(p["$file_version"], Str(Prop(r, "fileVersion")));
        Set(p["$original_filename"], Str(Prop(r, "originalFilename")));
        Set(p["$signed"], Bool(Prop(r, "signed")));
        Set(p["$signer_subject"], Str(Prop(r, "signerSubject")));
        Set(p["$signer_issuer"], Str(Prop(r, "signerIssuer")));
        Set(p["$signer_serial"], Str(Prop(r, "signerSerial")));
        Set(p["$signing_time"], Str(Prop(r, "signingTime")));
        Set(p["$test_signed"], Bool(Prop(r, "testSigned")));
        return (long)_image.ExecuteScalar()!;
    }

    private void AddHostImage(long hostId, long imageId, string path, string? module)
    {
        _hostImage.Parameters["$h"].Value = hostId;
        _hostImage.Parameters["$i"].Value = imageId;
        _hostImage.Parameters["$path"].Value = path;
        _hostImage.Parameters["$module"].Value = module ?? "";
        _hostImage.ExecuteNonQuery();
    }

    private void AddRule(JsonElement rule)
    {
        if (Str(Prop(rule, "id")) is not { } id) return;
        _rule.Parameters["$id"].Value = id;
        Set(_rule.Parameters["$name"], Str(Prop(rule, "name")));
        Set(_rule.Parameters["$level"], Str(Prop(Prop(rule, "defaultConfiguration"), "level")));
        Set(_rule.Parameters["$short"], Str(Prop(Prop(rule, "shortDescription"), "text")));
        _rule.Parameters["$descriptor"].Value = rule.GetRawText();
        _rule.ExecuteNonQuery();
    }

    /// <summary>A result whose rule the log does not describe still needs a rules row (the foreign key).</summary>
    private void EnsureRule(string id)
    {
        using var cmd = _db.Connection.CreateCommand();
        cmd.Transaction = _rule.Transaction;
        cmd.CommandText = "INSERT INTO rules(id, descriptor) VALUES ($id, $d) ON CONFLICT DO NOTHING";
        cmd.Parameters.AddWithValue("$id", id);
        cmd.Parameters.AddWithValue("$d", JsonSerializer.Serialize(new Dictionary<string, string> { ["id"] = id }, FleetJsonContext.Default.DictionaryStringString));
        cmd.ExecuteNonQuery();
    }

    private long HostId(string name)
    {
        if (_hosts.TryGetValue(name, out var id)) return id;
        if (HostLabel.Invalid(name) is { } why) throw new InvalidDataException($"host label '{name}': {why}");
        _host.Parameters["$name"].Value = name;
        id = (long)_host.ExecuteScalar()!;
        _hosts[name] = id;
        return id;
    }

    private static IReadOnlyList<string> Hosts(JsonElement? list, string? runHost)
    {
        if (list is { ValueKind: JsonValueKind.Array } a)
        {
            var names = a.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.String).Select(e => e.GetString()!).ToList();
            if (names.Count > 0) return names;
        }
        return runHost is null ? throw new InvalidDataException("a result or artifact names no host and the run has none.") : [runHost];
    }

    private static string BaseName(string uri)
    {
        var s = uri.Replace('\\', '/');
        var name = s[(s.LastIndexOf('/') + 1)..];
        try { return Uri.UnescapeDataString(name); } catch (UriFormatException) { return name; }
    }

    private SqliteCommand Prepare(string sql, params string[] names)
    {
        var cmd = _db.Connection.CreateCommand();
        cmd.CommandText = sql;
        foreach (var n in names) cmd.Parameters.Add(new SqliteParameter(n, DBNull.Value));
        cmd.Parameters.AddWithValue("$m", _merge);
        return cmd;
    }

    private static void Set(SqliteParameter p, object? value) => p.Value = value ?? DBNull.Value;

    internal static JsonElement? Prop(JsonElement? e, string name) =>
        e is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    internal static string? Str(JsonElement? e) => e is { ValueKind: JsonValueKind.String } s ? s.GetString() : null;

    private static int? Int(JsonElement? e) => e is { ValueKind: JsonValueKind.Number } n && n.TryGetInt32(out var v) ? v : null;

    private static long? Long(JsonElement? e) => e is { ValueKind: JsonValueKind.Number } n && n.TryGetInt64(out var v) ? v : null;

    private static long? Bool(JsonElement? e) => e?.ValueKind switch { JsonValueKind.True => 1, JsonValueKind.False => 0, _ => null };

    public void Dispose()
    {
        foreach (var c in new[] { _host, _image, _hostImage, _rule, _finding, _findingHost }) c.Dispose();
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class FleetJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
