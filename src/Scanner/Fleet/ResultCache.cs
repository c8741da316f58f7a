using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Engine;
using Microsoft.Data.Sqlite;

namespace DriverAudit.Scanner.Fleet;

/// <summary>
/// <c>--cache FILE</c>: what analysing a file found (findings, notifications, inventory facts), keyed by the file's
/// SHA-256, the rule-pack hash and the tool build, so re-scanning an unchanged driver store only hashes files. SQLite in
/// WAL mode: several scans may share one cache. A file that is not a readable cache (truncated, overwritten, failing
/// SQLite's quick_check) is reported and rebuilt; an entry that does not decode is a miss, never trusted. A valid SQLite
/// database that is not a DriverAudit cache is refused, not overwritten.
/// </summary>
internal sealed class ResultCache : IDisposable
{
    /// <summary>PRAGMA application_id of a cache ("DACA").</summary>
    public const int ApplicationId = 0x44414341;
    public const int SchemaVersion = 1;

    /// <summary>Stands for the file's display path in stored messages: the same bytes may be met under another name.</summary>
    private const string PathToken = "\u001fpath\u001f";

    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _get, _put;
    private readonly Lock _lock = new();
    private readonly string _rules, _tool;
    private int _hits, _misses;

    private ResultCache(SqliteConnection connection, string rules, string tool)
    {
        _connection = connection;
        _rules = rules;
        _tool = tool;
        _get = connection.CreateCommand();
        _get.CommandText = "SELECT payload FROM entries WHERE sha256 = $s AND rules = $r AND tool = $t";
        _get.Parameters.Add(new SqliteParameter("$s", ""));
        _get.Parameters.AddWithValue("$r", rules);
        _get.Parameters.AddWithValue("$t", tool);
        _put = connection.CreateCommand();
        _put.CommandText = "INSERT OR REPLACE INTO entries(sha256, rules, tool, payload) VALUES ($s, $r, $t, $p)";
        _put.Parameters.Add(new SqliteParameter("$s", ""));
        _put.Parameters.AddWithValue("$r", rules);
        _put.Parameters.AddWithValue("$t", tool);
        _put.Parameters.Add(new SqliteParameter("$p", ""));
    }

    public int Hits => _hits;
    public int Misses => _misses;

    /// <summary>
    /// Opens or creates the cache. A corrupt file is reported on <paramref name="diagnostics"/> and replaced.
    /// Throws <see cref="InvalidDataException"/> for a SQLite database that is not a cache, or an unwritable path.
    /// </summary>
    public static ResultCache Open(string path, string rulePackHash, string toolVersion, TextWriter diagnostics)
    {
        try
        {
            return TryOpen(path, rulePackHash, toolVersion);
        }
        catch (Exception e) when (e is SqliteException { SqliteErrorCode: 11 or 26 } or CorruptCacheException)
        {
            // SQLITE_CORRUPT, SQLITE_NOTADB, or a failed integrity check: never trust it, start again.
            diagnostics.WriteLine($"driveraudit: warning: cache '{path}' is corrupt ({e.Message}); rebuilding it.");
            SqliteConnection.ClearAllPools();
            foreach (var f in new[] { path, path + "-wal", path + "-shm", path + "-journal" })
                if (File.Exists(f)) File.Delete(f);
            return TryOpen(path, rulePackHash, toolVersion);
        }
        catch (SqliteException e)
        {
            throw new InvalidDataException($"cache '{path}' cannot be used: {e.Message}", e);
        }
    }

    private sealed class CorruptCacheException(string message) : Exception(message);

