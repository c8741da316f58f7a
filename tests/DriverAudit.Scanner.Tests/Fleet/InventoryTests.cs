using System.Security.Cryptography;
using System.Text.Json;
using DriverAudit.Scanner.Fleet;
using Xunit;

namespace DriverAudit.Scanner.Tests.Fleet;

/// <summary>`driveraudit inventory`, `inspect --format json`'s inventory object, and --host in every output.</summary>
public sealed class InventoryTests
{
    private static List<JsonElement> Lines(string text) =>
        [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];

    private static JsonElement Expected(string arch, string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "expected", arch, name + ".json"))).RootElement.Clone();

    private static JsonElement SignatureOracle(string file) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "expected", "signatures.json"))).RootElement
            .GetProperty("signed").EnumerateArray().Single(s => s.GetProperty("file").GetString() == file).Clone();

    [Fact]
    public void Json_records_carry_hashes_build_version_and_signer_facts_from_the_oracles()
    {
        var r = CliRunner.Run(RepoPaths.Root, "inventory", "--host", "ws-042", "tests/fixtures/bin/x64/signed_test.sys",
            "tests/fixtures/bin/x64/version_pdb.sys", "tests/fixtures/bin/x64/pool_legacy.sys");
        Assert.Equal(0, r.ExitCode);
        var records = Lines(r.Stdout);
        Assert.Equal(3, records.Count);
        Assert.All(records, x => Assert.Equal("image", x.GetProperty("kind").GetString()));
        Assert.All(records, x => Assert.Equal("ws-042", x.GetProperty("host").GetString()));
        Assert.Equal(ImageRecord.Columns, records[0].EnumerateObject().Select(p => p.Name).Skip(1)); // "kind" first, then the columns

        // Signed fixture: file hash and Authenticode hash from osslsigncode/openssl (signatures.json), SHA-1 of the bytes.
        var signed = records[0];
        var oracle = SignatureOracle("x64/signed_test.sys");
        Assert.Equal(oracle.GetProperty("sha256").GetString(), signed.GetProperty("sha256").GetString());
        Assert.Equal(oracle.GetProperty("authenticodeSha256").GetString(), signed.GetProperty("authentihashSha256").GetString());
        var bytes = File.ReadAllBytes(RepoPaths.Fixture("x64", "signed_test.sys"));
        Assert.Equal(Convert.ToHexStringLower(SHA1.HashData(bytes)), signed.GetProperty("sha1").GetString());
        Assert.Equal(bytes.Length, signed.GetProperty("size").GetInt64());
        Assert.True(signed.GetProperty("signed").GetBoolean());
        Assert.True(signed.GetProperty("testSigned").GetBoolean());
        Assert.Contains(oracle.GetProperty("signerCommonName").GetString()!, signed.GetProperty("signerSubject").GetString());
        Assert.Contains(oracle.GetProperty("signerCommonName").GetString()!, signed.GetProperty("signerIssuer").GetString());
        Assert.Matches("^[0-9A-F]+$", signed.GetProperty("signerSerial").GetString());
        // osslsigncode verify: "Signing time: Nov 25 12:24:15 2026 GMT".
        Assert.Equal("2026-11-25T12:24:15Z", signed.GetProperty("signingTime").GetString());
        // DA5002 is the test-signing rule: it fired on this file, so its id is listed.
        Assert.Contains("DA5002", signed.GetProperty("ruleIds").EnumerateArray().Select(e => e.GetString()));

        // PDB and version info as pefile reads them.
        var vp = records[1];
        var pe = Expected("x64", "version_pdb");
        Assert.Equal(pe.GetProperty("sha256").GetString(), vp.GetProperty("sha256").GetString());
        Assert.Equal(pe.GetProperty("debugCodeView").GetProperty("pdbPath").GetString(), vp.GetProperty("pdbName").GetString());
        Assert.Equal(pe.GetProperty("debugCodeView").GetProperty("guid").GetString(), vp.GetProperty("pdbGuid").GetString(), ignoreCase: true);
        Assert.Equal(pe.GetProperty("debugCodeView").GetProperty("age").GetInt32(), vp.GetProperty("pdbAge").GetInt32());
        Assert.Equal(pe.GetProperty("timeDateStamp").GetInt64(), vp.GetProperty("timestamp").GetInt64());
        Assert.Equal("x64", vp.GetProperty("machine").GetString());
        Assert.Equal("DriverAudit Fixtures", vp.GetProperty("company").GetString());
        Assert.Equal("DriverAudit Test Fixtures", vp.GetProperty("product").GetString());
        Assert.Equal(pe.GetProperty("fileVersion").GetString(), vp.GetProperty("fileVersion").GetString());
        Assert.Equal("version_pdb.sys", vp.GetProperty("originalFilename").GetString());
        Assert.False(vp.GetProperty("signed").GetBoolean());
        Assert.False(vp.GetProperty("testSigned").GetBoolean());
        Assert.Equal(JsonValueKind.Null, vp.GetProperty("signerSubject").ValueKind);
        Assert.Equal(JsonValueKind.Null, vp.GetProperty("signingTime").ValueKind);

        // Rule ids are the ones a scan reports for the same file.
        var scan = CliRunner.Run(RepoPaths.Root, "scan", "-f", "json", "tests/fixtures/bin/x64/pool_legacy.sys");
        var scanned = Lines(scan.Stdout).Where(l => l.GetProperty("kind").GetString() == "result").Select(l => l.GetProperty("ruleId").GetString()).Distinct().Order(StringComparer.Ordinal);
        Assert.Equal(scanned, records[2].GetProperty("ruleIds").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("DA1001", scanned);
    }

    [Fact]
    public void Inputs_that_are_not_images_get_no_record_and_exit_3()
    {
        var r = CliRunner.Run(RepoPaths.Root, "inventory", "tests/fixtures/bin/x64/not_a_pe.sys", "tests/fixtures/bin/x64/pool_modern.sys");
        Assert.Equal(3, r.ExitCode);
        var record = Assert.Single(Lines(r.Stdout));
        Assert.Equal("tests/fixtures/bin/x64/pool_modern.sys", record.GetProperty("path").GetString());
        Assert.Equal(JsonValueKind.Null, record.GetProperty("host").ValueKind); // not a live driver store: no default label
        Assert.Contains("DA0011", r.Stderr);
    }

    [Fact]
    public void Csv_has_the_same_columns_and_quotes_per_rfc_4180()
    {
        using var dir = new TempDir();
        var r = CliRunner.Run(RepoPaths.Root, "inventory", "--format", "csv", "--host", "a,b", "-o", Path.Combine(dir.Path, "inv.csv"),
            "tests/fixtures/bin/x64/signed_release.sys");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.Stdout);
        var lines = File.ReadAllText(Path.Combine(dir.Path, "inv.csv")).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Equal(string.Join(',', ImageRecord.Columns), lines[0]);
        Assert.StartsWith("\"a,b\",tests/fixtures/bin/x64/signed_release.sys,,", lines[1]);
        // The subject holds commas: quoted, so the row still has one cell per column.
        Assert.Contains("\"CN=Contoso Drivers Ltd, O=Contoso Drivers Ltd, C=US\"", lines[1]);
        Assert.Contains(SignatureOracle("x64/signed_release.sys").GetProperty("sha256").GetString()!, lines[1]);
    }

    [Theory]
    [InlineData("plain", "plain")]
    [InlineData("a\"b", "\"a\"\"b\"")]
    [InlineData("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0")]
    [InlineData("@SUM(1)", "'@SUM(1)")]
    [InlineData("line\nbreak", "\"line\nbreak\"")]
    [InlineData(null, "")]
    public void Csv_cells_are_quoted_and_defused(string? value, string cell) => Assert.Equal(cell, InventorySink.CsvCell(value));

    [Fact]
    public void Inspect_format_json_has_the_inventory_fields_and_json_stays_an_alias()
    {
        var a = CliRunner.Run(RepoPaths.Root, "inspect", "--format", "json", "tests/fixtures/bin/x64/signed_test.sys");
        var b = CliRunner.Run(RepoPaths.Root, "inspect", "--json", "tests/fixtures/bin/x64/signed_test.sys");
        Assert.Equal(0, a.ExitCode);
        Assert.Equal(a.Stdout, b.Stdout);
        var inv = Lines(a.Stdout).Single().GetProperty("inventory");
        var listed = Lines(CliRunner.Run(RepoPaths.Root, "inventory", "tests/fixtures/bin/x64/signed_test.sys").Stdout).Single();
        // Every inventory field, with the same value as the inventory command's.
        foreach (var column in ImageRecord.Columns)
            Assert.True(JsonElement.DeepEquals(listed.GetProperty(column), inv.GetProperty(column)), column);
    }

    [Fact]
    public void Inspect_format_json_gives_dump_modules_the_inventory_record_too()
    {
        using var dir = new TempDir();
        dir.File("MEMORY.DMP", SmallFixtureDump.Write(RepoPaths.Fixture("x64", "")));
        var inspect = CliRunner.Run(dir.Path, "inspect", "--format", "json", "MEMORY.DMP");
        Assert.Equal(0, inspect.ExitCode);
        var modules = Lines(inspect.Stdout).Where(l => l.TryGetProperty("inventory", out _)).Select(l => l.GetProperty("inventory")).ToList();
        var listed = Lines(CliRunner.Run(dir.Path, "inventory", "MEMORY.DMP").Stdout);
        Assert.Equal(5, listed.Count);
        // One inventory object per module image, each equal to the inventory command's record for that module.
        Assert.Equal(listed.Select(l => l.GetProperty("module").GetString()), modules.Select(m => m.GetProperty("module").GetString()));
        foreach (var (record, inv) in listed.Zip(modules))
            foreach (var column in ImageRecord.Columns)
                Assert.True(JsonElement.DeepEquals(record.GetProperty(column), inv.GetProperty(column)), $"{record.GetProperty("module")}: {column}");
        // The GUID-named driver: DA7001 (and its untagged import) fired, as in the scan of the dump.
        var guid = modules.Single(m => m.GetProperty("module").GetString()!.StartsWith('{'));
        Assert.Contains("DA7001", guid.GetProperty("ruleIds").EnumerateArray().Select(x => x.GetString()));
        Assert.Equal("MEMORY.DMP", guid.GetProperty("path").GetString());
    }

    [Fact]
    public void Host_label_is_in_sarif_json_lines_and_text()
    {
        using var dir = new TempDir();
        var sarifPath = Path.Combine(dir.Path, "h.sarif");
        Assert.Equal(0, CliRunner.Run(RepoPaths.Root, "scan", "--host", "db-07", "--fail-on", "none", "-o", sarifPath, "tests/fixtures/bin/x64/pool_legacy.sys").ExitCode);
        var run = JsonDocument.Parse(File.ReadAllText(sarifPath)).RootElement.GetProperty("runs")[0];
        Assert.Equal("db-07", run.GetProperty("properties").GetProperty("host").GetString());
        var results = run.GetProperty("results").EnumerateArray().ToList();
        Assert.NotEmpty(results);
        Assert.All(results, x => Assert.Equal(["db-07"], x.GetProperty("properties").GetProperty("hosts").EnumerateArray().Select(h => h.GetString())));

        var json = Lines(CliRunner.Run(RepoPaths.Root, "scan", "--host", "db-07", "-f", "json", "tests/fixtures/bin/x64/pool_legacy.sys", "tests/fixtures/bin/x64/not_a_pe.sys").Stdout);
        Assert.Contains(json, l => l.GetProperty("kind").GetString() == "notification");
        Assert.All(json, l => Assert.Equal("db-07", l.GetProperty("host").GetString()));

        var text = CliRunner.Run(RepoPaths.Root, "scan", "--host", "db-07", "-f", "text", "tests/fixtures/bin/x64/pool_legacy.sys");
        Assert.Contains("Host: db-07", text.Stdout);

        // Without --host (not a live driver store) nothing is recorded.
        var plain = CliRunner.Run(RepoPaths.Root, "scan", "-f", "json", "tests/fixtures/bin/x64/pool_legacy.sys");
        Assert.DoesNotContain("\"host\"", plain.Stdout);
    }

    [Fact]
    public void Bad_host_labels_are_usage_errors()
    {
        var r = CliRunner.Run(RepoPaths.Root, "scan", "--host", "", "tests/fixtures/bin/x64/pool_legacy.sys");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--host", r.Stderr);
        Assert.Equal(2, CliRunner.Run(RepoPaths.Root, "inventory", "--host", new string('x', 300), "tests/fixtures/bin/x64/pool_legacy.sys").ExitCode);
    }

    [Theory]
    [InlineData(@"C:\Windows\System32\drivers", "PC1")]
    [InlineData(@"c:\windows\system32\DRIVERS\", "PC1")]
    [InlineData(@"C:\Windows\System32\drivers\etc", "PC1")]
    [InlineData(@"C:\Windows\System32\driversX", null)]
    [InlineData(@"D:\copies\System32\drivers", null)]
    public void The_machine_name_is_the_default_only_for_the_live_driver_store(string path, string? expected) =>
        Assert.Equal(expected, HostLabel.DefaultFor([@"E:\other", path], @"C:\Windows\System32\drivers", "PC1"));

    [Fact]
    public void No_default_label_off_windows() => Assert.Null(HostLabel.DefaultFor(["/x"], null, "PC1"));
}
