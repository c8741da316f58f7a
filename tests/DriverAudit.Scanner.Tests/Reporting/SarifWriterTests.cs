using System.Text.Json;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Reporting;
using DriverAudit.Scanner.Reporting.Sarif;
using Xunit;

namespace DriverAudit.Scanner.Tests.Reporting;

public sealed class SarifWriterTests
{
    private static Rule MakeRule(string id, RuleLevel level, double? severity = null) => new()
    {
        Id = id,
        Name = "Rule" + id,
        Title = "Title of " + id,
        Level = level,
        SecuritySeverity = severity,
        Precision = "high",
        Tags = ["pool"],
        Cwe = severity is null ? [] : [401],
        Description = "Why " + id + " matters.",
        Help = "# Fix\n```c\nbefore();\n```\nThen after.",
        MessageTemplate = "{artifact}",
        SourcePath = "embedded:rules/" + id + ".yaml",
    };

    private static Finding MakeFinding(Rule rule, string uri, string key, string? module = null) =>
        new(rule, rule.Level, $"{uri} matched {key}.", new Anchor(AnchorKind.Import, key, new Dictionary<string, string>()),
            FindingFingerprint.Compute(rule.Id, uri, module, key), "import " + key);

    private static string Write(Action<SarifWriter> body, string path, int maxResults = SarifWriter.MaxResults, int maxPerRulePerImage = SarifWriter.MaxResultsPerRulePerImage)
    {
        using (var output = ReportOutput.Open(path, Stream.Null))
        using (var w = new SarifWriter(output, maxResults: maxResults, maxPerRulePerImage: maxPerRulePerImage)) body(w);
        return File.ReadAllText(path);
    }

    private static ScanContext Context(IReadOnlyList<Rule> rules, string root) =>
        new(rules, root, new Uri(root + "/").AbsoluteUri, DateTimeOffset.UnixEpoch);

    private static ScanSummary Summary(int exit) => new(1, 1, 0, 1, new Dictionary<RuleLevel, int>(), exit, DateTimeOffset.UnixEpoch);

    [Fact]
    public void A_log_with_results_artifacts_nested_modules_and_notifications_validates_and_has_what_GitHub_needs()
    {
        using var t = new TempDir();
        var r1 = MakeRule("DA1001", RuleLevel.Warning);
        var r2 = MakeRule("DA2001", RuleLevel.Error, severity: 7.5);
        var path = System.IO.Path.Combine(t.Path, "out.sarif");
        var text = Write(w =>
        {
            w.Begin(Context([r1, r2], t.Path));
            w.Add(new InputReport([new ArtifactReport
            {
                Uri = "drivers/my driver.sys", Length = 10, Sha256 = new string('a', 64), Analyzed = true,
                Findings = [MakeFinding(r1, "drivers/my driver.sys", "ntoskrnl.exe!ExAllocatePool")],
            }], []));
            w.Add(new InputReport(
            [
                new ArtifactReport { Uri = "MEMORY.DMP", Length = 1 << 20, Analyzed = true },
                new ArtifactReport
                {
                    Uri = "MEMORY.DMP", ParentLocalIndex = 0, ModuleName = "{GUID}.sys", ModuleBase = 0xFFFFF80012340000, ModulePath = @"\??\C:\x.sys",
                    Analyzed = true, Findings = [MakeFinding(r2, "MEMORY.DMP", ".wx#0", "{GUID}.sys")],
                },
            ], []));
            w.Add(InputReport.Problem(new Notification("DA0011", NotificationLevel.Error, "'x.sys' is not a PE.", "x.sys")));
            w.Complete(Summary(1));
        }, path);

        SarifSchema.AssertValid(text);
        using var doc = JsonDocument.Parse(text);
        var run = doc.RootElement.GetProperty("runs")[0];
        Assert.Equal("2.1.0", doc.RootElement.GetProperty("version").GetString());
        Assert.Equal(SarifWriter.SchemaUri, doc.RootElement.GetProperty("$schema").GetString());

        var rules = run.GetProperty("tool").GetProperty("driver").GetProperty("rules");
        Assert.Equal("7.5", rules[1].GetProperty("properties").GetProperty("security-severity").GetString());
        Assert.Contains("external/cwe/cwe-401", rules[1].GetProperty("properties").GetProperty("tags").EnumerateArray().Select(e => e.GetString()));
        Assert.DoesNotContain("```", rules[0].GetProperty("help").GetProperty("text").GetString());

        var results = run.GetProperty("results");
        Assert.Equal(2, results.GetArrayLength());
        // Most severe first: the dump module's error, then the driver's warning.
        var loc = results[1].GetProperty("locations")[0].GetProperty("physicalLocation");
        Assert.Equal("drivers/my%20driver.sys", loc.GetProperty("artifactLocation").GetProperty("uri").GetString());
        Assert.Equal("%SRCROOT%", loc.GetProperty("artifactLocation").GetProperty("uriBaseId").GetString());
        Assert.False(loc.TryGetProperty("region", out _));
        Assert.Equal(0, results[1].GetProperty("ruleIndex").GetInt32());
        Assert.Equal(1, results[0].GetProperty("ruleIndex").GetInt32());
        Assert.Matches("^[0-9a-f]{32}:1$", results[1].GetProperty("partialFingerprints").GetProperty("primaryLocationLineHash").GetString());
        Assert.Equal("0xfffff80012340000", results[0].GetProperty("properties").GetProperty("moduleBase").GetString());

        var artifacts = run.GetProperty("artifacts");
        Assert.Equal(3, artifacts.GetArrayLength());
        Assert.Equal(1, artifacts[2].GetProperty("parentIndex").GetInt32());
        Assert.Equal(new string('a', 64), artifacts[0].GetProperty("hashes").GetProperty("sha-256").GetString());

        var notes = run.GetProperty("invocations")[0].GetProperty("toolExecutionNotifications");
        Assert.Equal("DA0011", Assert.Single(notes.EnumerateArray()).GetProperty("descriptor").GetProperty("id").GetString());
        Assert.StartsWith("file:///", run.GetProperty("originalUriBaseIds").GetProperty("%SRCROOT%").GetProperty("uri").GetString());
    }

