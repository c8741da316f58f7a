using System.Text.Json;
using Xunit;

namespace DriverAudit.Scanner.Tests.EndToEnd;

/// <summary>
/// The real CLI on the committed fixture drivers with the embedded default pack: exact results,
/// exit codes, schema-valid and deterministic SARIF.
/// </summary>
public sealed class ScanFixturesTests
{
    private const string Guid = "{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F}.sys";

    private static CliRunner.Outcome Scan(params string[] args) => CliRunner.Run(RepoPaths.Root, ["scan", .. args]);

    private static List<JsonElement> JsonLines(string stdout) =>
        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    private static SortedSet<string> Results(List<JsonElement> lines, string ruleId) =>
        new(lines.Where(l => l.GetProperty("kind").GetString() == "result" && l.GetProperty("ruleId").GetString() == ruleId)
            .Select(l => $"{l.GetProperty("path").GetString()} {l.GetProperty("anchor").GetString()}"), StringComparer.Ordinal);

    [Fact]
    public void Default_pack_finds_exactly_the_expected_issue_2_results()
    {
        var r = Scan("tests/fixtures/bin", "--format", "json", "--fail-on", "none");
        Assert.Equal(0, r.ExitCode);
        var lines = JsonLines(r.Stdout);

        Assert.Equal(new SortedSet<string>(StringComparer.Ordinal)
        {
            "tests/fixtures/bin/x64/pool_legacy.sys ntoskrnl.exe!ExAllocatePool",
            "tests/fixtures/bin/x64/pool_legacy.sys ntoskrnl.exe!ExAllocatePoolWithQuota",
            "tests/fixtures/bin/x86/pool_legacy.sys ntoskrnl.exe!ExAllocatePool",
            "tests/fixtures/bin/x86/pool_legacy.sys ntoskrnl.exe!ExAllocatePoolWithQuota",
            $"tests/fixtures/bin/x64/{Guid} ntoskrnl.exe!ExAllocatePool",
            $"tests/fixtures/bin/x86/{Guid} ntoskrnl.exe!ExAllocatePool",
            "tests/fixtures/bin/x64/wrappers_O0.sys ntoskrnl.exe!ExAllocatePool",
            "tests/fixtures/bin/x64/wrappers_O2.sys ntoskrnl.exe!ExAllocatePool",
            "tests/fixtures/bin/x64/wrappers_Os.sys ntoskrnl.exe!ExAllocatePool",
            "tests/fixtures/bin/x86/wrappers_O0.sys ntoskrnl.exe!ExAllocatePool",
            "tests/fixtures/bin/x86/wrappers_O2.sys ntoskrnl.exe!ExAllocatePool",
            "tests/fixtures/bin/x86/wrappers_Os.sys ntoskrnl.exe!ExAllocatePool",
            "tests/fixtures/bin/arm64/pool_legacy.sys ntoskrnl.exe!ExAllocatePool",
            "tests/fixtures/bin/arm64/pool_legacy.sys ntoskrnl.exe!ExAllocatePoolWithQuota",
            "tests/fixtures/bin/arm64/wrappers_O0.sys ntoskrnl.exe!ExAllocatePool",
            "tests/fixtures/bin/arm64/wrappers_O2.sys ntoskrnl.exe!ExAllocatePool",
            "tests/fixtures/bin/arm64/wrappers_Os.sys ntoskrnl.exe!ExAllocatePool",
        }, Results(lines, "DA1001"));

        Assert.Equal(new SortedSet<string>(StringComparer.Ordinal)
        {
            "tests/fixtures/bin/x64/packed.sys .enc#0",
            "tests/fixtures/bin/x64/wx_section.sys .wx#0",
            "tests/fixtures/bin/x86/packed.sys .enc#0",
            "tests/fixtures/bin/x86/wx_section.sys .wx#0",
        }, Results(lines, "DA2001"));

        // DA1003 fires for every deprecated allocator import, and never on the ExAllocatePool2-only driver.
        var deprecated = Results(lines, "DA1003");
        Assert.Contains("tests/fixtures/bin/x64/pool_legacy.sys ntoskrnl.exe!ExAllocatePool", deprecated);
        Assert.Contains("tests/fixtures/bin/x86/tags_O2.sys ntoskrnl.exe!ExAllocatePoolWithTag", deprecated);
        Assert.DoesNotContain(deprecated, d => d.Contains("pool_modern") || d.Contains("signed_"));
        Assert.All(deprecated, d => Assert.Matches(@"ntoskrnl\.exe!ExAllocatePool(WithQuota|WithTag|WithQuotaTag|WithTagPriority)?$", d));

        // The mingw fixtures keep sections page-aligned and their IAT in .idata.
        Assert.Empty(Results(lines, "DA2002"));
        Assert.Empty(Results(lines, "DA2003"));

        // Bad inputs are notifications and the scan goes on.
        var notes = lines.Where(l => l.GetProperty("kind").GetString() == "notification")
            .Select(l => $"{l.GetProperty("code").GetString()} {l.GetProperty("path").GetString()}").ToList();
        Assert.Contains("DA0011 tests/fixtures/bin/x64/not_a_pe.sys", notes);
        Assert.Contains("DA0011 tests/fixtures/bin/x86/not_a_pe.sys", notes);
        Assert.Contains("DA0012 tests/fixtures/bin/x64/truncated_headers.sys", notes);
        Assert.Contains("DA0012 tests/fixtures/bin/x86/truncated_headers.sys", notes);
        Assert.Contains("DA0013 tests/fixtures/bin/x64/truncated_imports.sys", notes);

        var summary = lines.Last();
        Assert.Equal("summary", summary.GetProperty("kind").GetString());
        Assert.Equal(4, summary.GetProperty("failed").GetInt32());
    }

