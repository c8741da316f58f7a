using System.Text;
using System.Text.Json;
using DriverAudit.Scanner.Cli;
using DriverAudit.Scanner.Engine;
using Xunit;

namespace DriverAudit.Scanner.Tests.Dumps;

/// <summary>The founding case and hostile dumps through the real CLI, in process.</summary>
public sealed class DumpScanCliTests
{
    private const string Da1001 = """
        id: DA1001
        name: UntaggedPoolAllocation
        title: Untagged pool allocation
        level: warning
        precision: very-high
        tags: [pool, reliability]
        description: >
          ExAllocatePool and ExAllocatePoolWithQuota tag every allocation 'None', so pool usage cannot be attributed.
        help: |
          Use ExAllocatePool2 with a driver-specific tag.
        message: "{artifact} imports {import}; its allocations are tagged 'None' and cannot be attributed."
        match:
          any:
            - import: ExAllocatePool
            - import: ExAllocatePoolWithQuota
        """;

    private static (int Exit, string Stdout, string Stderr) Run(string workingDir, params string[] args)
    {
        var stdout = new MemoryStream();
        var outWriter = new StreamWriter(stdout, new UTF8Encoding(false)) { AutoFlush = true };
        var err = new StringWriter();
        var exit = DriverAuditCli.Run(args, new CliIo(stdout, outWriter, err, false, workingDir));
        outWriter.Flush();
        return (exit, Encoding.UTF8.GetString(stdout.ToArray()), err.ToString());
    }

    private static JsonElement Scan(TempDir dir, out string sarifText, out string stderr, params string[] inputs)
    {
        File.WriteAllText(Path.Combine(dir.Path, "da1001.yaml"), Da1001);
        var (exit, _, err) = Run(dir.Path, ["scan", .. inputs, "--no-default-rules", "--rules", Path.Combine(dir.Path, "da1001.yaml"), "--format", "sarif", "--output", Path.Combine(dir.Path, "out.sarif"), "--jobs", "2", "--no-progress"]);
        stderr = err;
        Assert.True(exit is 0 or 1, $"exit {exit}: {err}");
        sarifText = File.ReadAllText(Path.Combine(dir.Path, "out.sarif"));
        SarifSchema.AssertValid(sarifText);
        return JsonDocument.Parse(sarifText).RootElement.GetProperty("runs")[0].Clone();
    }

    private static string? ModuleOf(JsonElement result) =>
        result.GetProperty("locations")[0].TryGetProperty("logicalLocations", out var ll)
            ? ll.EnumerateArray().First(l => l.GetProperty("kind").GetString() == "module").GetProperty("name").GetString()
            : null;

    [Theory]
    [InlineData(DumpArch.X64, "bitmap")]
    [InlineData(DumpArch.X64, "full")]
    [InlineData(DumpArch.X64, "range8")]
    [InlineData(DumpArch.X64, "range9")]
    [InlineData(DumpArch.X64, "range10")]
    [InlineData(DumpArch.X86Pae, "bitmap")]
    [InlineData(DumpArch.X86, "full")]
    [InlineData(DumpArch.Arm64, "full")]   // ARM64 translation; pool_legacy.sys is the ARM64 build
    [InlineData(DumpArch.Arm64, "bitmap")]
    public void Founding_case_the_GUID_driver_is_reported_by_DA1001_from_the_dump(DumpArch arch, string kind)
    {
        using var dir = new TempDir();
        dir.File("crash/MEMORY.DMP", new FixtureDumpScenario(arch).Write(kind));

        var run = Scan(dir, out _, out var stderr, "crash/MEMORY.DMP");

        var artifacts = run.GetProperty("artifacts").EnumerateArray().ToList();
        Assert.Equal("crash/MEMORY.DMP", artifacts[0].GetProperty("location").GetProperty("uri").GetString());
        Assert.False(artifacts[0].TryGetProperty("parentIndex", out _));
        Assert.False(artifacts[0].TryGetProperty("hashes", out _)); // never read whole
        var modules = artifacts.Skip(1).ToList();
        Assert.Equal(9, modules.Count);
        Assert.All(modules, m => Assert.Equal(0, m.GetProperty("parentIndex").GetInt32()));
        Assert.All(modules, m => Assert.Equal("crash/MEMORY.DMP", m.GetProperty("location").GetProperty("uri").GetString()));
        Assert.Contains(modules, m => m.GetProperty("properties").GetProperty("moduleName").GetString() == FixtureDumpScenario.GuidName
                                      && m.GetProperty("properties").GetProperty("moduleBase").GetString()!.StartsWith("0x", StringComparison.Ordinal));

        var results = run.GetProperty("results").EnumerateArray().ToList();
        Assert.All(results, r => Assert.Equal("DA1001", r.GetProperty("ruleId").GetString()));
        Assert.All(results, r => Assert.Equal("crash/MEMORY.DMP", r.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("artifactLocation").GetProperty("uri").GetString()));
        var byModule = results.GroupBy(ModuleOf).ToDictionary(g => g.Key!, g => g.ToList());
        // Both GUID copies (directory 12 / pointer scan) and pool_legacy; never pool_modern (ExAllocatePool2 only) or the HAL users.
        Assert.Equal(["pool_legacy.sys", FixtureDumpScenario.GuidNoDirName, FixtureDumpScenario.GuidName], byModule.Keys.Order(StringComparer.Ordinal));
        var guid = Assert.Single(byModule[FixtureDumpScenario.GuidName]);
        Assert.Contains("MEMORY.DMP!" + FixtureDumpScenario.GuidName, guid.GetProperty("message").GetProperty("text").GetString());
        Assert.Contains("ExAllocatePool", guid.GetProperty("message").GetProperty("text").GetString());
        Assert.Equal(FindingFingerprint.Compute("DA1001", "crash/MEMORY.DMP", FixtureDumpScenario.GuidName, "ntoskrnl.exe!ExAllocatePool"),
            guid.GetProperty("partialFingerprints").GetProperty("primaryLocationLineHash").GetString());
        Assert.Equal(2, byModule["pool_legacy.sys"].Count); // ExAllocatePool and ExAllocatePoolWithQuota
        Assert.DoesNotContain("DA0099", stderr);
    }

