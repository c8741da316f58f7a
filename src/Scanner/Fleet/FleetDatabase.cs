using Microsoft.Data.Sqlite;

namespace DriverAudit.Scanner.Fleet;

/// <summary>
/// The fleet database (SQLite): hosts, images, rules, findings and which host has which, with the merge that first and
/// last saw each pairing, so "new since the previous merge" is a query. Schema and queries: docs/fleet-database.md.
/// </summary>
internal sealed class FleetDatabase : IDisposable
{
    /// <summary>PRAGMA user_version of the schema this build writes; an older or foreign file is refused.</summary>
    public const int SchemaVersion = 1;

    /// <summary>application_id: marks the file as a DriverAudit fleet database ("DAFL").</summary>
    public const int ApplicationId = 0x4441464C;

    internal const string Schema = """
        CREATE TABLE merges (
          id           INTEGER PRIMARY KEY,
          time_utc     TEXT NOT NULL,
          tool_version TEXT NOT NULL,
          logs         INTEGER NOT NULL
        );
        CREATE TABLE hosts (
          id          INTEGER PRIMARY KEY,
          name        TEXT NOT NULL UNIQUE,
          first_merge INTEGER NOT NULL REFERENCES merges(id),
          last_merge  INTEGER NOT NULL REFERENCES merges(id)
        );
        CREATE TABLE images (
          id                  INTEGER PRIMARY KEY,
          key                 TEXT NOT NULL UNIQUE,
          sha256              TEXT,
          sha1                TEXT,
          authentihash_sha256 TEXT,
          name                TEXT NOT NULL,
          size                INTEGER,
          machine             TEXT,
          timestamp           INTEGER,
          pdb_name            TEXT,
          pdb_guid            TEXT,
          pdb_age             INTEGER,
          company             TEXT,
          product             TEXT,
          file_version        TEXT,
          original_filename   TEXT,
          signed              INTEGER,
          signer_subject      TEXT,
          signer_issuer       TEXT,
          signer_serial       TEXT,
          signing_time        TEXT,
          test_signed         INTEGER,
          first_merge         INTEGER NOT NULL REFERENCES merges(id)
        );
        CREATE INDEX images_sha256 ON images(sha256);
        CREATE INDEX images_name ON images(name COLLATE NOCASE);
        CREATE TABLE host_images (
          host_id     INTEGER NOT NULL REFERENCES hosts(id),
          image_id    INTEGER NOT NULL REFERENCES images(id),
          path        TEXT NOT NULL,
          module      TEXT NOT NULL DEFAULT '',
          first_merge INTEGER NOT NULL REFERENCES merges(id),
          last_merge  INTEGER NOT NULL REFERENCES merges(id),
          PRIMARY KEY (host_id, image_id, path, module)
        );
        CREATE INDEX host_images_image ON host_images(image_id);
        CREATE TABLE rules (
          id                TEXT PRIMARY KEY,
          name              TEXT,
          level             TEXT,
          short_description TEXT,
          descriptor        TEXT NOT NULL
        );
        CREATE TABLE findings (
          id          INTEGER PRIMARY KEY,
          rule_id     TEXT NOT NULL REFERENCES rules(id),
          image_id    INTEGER NOT NULL REFERENCES images(id),
          anchor_kind TEXT NOT NULL,
          anchor      TEXT NOT NULL,
          level       TEXT NOT NULL,
          message     TEXT NOT NULL,
          first_merge INTEGER NOT NULL REFERENCES merges(id),
          UNIQUE (rule_id, image_id, anchor_kind, anchor)
        );
        CREATE INDEX findings_image ON findings(image_id);
        CREATE TABLE finding_hosts (
          finding_id  INTEGER NOT NULL REFERENCES findings(id),
          host_id     INTEGER NOT NULL REFERENCES hosts(id),
          first_merge INTEGER NOT NULL REFERENCES merges(id),
          last_merge  INTEGER NOT NULL REFERENCES merges(id),
          PRIMARY KEY (finding_id, host_id)
        ) WITHOUT ROWID;
        CREATE INDEX finding_hosts_host ON finding_hosts(host_id);
        -- What each host has now: the rows its latest merge saw.
        CREATE VIEW current_host_images AS
          SELECT hi.* FROM host_images hi JOIN hosts h ON h.id = hi.host_id WHERE hi.last_merge = h.last_merge;
        CREATE VIEW current_findings AS
          SELECT f.id AS finding_id, f.rule_id, f.image_id, f.anchor_kind, f.anchor, f.level, f.message,
                 fh.host_id, h.name AS host, fh.first_merge, fh.last_merge
          FROM finding_hosts fh JOIN hosts h ON h.id = fh.host_id JOIN findings f ON f.id = fh.finding_id
          WHERE fh.last_merge = h.last_merge;
        """;

    private FleetDatabase(SqliteConnection connection, string path)
    {
        Connection = connection;
        Path = path;
    }

    public SqliteConnection Connection { get; }
    public string Path { get; }

    /// <summary>Opens (or creates) a fleet database. Throws <see cref="InvalidDataException"/> for a file that is not one.</summary>
    /// <param name="readOnly">Open an existing database for reading only (report): never created or changed.</param>
    public static FleetDatabase Open(string path, bool readOnly = false)
    {
        var exists = File.Exists(path) && new FileInfo(path).Length > 0;
        if (readOnly && !exists) throw new InvalidDataException($"'{path}' does not exist or is empty.");
        var connection = SqliteLibrary.Connect(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Pooling = false,
            Mode = readOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWriteCreate,
        }.ToString());
        try
        {
            connection.Open();
            if (exists)
            {
                var app = Scalar<long>(connection, "PRAGMA application_id");
                var version = Scalar<long>(connection, "PRAGMA user_version");
                if (app != ApplicationId)
                    throw new InvalidDataException($"'{path}' is not a DriverAudit fleet database.");
                if (version != SchemaVersion)
                    throw new InvalidDataException($"'{path}' has fleet schema version {version}; this build reads version {SchemaVersion}.");
            }
            else
            {
                using var tx = connection.BeginTransaction();
                Execute(connection, Schema + $"\nPRAGMA application_id = {ApplicationId};\nPRAGMA user_version = {SchemaVersion};");
                tx.Commit();
            }
            // WAL and NORMAL sync: a merge commits once per log, and a full fsync per commit made a 100-host merge
            // spend most of its time waiting for the disk (measured: tests/benchmarks/bench-fleet.sh).
            if (!readOnly) Execute(connection, "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
            return new FleetDatabase(connection, path);
        }
        catch (SqliteException e)
        {
            connection.Dispose();
            throw new InvalidDataException($"'{path}' cannot be used as a fleet database: {e.Message}", e);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>Starts a merge: a new generation that every row this merge sees is stamped with.</summary>
    public long BeginMerge(string toolVersion, int logs)
    {
        using var cmd = Connection.CreateCommand();
        cmd.CommandText = "INSERT INTO merges(time_utc, tool_version, logs) VALUES ($t, $v, $n) RETURNING id";
        cmd.Parameters.AddWithValue("$t", DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture));
        cmd.Parameters.AddWithValue("$v", toolVersion);
        cmd.Parameters.AddWithValue("$n", logs);
        return (long)cmd.ExecuteScalar()!;
    }

    internal static T Scalar<T>(SqliteConnection connection, string sql)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        return (T)Convert.ChangeType(cmd.ExecuteScalar()!, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    internal static void Execute(SqliteConnection connection, string sql)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    public void Dispose() => Connection.Dispose();
}