    [Fact]
    public void The_address_is_the_anchors_typed_rva_for_calls_and_instructions_only()
    {
        using var t = new TempDir();
        var rule = MakeRule("DA1001", RuleLevel.Warning);
        Finding With(Anchor a) => new(rule, rule.Level, "m.", a, FindingFingerprint.Compute(rule.Id, "d.sys", null, a.Key), a.Key);
        var none = new Dictionary<string, string>();
        // No "site" placeholder value at all: the writer reads the number the anchor carries, never a spelling.
        Finding[] findings =
        [
            With(new Anchor(AnchorKind.Call, "nt!X@fn_0x1000#0", none) { Rva = 0x1056 }),
            With(new Anchor(AnchorKind.Instruction, "wrmsr@fn_0x1000#0", none) { Rva = 0x1077 }),
            With(new Anchor(AnchorKind.String, "secret", none) { Rva = 0x3000 }),
            With(new Anchor(AnchorKind.Import, "nt!Y", new Dictionary<string, string> { ["site"] = "0x1234" })),
        ];
        var text = Write(w =>
        {
            w.Begin(Context([rule], t.Path));
            w.Add(new InputReport([new ArtifactReport { Uri = "d.sys", Analyzed = true, Findings = findings }], []));
            w.Complete(Summary(1));
        }, System.IO.Path.Combine(t.Path, "a.sarif"));
        SarifSchema.AssertValid(text);
        using var doc = JsonDocument.Parse(text);
        var addresses = doc.RootElement.GetProperty("runs")[0].GetProperty("results").EnumerateArray()
            .Select(r => r.GetProperty("locations")[0].GetProperty("physicalLocation").TryGetProperty("address", out var a) ? a.GetProperty("relativeAddress").GetInt64() : -1)
            .ToList();
        Assert.Equal([0x1056L, 0x1077L, -1L, -1L], addresses);
    }

    [Fact]
    public void An_empty_scan_still_has_a_results_array()
    {
        using var t = new TempDir();
        var text = Write(w => { w.Begin(Context([], t.Path)); w.Complete(Summary(0)); }, System.IO.Path.Combine(t.Path, "e.sarif"));
        SarifSchema.AssertValid(text);
        using var doc = JsonDocument.Parse(text);
        Assert.Equal(0, doc.RootElement.GetProperty("runs")[0].GetProperty("results").GetArrayLength());
    }