    [Fact]
    public void Fingerprints_do_not_depend_on_where_the_module_was_loaded()
    {
        string Fingerprint(ulong shift)
        {
            using var dir = new TempDir();
            var w = new DumpWriter(DumpArch.X64);
            var nt = w.AddModule(@"\SystemRoot\system32\ntoskrnl.exe", 0xFFFFF80000200000 + shift, File.ReadAllBytes(RepoPaths.Fixture("x64", "kernel/ntoskrnl.exe")));
            var g = w.AddModule(@"\SystemRoot\System32\drivers\" + FixtureDumpScenario.GuidName, 0xFFFFF80001000000 + 2 * shift, File.ReadAllBytes(RepoPaths.Fixture("x64", FixtureDumpScenario.GuidName)));
            LoaderSim.BindAll(w);
            LoaderSim.ZeroSection(w, g, "INIT");
            dir.File("MEMORY.DMP", w.WriteBitmap());
            var run = Scan(dir, out _, out _, "MEMORY.DMP");
            return Assert.Single(run.GetProperty("results").EnumerateArray()).GetProperty("partialFingerprints").GetProperty("primaryLocationLineHash").GetString()!;
        }
        Assert.Equal(Fingerprint(0), Fingerprint(0x3000_0000));
    }

    [Fact]
    public void Hostile_dumps_each_end_with_a_notification_and_the_other_modules_are_still_scanned()
    {
        using var dir = new TempDir();
        // 1. one module's header page is not in the dump: that module is skipped, the rest analysed.
        var headless = new FixtureDumpScenario(DumpArch.X64, s => s.Writer.DropPhysical(s.Writer.PfnOf(s.Modern.Base)));
        dir.File("dumps/a_headless.dmp", headless.Write("bitmap"));
        // 2. truncated in the middle of the pages.
        var full = new FixtureDumpScenario(DumpArch.X64).Write("full");
        dir.File("dumps/b_truncated.dmp", full[..(full.Length / 2)]);
        // 3. header only.
        dir.File("dumps/c_header.dmp", full[..0x1800]);
        // 4. a user-mode minidump.
        dir.File("dumps/d_user.dmp", [.. "MDMP"u8, .. new byte[0x400]]);
        // 5. module list that loops back on itself.
        var loop = new FixtureDumpScenario(DumpArch.X64);
        loop.Writer.CycleBackTo = 1;
        dir.File("dumps/e_loop.dmp", loop.Write("bitmap"));
        // 6. triage minidump: modules listed, not analysed.
        dir.File("dumps/f_triage.dmp", new FixtureDumpScenario(DumpArch.X64).Write("triage"));
        // 7. an ntoskrnl export table that is gone: slots unresolved, reported.
        var noExports = new FixtureDumpScenario(DumpArch.X86Pae, s =>
            s.Writer.DropPhysical(s.Writer.PfnOf(s.Kernel.Base + LoaderSim.Open(s.Kernel).Sections.Single(x => x.Name == ".edata").Rva)));
        dir.File("dumps/g_noexports.dmp", noExports.Write("full"));

        var run = Scan(dir, out _, out var stderr, "dumps");

        var notes = run.GetProperty("invocations")[0].GetProperty("toolExecutionNotifications").EnumerateArray()
            .Select(n => (Id: n.GetProperty("descriptor").GetProperty("id").GetString()!, Text: n.GetProperty("message").GetProperty("text").GetString()!)).ToList();
        bool Has(string id, string file) => notes.Any(n => n.Id == id && n.Text.Contains(file, StringComparison.Ordinal));
        Assert.True(Has(NotificationCodes.ModuleNotAnalysable, "a_headless.dmp!pool_modern.sys"), string.Join("\n", notes));
        Assert.True(Has(NotificationCodes.DumpUnreadable, "c_header.dmp") || Has(NotificationCodes.MalformedDump, "c_header.dmp"), string.Join("\n", notes));
        Assert.True(Has(NotificationCodes.MalformedDump, "b_truncated.dmp") || Has(NotificationCodes.DumpUnreadable, "b_truncated.dmp"), string.Join("\n", notes));
        Assert.True(Has(NotificationCodes.UserModeDump, "d_user.dmp"), string.Join("\n", notes));
        Assert.True(Has(NotificationCodes.MalformedDump, "e_loop.dmp"), string.Join("\n", notes));
        Assert.True(Has(NotificationCodes.DumpImagesUnavailable, "f_triage.dmp"), string.Join("\n", notes));
        Assert.True(Has(NotificationCodes.UnresolvedImport, "g_noexports.dmp"), string.Join("\n", notes));
        Assert.DoesNotContain(notes, n => n.Id == NotificationCodes.InternalError);

        var artifacts = run.GetProperty("artifacts").EnumerateArray().ToList();
        int IndexOf(string uri) => artifacts.FindIndex(a => a.GetProperty("location").GetProperty("uri").GetString() == uri && !a.TryGetProperty("parentIndex", out _));
        var results = run.GetProperty("results").EnumerateArray()
            .Select(r => (Uri: r.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("artifactLocation").GetProperty("uri").GetString(), Module: ModuleOf(r)))
            .ToList();
        // The headless and looping dumps still yield the GUID driver's finding.
        Assert.Contains(("dumps/a_headless.dmp", FixtureDumpScenario.GuidName), results);
        Assert.Contains(("dumps/e_loop.dmp", FixtureDumpScenario.GuidName), results);
        Assert.DoesNotContain(results, r => r.Uri == "dumps/g_noexports.dmp" && r.Module == FixtureDumpScenario.GuidName);
        // Triage: every module listed as a nested artifact, none analysed (no results).
        var triage = IndexOf("dumps/f_triage.dmp");
        Assert.Equal(9, artifacts.Count(a => a.TryGetProperty("parentIndex", out var p) && p.GetInt32() == triage));
        Assert.DoesNotContain(results, r => r.Uri == "dumps/f_triage.dmp");
        Assert.True(IndexOf("dumps/d_user.dmp") >= 0);
    }

    [Fact]
    public void Inspect_shows_the_summary_the_module_table_and_a_dps_style_IAT()
    {
        using var dir = new TempDir();
        var s = new FixtureDumpScenario(DumpArch.X64);
        dir.File("MEMORY.DMP", s.Write("bitmap"));

        var (exit, text, err) = Run(dir.Path, "inspect", "MEMORY.DMP", "--module", FixtureDumpScenario.GuidName.ToLowerInvariant());

        Assert.Equal(0, exit);
        Assert.Equal("", err);
        Assert.Contains("kernel dump: bitmap-kernel, machine x64, build 19041", text);
        Assert.Contains("bugcheck 0x000000D1 (0x10, 0x2, 0x0, 0x80001234)", text);
        Assert.Contains("system time 2024-05-01 12:30:00Z", text);
        Assert.Contains("modules (9):", text);
        Assert.Contains($"fffff800`01000000 0x{s.Guid.Size:x8}", text);
        Assert.Contains("IAT (data directory 12", text);
        var nt = s.Kernel.Base;
        var line = text.Split('\n').Single(l => l.Contains("ntoskrnl.exe!ExAllocatePool") && !l.Contains("Pool2"));
        Assert.Matches(@"^\s+fffff800`010[0-9a-f]{5}  fffff800`002[0-9a-f]{5}  ntoskrnl\.exe!ExAllocatePool\s*$", line);

        var (jexit, json, _) = Run(dir.Path, "inspect", "MEMORY.DMP", "--json");
        Assert.Equal(0, jexit);
        var lines = json.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal("dump", lines[0].GetProperty("kind").GetString());
        Assert.Equal(9, lines[0].GetProperty("modules").GetArrayLength());
        Assert.Equal("0xd1", lines[0].GetProperty("bugCheck").GetProperty("code").GetString());
        Assert.Equal(10, lines.Count);
        var guid = lines.Single(l => l.GetProperty("path").GetString() == "MEMORY.DMP!" + FixtureDumpScenario.GuidName);
        Assert.Equal("x64", guid.GetProperty("machine").GetString());
        Assert.Contains(guid.GetProperty("imports").EnumerateArray(), i => i.GetProperty("module").GetString() == "ntoskrnl.exe" && i.GetProperty("name").GetString() == "ExAllocatePool");
        Assert.Equal(4, guid.GetProperty("imports").GetArrayLength());
        Assert.Equal($"0x{s.Guid.Base:x}", guid.GetProperty("moduleBase").GetString());
    }
}