    [Theory]
    [InlineData(new[] { "tests/fixtures/bin/x64/wx_section.sys" }, 1)]                                   // DA2001 is an error
    [InlineData(new[] { "tests/fixtures/bin/x64/wx_section.sys", "--fail-on", "none" }, 0)]
    [InlineData(new[] { "tests/fixtures/bin/x64/signed_release.sys" }, 0)]                             // warnings only
    [InlineData(new[] { "tests/fixtures/bin/x64/signed_release.sys", "--fail-on", "warning" }, 1)]
    [InlineData(new[] { "tests/fixtures/bin/x64/not_a_pe.sys" }, 3)]                                    // nothing analysed: never a clean exit
    [InlineData(new[] { "tests/fixtures/bin/x64/signed_release.sys", "tests/fixtures/bin/x64/not_a_pe.sys" }, 0)] // a failed input beside analysed ones does not gate
    [InlineData(new[] { "tests/fixtures/bin/x64/wx_section.sys", "tests/fixtures/bin/x64/not_a_pe.sys" }, 1)]
    [InlineData(new[] { "tests/fixtures/bin/x64/not_a_pe.sys", "--fail-on-error" }, 3)]
    [InlineData(new[] { "tests/fixtures/bin/x64/wx_section.sys", "tests/fixtures/bin/x64/not_a_pe.sys", "--fail-on-error" }, 3)] // error outranks findings
    public void Exit_codes_gate(string[] args, int expected)
    {
        Assert.Equal(expected, Scan([.. args, "--format", "json"]).ExitCode);
    }

    [Fact]
    public void Non_sys_files_are_found_by_content_when_globs_include_them()
    {
        // The fake kernel images are .exe/.dll: skipped by the default **/*.sys glob, found when included.
        var plain = Scan("tests/fixtures/bin/x64/kernel", "--format", "json", "--fail-on", "none");
        Assert.Equal(2, plain.ExitCode); // nothing to scan is never a clean scan
        Assert.Contains("no file to scan", plain.Stderr);
        var all = JsonLines(Scan("tests/fixtures/bin/x64/kernel", "--include", "**/*", "--format", "json", "--fail-on", "none").Stdout);
        Assert.Equal(2, all.Last().GetProperty("analyzed").GetInt32());
    }

    [Fact]
    public void Sarif_of_the_fixture_tree_validates_is_deterministic_and_has_unique_fingerprints()
    {
        using var t = new TempDir();
        var a = System.IO.Path.Combine(t.Path, "a.sarif");
        var b = System.IO.Path.Combine(t.Path, "b.sarif");
        Assert.Equal(1, Scan("tests/fixtures/bin", "-o", a, "-j", "1").ExitCode);
        Assert.Equal(1, Scan("tests/fixtures/bin", "-o", b, "-j", "4").ExitCode);

        var textA = File.ReadAllText(a);
        SarifSchema.AssertValid(textA);
        Assert.Equal(WithoutTimes(textA), WithoutTimes(File.ReadAllText(b)));

        using var doc = JsonDocument.Parse(textA);
        var run = doc.RootElement.GetProperty("runs")[0];
        var results = run.GetProperty("results").EnumerateArray().ToList();
        Assert.NotEmpty(results);
        var fingerprints = results.Select(r => r.GetProperty("partialFingerprints").GetProperty("primaryLocationLineHash").GetString()).ToList();
        Assert.Equal(fingerprints.Count, fingerprints.Distinct().Count());
        Assert.All(results, r =>
        {
            var loc = r.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("artifactLocation");
            Assert.StartsWith("tests/fixtures/bin/", loc.GetProperty("uri").GetString());
            Assert.Equal("%SRCROOT%", loc.GetProperty("uriBaseId").GetString());
            Assert.EndsWith(".", r.GetProperty("message").GetProperty("text").GetString());
        });
        var artifacts = run.GetProperty("artifacts").EnumerateArray().ToList();
        Assert.All(artifacts, x => Assert.Matches("^[0-9a-f]{64}$", x.GetProperty("hashes").GetProperty("sha-256").GetString()));
        var notifications = run.GetProperty("invocations")[0].GetProperty("toolExecutionNotifications").GetArrayLength();
        Assert.True(notifications >= 4);
    }