    [Fact]
    public void Results_beyond_the_limit_are_left_out_with_a_notification()
    {
        using var t = new TempDir();
        var r = MakeRule("DA1001", RuleLevel.Warning);
        var path = System.IO.Path.Combine(t.Path, "big.sarif");
        string text;
        using (var output = ReportOutput.Open(path, Stream.Null))
        using (var w = new SarifWriter(output, maxResults: 3))
        {
            w.Begin(Context([r], t.Path));
            for (var i = 0; i < 5; i++)
                w.Add(new InputReport([new ArtifactReport { Uri = $"d{i}.sys", Analyzed = true, Findings = [MakeFinding(r, $"d{i}.sys", "k")] }], []));
            w.Complete(Summary(1));
        }
        text = File.ReadAllText(path);
        SarifSchema.AssertValid(text);
        using var doc = JsonDocument.Parse(text);
        var run = doc.RootElement.GetProperty("runs")[0];
        Assert.Equal(3, run.GetProperty("results").GetArrayLength());
        Assert.Equal(5, run.GetProperty("artifacts").GetArrayLength());
        var note = Assert.Single(run.GetProperty("invocations")[0].GetProperty("toolExecutionNotifications").EnumerateArray());
        Assert.Equal("DA0030", note.GetProperty("descriptor").GetProperty("id").GetString());
    }

    [Fact]
    public void An_unfinished_log_never_replaces_the_previous_file()
    {
        using var t = new TempDir();
        var path = System.IO.Path.Combine(t.Path, "keep.sarif");
        File.WriteAllText(path, "previous");
        using (var output = ReportOutput.Open(path, Stream.Null))
        using (var w = new SarifWriter(output))
        {
            w.Begin(Context([], t.Path));
            // no Complete: the scan was interrupted
        }
        Assert.Equal("previous", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(t.Path)); // the temporary is gone too
    }

    [Fact]
    public void Fingerprints_depend_on_rule_path_module_and_anchor_only()
    {
        var a = FindingFingerprint.Compute("DA1001", "d/a.sys", null, "ntoskrnl.exe!ExAllocatePool");
        Assert.Equal(a, FindingFingerprint.Compute("DA1001", "d/a.sys", null, "ntoskrnl.exe!ExAllocatePool"));
        Assert.Equal(a, FindingFingerprint.Compute("DA1001", @"d\a.sys", null, "ntoskrnl.exe!ExAllocatePool"));
        Assert.NotEqual(a, FindingFingerprint.Compute("DA1003", "d/a.sys", null, "ntoskrnl.exe!ExAllocatePool"));
        Assert.NotEqual(a, FindingFingerprint.Compute("DA1001", "d/b.sys", null, "ntoskrnl.exe!ExAllocatePool"));
        Assert.NotEqual(a, FindingFingerprint.Compute("DA1001", "d/a.sys", "m.sys", "ntoskrnl.exe!ExAllocatePool"));
        Assert.Equal(FindingFingerprint.Compute("DA1001", "x.dmp", "M.SYS", "k"), FindingFingerprint.Compute("DA1001", "x.dmp", "m.sys", "k"));
    }

    [Theory]
    [InlineData("[remote \"origin\"]\n\turl = git@github.com:acme/drivers.git\n", "https://github.com/acme/drivers")]
    [InlineData("[remote \"origin\"]\n\turl = https://user:token@github.com/acme/drivers.git\n", "https://github.com/acme/drivers")]
    [InlineData("[remote \"upstream\"]\n\turl = https://github.com/x/y\n", null)]
    [InlineData("[remote \"origin\"]\n\turl = /srv/git/repo\n", null)]
    public void Origin_urls_become_absolute_credential_free_repository_uris(string config, string? expected)
    {
        Assert.Equal(expected, GitProvenance.OriginUrl(config));
    }

    [Fact]
    public void Version_control_provenance_is_written_inside_a_git_checkout()
    {
        using var t = new TempDir();
        t.Dir(".git/refs/heads");
        File.WriteAllText(System.IO.Path.Combine(t.Path, ".git", "HEAD"), "ref: refs/heads/main\n");
        File.WriteAllText(System.IO.Path.Combine(t.Path, ".git", "config"), "[remote \"origin\"]\n\turl = https://github.com/acme/drivers.git\n");
        File.WriteAllText(System.IO.Path.Combine(t.Path, ".git", "refs", "heads", "main"), new string('a', 40) + "\n");
        var text = Write(w => { w.Begin(Context([], t.Path)); w.Complete(Summary(0)); }, System.IO.Path.Combine(t.Path, "v.sarif"));
        SarifSchema.AssertValid(text);
        using var doc = JsonDocument.Parse(text);
        var vcp = doc.RootElement.GetProperty("runs")[0].GetProperty("versionControlProvenance")[0];
        Assert.Equal("https://github.com/acme/drivers", vcp.GetProperty("repositoryUri").GetString());
        Assert.Equal(new string('a', 40), vcp.GetProperty("revisionId").GetString());
        Assert.Equal("main", vcp.GetProperty("branch").GetString());
    }

    private static JsonElement Run(string text) => JsonDocument.Parse(text).RootElement.GetProperty("runs")[0];

