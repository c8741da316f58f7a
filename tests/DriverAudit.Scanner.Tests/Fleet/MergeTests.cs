using System.Text.Json;
using System.Text.RegularExpressions;
using DriverAudit.Scanner.Fleet;
using Microsoft.Data.Sqlite;
using Xunit;

namespace DriverAudit.Scanner.Tests.Fleet;

/// <summary>`driveraudit merge`: de-duplication by SHA-256, host lists, the database schema and the README's queries.</summary>
public sealed class MergeTests
{
    private const string Bin = "tests/fixtures/bin/x64/";

    /// <summary>Scans <paramref name="files"/> as host <paramref name="host"/> into DIR/host.sarif.</summary>
    internal static string HostLog(TempDir dir, string host, params string[] files)
    {
        var path = Path.Combine(dir.Path, host + ".sarif");
        var r = CliRunner.Run(RepoPaths.Root, ["scan", "--host", host, "--fail-on", "none", "-o", path, .. files.Select(f => Bin + f)]);
        Assert.Equal(0, r.ExitCode);
        return path;
    }

    private static JsonElement Run(string sarif) => JsonDocument.Parse(File.ReadAllText(sarif)).RootElement.GetProperty("runs")[0].Clone();

    [Fact]
    public void Artifacts_are_deduplicated_by_sha256_and_results_list_every_host()
    {
        using var dir = new TempDir();
        var a = HostLog(dir, "alpha", "pool_legacy.sys", "signed_test.sys");
        var b = HostLog(dir, "bravo", "pool_legacy.sys", "version_pdb.sys");
        // The same bytes under another name on a third host: still one image.
        var copy = dir.File("c/renamed.sys", File.ReadAllBytes(RepoPaths.Fixture("x64", "pool_legacy.sys")));
        var cLog = Path.Combine(dir.Path, "charlie.sarif");
        Assert.Equal(0, CliRunner.Run(dir.Path, "scan", "--host", "charlie", "--fail-on", "none", "-o", cLog, copy).ExitCode);

        var fleet = Path.Combine(dir.Path, "fleet.sarif");
        var r = CliRunner.Run(dir.Path, "merge", a, b, cLog, "-o", fleet);
        Assert.Equal(0, r.ExitCode);
        SarifSchema.AssertValid(File.ReadAllText(fleet));
        var run = Run(fleet);

        Assert.Equal(["alpha", "bravo", "charlie"], run.GetProperty("properties").GetProperty("hosts").EnumerateArray().Select(h => h.GetString()));
        var artifacts = run.GetProperty("artifacts").EnumerateArray().ToList();
        var shas = artifacts.Select(x => x.GetProperty("hashes").GetProperty("sha-256").GetString()).ToList();
        Assert.Equal(3, artifacts.Count); // pool_legacy (3 hosts), signed_test, version_pdb
        Assert.Equal(shas.Distinct().Count(), shas.Count);
        var legacySha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(RepoPaths.Fixture("x64", "pool_legacy.sys"))));
        var legacy = artifacts.Single(x => x.GetProperty("hashes").GetProperty("sha-256").GetString() == legacySha);
        Assert.Equal(["alpha", "bravo", "charlie"], legacy.GetProperty("properties").GetProperty("hosts").EnumerateArray().Select(h => h.GetString()));

        // Each pool_legacy result once, with all three hosts; results of a single host's image list that host only.
        var results = run.GetProperty("results").EnumerateArray().ToList();
        var legacyIndex = artifacts.IndexOf(legacy);
        var onLegacy = results.Where(x => x.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("artifactLocation").GetProperty("index").GetInt32() == legacyIndex).ToList();
        var alone = JsonDocument.Parse(File.ReadAllText(a)).RootElement.GetProperty("runs")[0].GetProperty("results").EnumerateArray()
            .Count(x => x.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("artifactLocation").GetProperty("uri").GetString()!.EndsWith("pool_legacy.sys"));
        Assert.Equal(alone, onLegacy.Count);
        Assert.All(onLegacy, x => Assert.Equal(["alpha", "bravo", "charlie"], x.GetProperty("properties").GetProperty("hosts").EnumerateArray().Select(h => h.GetString())));
        Assert.Contains(results, x => x.GetProperty("ruleId").GetString() == "DA5002"
            && x.GetProperty("properties").GetProperty("hosts").EnumerateArray().Select(h => h.GetString()).SequenceEqual(["alpha"]));

        // Rules once, and every ruleIndex points at its rule.
        var rules = run.GetProperty("tool").GetProperty("driver").GetProperty("rules").EnumerateArray().Select(x => x.GetProperty("id").GetString()).ToList();
        Assert.Equal(rules.Distinct().Count(), rules.Count);
        Assert.All(results, x => Assert.Equal(x.GetProperty("ruleId").GetString(), rules[x.GetProperty("ruleIndex").GetInt32()]));

        // Deterministic: the same logs in another order give the same bytes.
        var again = Path.Combine(dir.Path, "again.sarif");
        Assert.Equal(0, CliRunner.Run(dir.Path, "merge", cLog, b, a, "-o", again).ExitCode);
        Assert.Equal(File.ReadAllText(fleet), File.ReadAllText(again));
    }

    [Fact]
    public void A_merged_log_merges_again_with_its_hosts()
    {
        using var dir = new TempDir();
        var a = HostLog(dir, "alpha", "pool_legacy.sys");
        var b = HostLog(dir, "bravo", "pool_legacy.sys", "wx_section.sys");
        var first = Path.Combine(dir.Path, "ab.sarif");
        Assert.Equal(0, CliRunner.Run(dir.Path, "merge", a, "-o", first).ExitCode);
        var second = Path.Combine(dir.Path, "abb.sarif");
        Assert.Equal(0, CliRunner.Run(dir.Path, "merge", first, b, "-o", second).ExitCode);
        var direct = Path.Combine(dir.Path, "direct.sarif");
        Assert.Equal(0, CliRunner.Run(dir.Path, "merge", a, b, "-o", direct).ExitCode);
        // The same fleet, but the second went through two merges of one temporary database each: both say merge 1.
        Assert.Equal(File.ReadAllText(direct), File.ReadAllText(second));
    }

    [Fact]
    public void Inventories_fill_the_image_columns_and_meet_sarif_rows_on_the_hash()
    {
        using var dir = new TempDir();
        var sarif = HostLog(dir, "alpha", "signed_test.sys");
        var inv = Path.Combine(dir.Path, "alpha.jsonl");
        Assert.Equal(0, CliRunner.Run(RepoPaths.Root, "inventory", "--host", "alpha", "-o", inv, Bin + "signed_test.sys").ExitCode);
        var db = Path.Combine(dir.Path, "fleet.sqlite");
        Assert.Equal(0, CliRunner.Run(dir.Path, "merge", sarif, inv, "--db", db).ExitCode);
        using var c = Open(db);
        var rows = Query(c, "SELECT sha256, authentihash_sha256, signer_subject, test_signed, signing_time FROM images");
        var row = Assert.Single(rows);
        Assert.Equal("10f7c6b0b3a33d337f487fcf3b07606da3ca43b2c1661367b2f252c020fba5aa", row[1]); // signatures.json
        Assert.Contains("WDKTestCert fixtures", row[2]);
        Assert.Equal("1", row[3]);
        Assert.Equal("2026-11-25T12:24:15Z", row[4]);
    }

    [Fact]
    public void Schema_matches_the_documentation()
    {
        using var dir = new TempDir();
        using (FleetDatabase.Open(Path.Combine(dir.Path, "s.sqlite"))) { }
        using var c = Open(Path.Combine(dir.Path, "s.sqlite"));
        var doc = File.ReadAllText(Path.Combine(RepoPaths.Root, "docs", "fleet-database.md"));
        var tables = Query(c, "SELECT name FROM sqlite_master WHERE type IN ('table','view') ORDER BY name").Select(r => r[0]!).ToList();
        Assert.Equal(["current_findings", "current_host_images", "finding_hosts", "findings", "host_images", "hosts", "images", "merges", "rules"], tables);
        foreach (var table in tables)
        {
            // The documented row of each table names every column, in order.
            var row = doc.Split('\n').First(l => l.StartsWith($"| `{table}` |", StringComparison.Ordinal));
            var documented = Regex.Matches(row.Split('|')[^2], "`([a-z_0-9]+)`").Select(m => m.Groups[1].Value).ToList();
            var columns = Query(c, $"SELECT name FROM pragma_table_info('{table}')").Select(r => r[0]!).ToList();
            Assert.Equal(columns, documented.Where(columns.Contains).Distinct().ToList());
            Assert.All(columns, col => Assert.Contains(col, documented));
        }
    }

    [Fact]
    public void The_readme_queries_answer_the_questions_they_claim_to()
    {
        using var dir = new TempDir();
        var db = Path.Combine(dir.Path, "fleet.sqlite");
        // Week 1: alpha has pool_legacy (untagged allocations: DA1001); bravo a clean-ish driver.
        var a1 = HostLog(dir, "alpha", "pool_legacy.sys");
        var b1 = HostLog(dir, "bravo", "version_pdb.sys");
        Assert.Equal(0, CliRunner.Run(dir.Path, "merge", a1, b1, "--db", db).ExitCode);
        var queries = ReadmeQueries();
        Assert.Equal(3, queries.Count);
        using (var c = Open(db))
        {
            Assert.Equal(["alpha"], Query(c, queries[0]).Select(r => r[0]));
            Assert.Empty(Query(c, queries[2])); // one merge: nothing is "new since the previous"
        }

        // Week 2: bravo now also has pool_legacy; charlie appears with pool_legacy.
        var b2 = HostLog(dir, "bravo", "version_pdb.sys", "pool_legacy.sys");
        var c2 = HostLog(dir, "charlie", "pool_legacy.sys");
        var r = CliRunner.Run(dir.Path, "merge", b2, c2, "--db", db);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.Stdout); // --db without -o writes no SARIF
        using (var c = Open(db))
        {
            Assert.Equal(["alpha", "bravo", "charlie"], Query(c, queries[0]).Select(x => x[0]));
            var untagged = Assert.Single(Query(c, queries[1]));
            Assert.Equal("pool_legacy.sys", untagged[0]);
            Assert.Equal("3", untagged[2]);
            var fresh = Query(c, queries[2]);
            Assert.NotEmpty(fresh);
            // New: pool_legacy's findings on bravo and charlie; alpha's are old, bravo's version_pdb findings are old.
            Assert.Equal(["bravo", "charlie"], fresh.Select(x => x[0]).Distinct());
            Assert.All(fresh, x => Assert.Equal("pool_legacy.sys", x[2]));
            Assert.Contains(fresh, x => x[1] == "DA1001");
        }
    }

    [Fact]
    public void Unreadable_logs_are_reported_and_the_rest_is_merged()
    {
        using var dir = new TempDir();
        var a = HostLog(dir, "alpha", "pool_legacy.sys");
        var bad = dir.File("broken.sarif", "{\"runs\": [ {\"results\": [ "u8.ToArray());
        var scanJson = dir.File("scan.jsonl", "{\"kind\":\"result\",\"ruleId\":\"DA1001\"}\n"u8.ToArray());
        var fleet = Path.Combine(dir.Path, "fleet.sarif");
        var r = CliRunner.Run(dir.Path, "merge", a, bad, scanJson, Path.Combine(dir.Path, "missing.sarif"), "-o", fleet);
        Assert.Equal(3, r.ExitCode);
        Assert.Contains("broken.sarif", r.Stderr);
        Assert.Contains("scan results carry no image hashes", r.Stderr);
        Assert.Contains("missing.sarif", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr); // no stack trace
        var run = Run(fleet);
        Assert.Equal(["alpha"], run.GetProperty("properties").GetProperty("hosts").EnumerateArray().Select(h => h.GetString()));
        var invocation = run.GetProperty("invocations")[0];
        Assert.False(invocation.GetProperty("executionSuccessful").GetBoolean());
        Assert.Equal(3, invocation.GetProperty("toolExecutionNotifications").GetArrayLength());
        SarifSchema.AssertValid(File.ReadAllText(fleet));
    }

    [Fact]
    public void A_log_without_a_host_is_merged_under_its_file_name_with_a_warning()
    {
        using var dir = new TempDir();
        var log = Path.Combine(dir.Path, "ws-9.sarif");
        Assert.Equal(0, CliRunner.Run(RepoPaths.Root, "scan", "--fail-on", "none", "-o", log, Bin + "pool_legacy.sys").ExitCode);
        var r = CliRunner.Run(dir.Path, "merge", log);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("names no host", r.Stderr);
        var run = JsonDocument.Parse(r.Stdout).RootElement.GetProperty("runs")[0];
        Assert.Equal(["ws-9"], run.GetProperty("properties").GetProperty("hosts").EnumerateArray().Select(h => h.GetString()));
    }

    [Fact]
    public void A_file_that_is_not_a_fleet_database_is_refused()
    {
        using var dir = new TempDir();
        var notDb = dir.File("x.sqlite", "hello, not sqlite at all, definitely more than a header's worth of bytes....................................."u8.ToArray());
        var r = CliRunner.Run(dir.Path, "merge", HostLog(dir, "alpha", "pool_legacy.sys"), "--db", notDb);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--db", r.Stderr);
    }

    /// <summary>The ```sql blocks of the README's "Sweeping a fleet" section, verbatim.</summary>
    internal static List<string> ReadmeQueries()
    {
        var readme = File.ReadAllText(Path.Combine(RepoPaths.Root, "README.md"));
        var start = readme.IndexOf("## Sweeping a fleet", StringComparison.Ordinal);
        Assert.True(start >= 0);
        var end = readme.IndexOf("\n## ", start + 5, StringComparison.Ordinal);
        var section = readme[start..(end < 0 ? readme.Length : end)];
        return [.. Regex.Matches(section, "```sql\n(.*?)```", RegexOptions.Singleline).Select(m => m.Groups[1].Value)];
    }

    internal static SqliteConnection Open(string path)
    {
        var c = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
        c.Open();
        return c;
    }

    internal static List<string?[]> Query(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        using var r = cmd.ExecuteReader();
        var rows = new List<string?[]>();
        while (r.Read())
        {
            var row = new string?[r.FieldCount];
            for (var i = 0; i < row.Length; i++) row[i] = r.IsDBNull(i) ? null : Convert.ToString(r.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);
            rows.Add(row);
        }
        return rows;
    }
}