    [Fact]
    public void Fingerprints_do_not_change_when_the_binary_changes_elsewhere()
    {
        // Same rule, same path, same anchor: same fingerprint, even though the bytes (and so the
        // addresses and timestamp) differ, e.g. after a rebuild.
        using var t = new TempDir();
        var bytes = File.ReadAllBytes(RepoPaths.Fixture("x64", "pool_legacy.sys"));
        t.File("drv/pool.sys", bytes);
        var one = CliRunner.Run(t.Path, "scan", "drv", "--format", "json", "--fail-on", "none").Stdout;
        bytes[0x88] ^= 0xFF; // inside the COFF header's TimeDateStamp
        t.File("drv/pool.sys", bytes);
        var two = CliRunner.Run(t.Path, "scan", "drv", "--format", "json", "--fail-on", "none").Stdout;
        string Prints(string s) => string.Join(",", JsonLines(s).Where(l => l.GetProperty("kind").GetString() == "result")
            .Select(l => l.GetProperty("fingerprint").GetString()));
        Assert.NotEqual("", Prints(one));
        Assert.Equal(Prints(one), Prints(two));
    }

    private static string WithoutTimes(string sarif) =>
        System.Text.RegularExpressions.Regex.Replace(sarif, "\"(start|end)TimeUtc\":\\s*\"[^\"]*\"", "");

    [Fact]
    public void A_baseline_marks_results_new_unchanged_and_absent_and_only_new_results_gate()
    {
        using var t = new TempDir();
        var before = System.IO.Path.Combine(t.Path, "before.sarif");
        var after = System.IO.Path.Combine(t.Path, "after.sarif");
        // Before: the legacy driver and the W+X driver. After: the legacy driver is gone, the modern one is new.
        Assert.Equal(1, Scan("tests/fixtures/bin/x64/pool_legacy.sys", "tests/fixtures/bin/x64/wx_section.sys", "-o", before).ExitCode);
        var r = Scan("tests/fixtures/bin/x64/wx_section.sys", "tests/fixtures/bin/x64/pool_modern.sys", "-o", after, "--baseline", before, "--include-absent");
        // DA2001 (error) on wx_section is unchanged; pool_modern brings only warnings and notes: nothing new gates.
        Assert.Equal(0, r.ExitCode);

        var text = File.ReadAllText(after);
        SarifSchema.AssertValid(text);
        using var doc = JsonDocument.Parse(text);
        var results = doc.RootElement.GetProperty("runs")[0].GetProperty("results").EnumerateArray().ToList();
        string State(JsonElement e) => e.GetProperty("baselineState").GetString()!;
        string Uri(JsonElement e) => e.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("artifactLocation").GetProperty("uri").GetString()!;
        Assert.All(results.Where(e => Uri(e).EndsWith("wx_section.sys")), e => Assert.Equal("unchanged", State(e)));
        Assert.All(results.Where(e => Uri(e).EndsWith("pool_modern.sys")), e => Assert.Equal("new", State(e)));
        var absent = results.Where(e => State(e) == "absent").ToList();
        Assert.NotEmpty(absent);
        Assert.All(absent, e => Assert.EndsWith("pool_legacy.sys", Uri(e)));
        Assert.Contains(absent, e => e.GetProperty("ruleId").GetString() == "DA1001");

        // By default the absent results stay out of the log: GitHub ignores baselineState and would show them as live alerts.
        var plain = System.IO.Path.Combine(t.Path, "plain.sarif");
        Scan("tests/fixtures/bin/x64/wx_section.sys", "tests/fixtures/bin/x64/pool_modern.sys", "-o", plain, "--baseline", before);
        Assert.DoesNotContain("\"absent\"", File.ReadAllText(plain));

        // A baseline matches whatever folder of the checkout the scan runs from: URIs are repository-relative.
        var fromSub = CliRunner.Run(System.IO.Path.Combine(RepoPaths.Root, "tests"), "scan", "fixtures/bin/x64/wx_section.sys", "--format", "json", "--baseline", before);
        Assert.Equal(0, fromSub.ExitCode);
        Assert.Contains("\"baselineState\":\"unchanged\"", fromSub.Stdout);
        Assert.DoesNotContain("\"baselineState\":\"new\"", fromSub.Stdout);

        // An unreadable baseline is a usage error; a new error does gate.
        Assert.Equal(2, Scan("tests/fixtures/bin/x64/wx_section.sys", "--format", "json", "--baseline",
            System.IO.Path.Combine(t.Path, "missing.sarif")).ExitCode);
        var onlyLegacy = System.IO.Path.Combine(t.Path, "legacy.sarif");
        Scan("tests/fixtures/bin/x64/pool_legacy.sys", "-o", onlyLegacy);
        Assert.Equal(1, Scan("tests/fixtures/bin/x64/wx_section.sys", "--format", "json", "--baseline", onlyLegacy).ExitCode);
    }
}