    private static Finding Numbered(Rule rule, string uri, int i) => MakeFinding(rule, uri, $"k{i}");

    [Fact]
    public void The_cap_keeps_errors_first_and_one_result_for_every_image_with_an_error()
    {
        using var t = new TempDir();
        var warn = MakeRule("DA1001", RuleLevel.Warning);
        var err = MakeRule("DA2001", RuleLevel.Error);
        var path = System.IO.Path.Combine(t.Path, "cap.sarif");
        var text = Write(w =>
        {
            w.Begin(Context([warn, err], t.Path));
            // The first image floods the log with warnings and errors; three later images have one error each.
            w.Add(new InputReport([new ArtifactReport { Uri = "flood.sys", Analyzed = true,
                Findings = [.. Enumerable.Range(0, 10).Select(i => Numbered(warn, "flood.sys", i)), .. Enumerable.Range(0, 6).Select(i => Numbered(err, "flood.sys", i))] }], []));
            for (var i = 0; i < 3; i++)
                w.Add(new InputReport([new ArtifactReport { Uri = $"d{i}.sys", Analyzed = true, Findings = [MakeFinding(err, $"d{i}.sys", "k")] }], []));
            w.Complete(Summary(1));
        }, path, maxResults: 5);
        SarifSchema.AssertValid(text);
        var run = Run(text);
        var results = run.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(5, results.Count);
        Assert.All(results, r => Assert.Equal("error", r.GetProperty("level").GetString()));
        var uris = results.Select(r => r.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("artifactLocation").GetProperty("uri").GetString()).ToList();
        foreach (var uri in new[] { "flood.sys", "d0.sys", "d1.sys", "d2.sys" }) Assert.Contains(uri, uris);
        var note = Assert.Single(run.GetProperty("invocations")[0].GetProperty("toolExecutionNotifications").EnumerateArray());
        var message = note.GetProperty("message").GetProperty("text").GetString()!;
        Assert.Contains("14 result(s) were left out (4 error, 10 warning; by rule: DA1001 (10), DA2001 (4))", message);
    }

    [Fact]
    public void Results_per_rule_per_image_are_capped_with_one_result_saying_how_many_more()
    {
        using var t = new TempDir();
        var r = MakeRule("DA3004", RuleLevel.Warning);
        var path = System.IO.Path.Combine(t.Path, "per-rule.sarif");
        var text = Write(w =>
        {
            w.Begin(Context([r], t.Path));
            w.Add(new InputReport([new ArtifactReport { Uri = "io.sys", Analyzed = true, Findings = [.. Enumerable.Range(0, 7).Select(i => Numbered(r, "io.sys", i))] }], []));
            w.Complete(Summary(0));
        }, path, maxPerRulePerImage: 2);
        SarifSchema.AssertValid(text);
        var run = Run(text);
        var results = run.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(3, results.Count);
        Assert.StartsWith("5 more result(s) of DA3004", results[2].GetProperty("message").GetProperty("text").GetString());
        Assert.Equal(3, results.Select(x => x.GetProperty("partialFingerprints").GetProperty("primaryLocationLineHash").GetString()).Distinct().Count());
        Assert.Contains("5 result(s) of DA3004 in 1 image(s) were summarised",
            Assert.Single(run.GetProperty("invocations")[0].GetProperty("toolExecutionNotifications").EnumerateArray()).GetProperty("message").GetProperty("text").GetString());
    }

    [Theory]
    [InlineData(null, "driveraudit/")]
    [InlineData("", "driveraudit/")]
    [InlineData("x64", "driveraudit/x64/")]
    [InlineData("driveraudit/x86", "driveraudit/x86/")]
    [InlineData("matrix/win11/", "driveraudit/matrix/win11/")]
    public void Categories_end_with_a_slash_so_uploads_do_not_replace_each_other(string? name, string id) =>
        Assert.Equal(id, SarifWriter.CategoryId(name));

    [Fact]
    public void Help_text_keeps_code_and_notification_descriptors_are_complete()
    {
        var text = SarifRules.MarkdownToText("## Fix\n\n```c\n#define POOL_TAG 'Ddk '\n```\n#hashtag stays\n");
        Assert.Contains("#define POOL_TAG 'Ddk '", text);
        Assert.StartsWith("Fix", text);
        Assert.Contains("#hashtag stays", text);
        Assert.All(SarifRules.Notifications(), d =>
        {
            Assert.False(string.IsNullOrWhiteSpace(d.FullDescription?.Text));
            Assert.False(string.IsNullOrWhiteSpace(d.Help?.Text));
        });
    }
}