    private static ResultCache TryOpen(string path, string rules, string tool)
    {
        var connection = SqliteLibrary.Connect(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, DefaultTimeout = 30 }.ToString());
        try
        {
            connection.Open();
            Execute(connection, "PRAGMA busy_timeout = 10000;");
            var check = Scalar(connection, "PRAGMA quick_check(1)") as string;
            if (check != "ok") throw new CorruptCacheException($"integrity check: {check}");
            var app = Convert.ToInt64(Scalar(connection, "PRAGMA application_id"), System.Globalization.CultureInfo.InvariantCulture);
            var tables = Convert.ToInt64(Scalar(connection, "SELECT count(*) FROM sqlite_master"), System.Globalization.CultureInfo.InvariantCulture);
            if (app != ApplicationId && tables > 0)
                throw new InvalidDataException($"'{path}' is a SQLite database but not a DriverAudit cache; choose another --cache file.");
            if (app == ApplicationId && Convert.ToInt64(Scalar(connection, "PRAGMA user_version"), System.Globalization.CultureInfo.InvariantCulture) != SchemaVersion)
                throw new CorruptCacheException("written by another cache schema version");
            // WAL: readers never block the writer, and concurrent scans sharing the cache serialise only their commits.
            Execute(connection, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
            if (tables == 0)
            {
                Execute(connection, $"""
                    BEGIN IMMEDIATE;
                    CREATE TABLE IF NOT EXISTS entries (
                      sha256  TEXT NOT NULL,
                      rules   TEXT NOT NULL,
                      tool    TEXT NOT NULL,
                      payload TEXT NOT NULL,
                      PRIMARY KEY (sha256, rules, tool)
                    ) WITHOUT ROWID;
                    PRAGMA application_id = {ApplicationId};
                    PRAGMA user_version = {SchemaVersion};
                    COMMIT;
                    """);
            }
            return new ResultCache(connection, rules, tool);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>The cached report of the file with this SHA-256, rebuilt for <paramref name="file"/>'s path; null on a miss.</summary>
    public InputReport? TryGet(string sha256, Inputs.InputFile file, IReadOnlyDictionary<string, Rule> rules, bool needImage)
    {
        string? payload;
        lock (_lock)
        {
            _get.Parameters["$s"].Value = sha256;
            payload = _get.ExecuteScalar() as string;
        }
        var report = payload is null ? null : Decode(payload, sha256, file, rules, needImage);
        if (report is null) Interlocked.Increment(ref _misses); else Interlocked.Increment(ref _hits);
        return report;
    }

    /// <summary>
    /// Stores the report of one file: analysed, or refused by content (not a PE, malformed headers). Reports without an
    /// artifact (unreadable file, internal error) are not stored: they say nothing about the bytes.
    /// </summary>
    public void Put(string sha256, Inputs.InputFile file, InputReport report)
    {
        if (report.Artifacts.Count != 1 || report.Notifications.Count > 0) return;
        var payload = Encode(report.Artifacts[0], file.DisplayPath);
        try
        {
            lock (_lock)
            {
                _put.Parameters["$s"].Value = sha256;
                _put.Parameters["$p"].Value = payload;
                _put.ExecuteNonQuery();
            }
        }
        catch (SqliteException)
        {
            // Busy past the timeout or disk full: the scan's result is right anyway; the next scan redoes this file.
        }
    }

    private static string Encode(ArtifactReport a, string displayPath)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            if (a.Length is long length) w.WriteNumber("length", length);
            w.WriteBoolean("analyzed", a.Analyzed);
            w.WriteStartArray("findings");
            foreach (var f in a.Findings)
            {
                w.WriteStartObject();
                w.WriteString("rule", f.Rule.Id);
                w.WriteString("level", f.Level.ToString());
                w.WriteString("message", Tokenize(f.Message, displayPath));
                w.WriteString("kind", f.Anchor.Kind.Name());
                w.WriteString("key", f.Anchor.Key);
                if (f.Anchor.Rva is uint rva) w.WriteNumber("rva", rva);
                w.WriteString("location", f.Location);
                w.WriteStartObject("values");
                foreach (var (k, v) in f.Anchor.Values.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, Tokenize(v, displayPath));
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("notifications");
            foreach (var n in a.Notifications)
            {
                w.WriteStartObject();
                w.WriteString("code", n.Code);
                w.WriteString("level", n.Level.ToString());
                w.WriteString("message", Tokenize(n.Message, displayPath));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (a.Image is { } image)
            {
                w.WriteStartObject("image");
                image.WriteFields(w);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static string Tokenize(string text, string displayPath) => displayPath.Length == 0 ? text : text.Replace(displayPath, PathToken, StringComparison.Ordinal);

    /// <summary>Null when the payload does not decode or names a rule this scan does not run: then it is a miss.</summary>
    private static InputReport? Decode(string payload, string sha256, Inputs.InputFile file, IReadOnlyDictionary<string, Rule> rules, bool needImage)
    {
        try
        {
            using var doc = JsonDocument.Parse(payload);
            var root = doc.RootElement;
            var analyzed = root.GetProperty("analyzed").GetBoolean();
            if (needImage && analyzed && !root.TryGetProperty("image", out _)) return null;
            var findings = new List<Finding>();
            foreach (var f in root.GetProperty("findings").EnumerateArray())
            {
                if (!rules.TryGetValue(f.GetProperty("rule").GetString()!, out var rule)) return null;
                var values = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var v in f.GetProperty("values").EnumerateObject()) values[v.Name] = Untokenize(v.Value.GetString()!, file.DisplayPath);
                if (AnchorKindNames.Parse(f.GetProperty("kind").GetString()!) is not { } kind) return null;
                var anchor = new Anchor(kind, f.GetProperty("key").GetString()!, values)
                {
                    Rva = f.TryGetProperty("rva", out var rva) ? rva.GetUInt32() : null,
                };
                findings.Add(new Finding(rule, Enum.Parse<RuleLevel>(f.GetProperty("level").GetString()!), Untokenize(f.GetProperty("message").GetString()!, file.DisplayPath),
                    anchor, FindingFingerprint.Compute(rule.Id, file.Uri, null, anchor.Key), f.GetProperty("location").GetString()!));
            }
            var notes = root.GetProperty("notifications").EnumerateArray()
                .Select(n => new Notification(n.GetProperty("code").GetString()!, Enum.Parse<NotificationLevel>(n.GetProperty("level").GetString()!),
                    Untokenize(n.GetProperty("message").GetString()!, file.DisplayPath), file.Uri))
                .ToList();
            return new InputReport([new ArtifactReport
            {
                Uri = file.Uri,
                Length = root.TryGetProperty("length", out var len) ? len.GetInt64() : null,
                Sha256 = sha256,
                Analyzed = analyzed,
                Findings = findings,
                Notifications = notes,
                Image = root.TryGetProperty("image", out var image) ? ImageRecord.Read(image) : null,
            }], []);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or ArgumentException or FormatException)
        {
            return null;
        }
    }

    private static string Untokenize(string text, string displayPath) => text.Replace(PathToken, displayPath, StringComparison.Ordinal);

    /// <summary>
    /// What the active rules are: each rule's id and effective level, the text of every rule file they come from and
    /// of every hash list, so editing a rule, re-levelling it or updating a list invalidates the cache.
    /// </summary>
    public static string RulePackHash(IEnumerable<Rule> active, Func<string, string?> sourceText, IEnumerable<string> listFiles)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string s) { hash.AppendData(Encoding.UTF8.GetBytes(s)); hash.AppendData([0]); }
        foreach (var rule in active.OrderBy(r => r.Id, StringComparer.Ordinal))
        {
            Add(rule.Id);
            Add(rule.Level.ToString());
            Add(rule.SourcePath);
            Add(sourceText(rule.SourcePath) ?? "(unreadable)");
        }
        foreach (var list in listFiles.Order(StringComparer.Ordinal))
        {
            Add(list);
            try { Add(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(list)))); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Add("(unreadable)"); }
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>The tool build: the version plus the identity of the compiled code (deterministic builds: same code, same id).</summary>
    public static string ToolBuild { get; } =
        $"{Reporting.ToolInfo.SemanticVersion}+{typeof(ResultCache).Assembly.ManifestModule.ModuleVersionId:N}.{typeof(Rule).Assembly.ManifestModule.ModuleVersionId:N}";

    private static object? Scalar(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }

    private static void Execute(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    public void Dispose()
    {
        _get.Dispose();
        _put.Dispose();
        _connection.Dispose();
    }
}
