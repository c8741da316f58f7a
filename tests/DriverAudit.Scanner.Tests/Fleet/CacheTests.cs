using System.Text.RegularExpressions;
using DriverAudit.Scanner.Fleet;
using Microsoft.Data.Sqlite;
using Xunit;

namespace DriverAudit.Scanner.Tests.Fleet;

/// <summary>--cache: hits and misses, invalidation by rules, levels and build, corruption, sharing.</summary>
public sealed class CacheTests
{
    private static (int Hits, int Misses) Stats(CliRunner.Outcome r)
    {
        var m = Regex.Match(r.Stderr, @"Cache: (\d+) hit\(s\), (\d+) miss\(es\)");
        Assert.True(m.Success, r.Stderr);
        return (int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value));
    }

    private static TempDir Corpus()
    {
        var dir = new TempDir();
        foreach (var name in new[] { "pool_legacy.sys", "signed_test.sys", "version_pdb.sys", "wx_section.sys", "not_a_pe.sys" })
            dir.File("store/" + name, File.ReadAllBytes(RepoPaths.Fixture("x64", name)));
        return dir;
    }

    [Fact]
    public void A_warm_scan_analyses_nothing_and_reports_the_same()
    {
        using var dir = Corpus();
        var plain = CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "store");
        var cold = CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "store");
        var warm = CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "store");
        Assert.Equal((0, 5), Stats(cold)); // not_a_pe.sys too: "not a PE" is a fact about the bytes
        Assert.Equal((5, 0), Stats(warm));
        Assert.Equal(plain.Stdout, cold.Stdout);
        Assert.Equal(plain.Stdout, warm.Stdout); // messages, fingerprints, notifications: all the same
        Assert.Equal(plain.ExitCode, warm.ExitCode);

        using var c = new SqliteConnection($"Data Source={Path.Combine(dir.Path, "c.sqlite")};Pooling=False");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", cmd.ExecuteScalar());
    }

    [Fact]
    public void The_same_bytes_under_another_name_hit_and_report_their_own_path()
    {
        using var dir = Corpus();
        CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "store");
        dir.File("elsewhere/renamed.sys", File.ReadAllBytes(RepoPaths.Fixture("x64", "pool_legacy.sys")));
        var plain = CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "elsewhere");
        var cached = CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "elsewhere");
        Assert.Equal((1, 0), Stats(cached));
        Assert.Equal(plain.Stdout, cached.Stdout);
        Assert.Contains("elsewhere/renamed.sys imports", cached.Stdout);
        Assert.DoesNotContain("store/", cached.Stdout);
    }

    [Fact]
    public void Sarif_and_inventory_from_the_cache_equal_a_fresh_analysis()
    {
        using var dir = Corpus();
        var fresh = CliRunner.Run(dir.Path, "inventory", "--host", "h", "store");
        CliRunner.Run(dir.Path, "inventory", "--host", "h", "--cache", "c.sqlite", "store");
        var warm = CliRunner.Run(dir.Path, "inventory", "--host", "h", "--cache", "c.sqlite", "store");
        Assert.Equal((5, 0), Stats(warm));
        Assert.Equal(fresh.Stdout, warm.Stdout);

        // A scan filled the cache without inventory facts: an inventory then misses the images (and stores them).
        using var dir2 = Corpus();
        CliRunner.Run(dir2.Path, "scan", "--fail-on", "none", "--cache", "c.sqlite", "-o", "a.sarif", "store");
        Assert.Equal((1, 4), Stats(CliRunner.Run(dir2.Path, "inventory", "--cache", "c.sqlite", "store")));
        var sarif = CliRunner.Run(dir2.Path, "scan", "--fail-on", "none", "--cache", "c.sqlite", "-o", "b.sarif", "store");
        Assert.Equal((5, 0), Stats(sarif));
        Assert.Equal(Runless(File.ReadAllText(Path.Combine(dir2.Path, "a.sarif"))), Runless(File.ReadAllText(Path.Combine(dir2.Path, "b.sarif"))));
    }

    private static string Runless(string sarif) => Regex.Replace(sarif, "\"(start|end)TimeUtc\":\"[^\"]*\"", "");

    [Fact]
    public void Changing_the_rules_or_their_levels_invalidates()
    {
        using var dir = Corpus();
        CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "store");
        Assert.Equal((0, 5), Stats(CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "--level", "DA1001=error", "store")));
        Assert.Equal((0, 5), Stats(CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "--disable", "DA5004", "store")));
        // An extra rule file: its text is part of the key, so editing it invalidates too.
        var rule = File.ReadAllText(Path.Combine(RepoPaths.Root, "rules", "DA1001.yaml")).Replace("id: DA1001", "id: X9001").Replace("name: UntaggedPoolAllocation", "name: UntaggedPoolAllocationCopy");
        dir.File("extra/X9001.yaml", System.Text.Encoding.UTF8.GetBytes(rule));
        Assert.Equal((0, 5), Stats(CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "--rules", "extra", "store")));
        Assert.Equal((5, 0), Stats(CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "--rules", "extra", "store")));
        dir.File("extra/X9001.yaml", System.Text.Encoding.UTF8.GetBytes(rule.Replace("title:", "title: Edited")));
        Assert.Equal((0, 5), Stats(CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "--rules", "extra", "store")));
        // Back to the first configuration: still cached.
        Assert.Equal((5, 0), Stats(CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "store")));
    }

    [Fact]
    public void Another_tool_build_misses()
    {
        using var dir = Corpus();
        var path = Path.Combine(dir.Path, "c.sqlite");
        CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "store");
        using (var c = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "UPDATE entries SET tool = 'older-build'";
            Assert.Equal(5, cmd.ExecuteNonQuery());
        }
        Assert.Equal((0, 5), Stats(CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "store")));
    }

    [Fact]
    public void A_corrupt_cache_is_reported_and_rebuilt()
    {
        using var dir = Corpus();
        var plain = CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "store");
        var path = Path.Combine(dir.Path, "c.sqlite");
        CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "store");
        // Overwrite the middle of the file (the header stays a SQLite header).
        using (var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = Math.Min(4096, f.Length / 2);
            f.Write(Enumerable.Repeat((byte)0xA5, 8192).ToArray());
        }
        foreach (var wal in new[] { path + "-wal", path + "-shm" }) if (File.Exists(wal)) File.Delete(wal);
        var r = CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "store");
        Assert.Contains("is corrupt", r.Stderr);
        Assert.Equal(plain.Stdout, r.Stdout);
        Assert.Equal((0, 5), Stats(r));
        Assert.Equal((5, 0), Stats(CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "store")));

        // Not a database at all.
        File.WriteAllText(path, new string('x', 10_000));
        var g = CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "store");
        Assert.Contains("is corrupt", g.Stderr);
        Assert.Equal(plain.Stdout, g.Stdout);
    }

    [Fact]
    public void An_entry_that_does_not_decode_is_a_miss()
    {
        using var dir = Corpus();
        var plain = CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "store");
        CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "store");
        using (var c = new SqliteConnection($"Data Source={Path.Combine(dir.Path, "c.sqlite")};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "UPDATE entries SET payload = '{\"findings\": [{\"rule\": 1}]}'";
            cmd.ExecuteNonQuery();
        }
        var r = CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "store");
        Assert.Equal((0, 5), Stats(r));
        Assert.Equal(plain.Stdout, r.Stdout);
    }

    [Fact]
    public void A_database_that_is_not_a_cache_is_refused_and_left_alone()
    {
        using var dir = Corpus();
        var db = Path.Combine(dir.Path, "fleet.sqlite");
        using (FleetDatabase.Open(db)) { }
        var before = File.ReadAllBytes(db);
        var r = CliRunner.Run(dir.Path, "scan", "-f", "json", "--cache", "fleet.sqlite", "store");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("not a DriverAudit cache", r.Stderr);
        Assert.Equal(before, File.ReadAllBytes(db));
    }

    [Fact]
    public void Concurrent_scans_share_one_cache()
    {
        using var dir = Corpus();
        var plain = CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "store");
        var runs = Enumerable.Range(0, 5).AsParallel().WithDegreeOfParallelism(4)
            .Select(_ => CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "-j", "2", "--cache", "c.sqlite", "store")).ToList();
        Assert.All(runs, r => Assert.Equal(plain.Stdout, r.Stdout));
        Assert.All(runs, r => Assert.DoesNotContain("corrupt", r.Stderr));
        Assert.Equal((5, 0), Stats(CliRunner.Run(dir.Path, "scan", "-f", "json", "--fail-on", "none", "--cache", "c.sqlite", "store")));
    }
}
