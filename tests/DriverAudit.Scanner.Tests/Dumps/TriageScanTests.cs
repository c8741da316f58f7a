using System.Text;
using System.Text.Json;
using DriverAudit.Scanner.Cli;
using DriverAudit.Scanner.Dumps;
using DriverAudit.Scanner.Pe;
using Xunit;

namespace DriverAudit.Scanner.Tests.Dumps;

/// <summary>Triage minidumps as Windows writes them: data blocks holding a few modules' headers, unloaded drivers.</summary>
public sealed class TriageScanTests
{
    public const string WdFilterPath = @"\SystemRoot\system32\drivers\wd\WdFilter.sys";
    public const string TempPath = @"\??\C:\Windows\Temp\tmp1a2b.sys";
    public const string BuildLab = "19041.1.amd64fre.vb_release.191206-1406";

    /// <summary>The fixture dump plus Defender's driver in drivers\wd, a driver in Windows\Temp, captured headers and unloaded drivers.</summary>
    public static FixtureDumpScenario Scenario(DumpArch arch)
    {
        var is64 = arch is DumpArch.X64 or DumpArch.Arm64;
        ulong Kva(ulong offset) => (is64 ? 0xFFFFF80000000000 : 0x80000000) + offset;
        return new FixtureDumpScenario(arch, s =>
        {
            var w = s.Writer;
            var modern = File.ReadAllBytes(RepoPaths.Fixture(is64 ? "x64" : "x86", "pool_modern.sys"));
            w.AddModule(WdFilterPath, Kva(0x170_0000), modern);
            w.AddModule(TempPath, Kva(0x180_0000), modern);
            w.CaptureInTriage(s.Kernel, 0, 0x1000);  // a whole header page
            w.CaptureInTriage(s.Guid, 0, 0x400);     // headers only, not a whole page
            w.CaptureInTriage(s.Modern, 0, 0x1000);
            w.CaptureInTriage(s.Legacy, 0x1000, 0x80); // code around a fault: no headers
            w.UnloadedDrivers.Add(("dam.sys", Kva(0x200_0000), Kva(0x201_5000)));
            w.UnloadedDrivers.Add((FixtureDumpScenario.GuidName, Kva(0x210_0000), Kva(0x210_8000)));
            w.UnloadedDrivers.Add(("mcupdate_GenuineIntel.dll", Kva(0x220_0000), Kva(0x230_0000)));
            w.TriageBuildLab = BuildLab;
        });
    }

    [Theory]
    [InlineData(DumpArch.X64)]
    [InlineData(DumpArch.X86Pae)]
    [InlineData(DumpArch.Arm64)] // machine 0xAA64: the DUMP_HEADER64 and triage layout of x64
    public void Data_blocks_unloaded_drivers_and_version_are_read(DumpArch arch)
    {
        var s = Scenario(arch);
        using var file = new TempDumpFile(s.Writer.WriteTriage());
        using var dump = DumpScenario.Open(file);

        Assert.Empty(dump.Diagnostics.Select(d => d.ToString()));
        Assert.True(dump.IsTriage);
        Assert.False(dump.HasMemory);
        Assert.Equal(s.Writer.Modules.Select(m => (m.Name, m.FullPath, m.Base, m.Size)), dump.Modules.Select(m => (m.Name, m.FullPath, m.Base, m.Size)));
        string[] captured = ["ntoskrnl.exe", FixtureDumpScenario.GuidName, "pool_modern.sys", "pool_legacy.sys"];
        Assert.Equal(captured, dump.Modules.Where(m => m.ImageAvailable).Select(m => m.Name));
        Assert.Equal((5, 0x1000 + 0x400 + 0x1000 + 0x80 + BuildLab.Length + 1L), dump.DataBlocks);
        Assert.Equal(0x3A10u, dump.ServicePackBuild);
        Assert.Equal(BuildLab, dump.BuildLab);

        ulong Kva(ulong offset) => (arch is DumpArch.X64 or DumpArch.Arm64 ? 0xFFFFF80000000000 : 0x80000000) + offset;
        Assert.Equal(
            [new UnloadedDriver("dam.sys", false, Kva(0x200_0000), 0x15000, null),
             new UnloadedDriver("{2F4E1D6C-6B", true, Kva(0x210_0000), 0x8000, null),
             new UnloadedDriver("mcupdate_Gen", true, Kva(0x220_0000), 0x10_0000, null)],
            dump.UnloadedDrivers);

        // Bytes come from the blocks exactly, and stop where the blocks stop.
        var guid = dump.Modules.Single(m => m.Name == FixtureDumpScenario.GuidName);
        using var image = dump.OpenModuleImage(guid);
        var buffer = new byte[0x1000];
        Assert.Equal(0x400, image.Read(0, buffer));
        Assert.Equal(s.Guid.Loaded.AsSpan(0, 0x400).ToArray(), buffer[..0x400]);
        Assert.True(image.IsAvailable(0, 0x400));
        Assert.False(image.IsAvailable(0, 0x401));
        Assert.Equal(image.PageCount, image.CountMissingPages()); // no whole page
        using var kernel = dump.OpenModuleImage(dump.Modules[0]);
        Assert.Equal(kernel.PageCount - 1, kernel.CountMissingPages());
        Assert.True(PeImage.TryOpen(dump.OpenModuleImage(dump.Modules.Single(m => m.Name == "pool_modern.sys"))).Success);
    }

    private static List<(string Rule, string Module, string Capture)> ScanResults(byte[] dumpBytes, string format, out JsonElement run)
    {
        using var dir = new TempDir();
        dir.File("Minidump/113024-1.dmp", dumpBytes);
        var outcome = CliRunner.Run(dir.Path, "scan", "Minidump/113024-1.dmp", "--format", format, "--output", "out.sarif", "--no-progress");
        Assert.True(outcome.ExitCode is 0 or 1, outcome.Stderr);
        run = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, "out.sarif"))).RootElement.GetProperty("runs")[0].Clone();
        return [.. run.GetProperty("results").EnumerateArray().Select(r => (
            r.GetProperty("ruleId").GetString()!,
            r.GetProperty("properties").GetProperty("moduleName").GetString()!,
            r.GetProperty("properties").TryGetProperty("capture", out var c) ? c.GetString()! : "image"))
            .OrderBy(x => x.Item2, StringComparer.Ordinal).ThenBy(x => x.Item1, StringComparer.Ordinal)];
    }

    [Fact]
    public void Triage_modules_get_name_and_path_rules_and_captured_headers_get_header_rules()
    {
        var s = Scenario(DumpArch.X64);
        var results = ScanResults(s.Writer.WriteTriage(), "sarif", out var run);

        const string P = "partially captured";
        Assert.Equal(
        [
            ("DA5001", "ntoskrnl.exe", P), ("DA5003", "ntoskrnl.exe", P), ("DA5004", "ntoskrnl.exe", P),
            ("DA5001", "pool_modern.sys", P), ("DA5003", "pool_modern.sys", P), ("DA5004", "pool_modern.sys", P),
            ("DA7001", "tmp1a2b.sys", "not captured"),
            ("DA7001", FixtureDumpScenario.GuidNoDirName, "not captured"),
            ("DA7001", "{2F4E1D6C-6B (unloaded)", "unloaded"),
            ("DA5001", FixtureDumpScenario.GuidName, P), ("DA5003", FixtureDumpScenario.GuidName, P), ("DA5004", FixtureDumpScenario.GuidName, P),
            ("DA7001", FixtureDumpScenario.GuidName, P),
        ], results);

        // The same header rules fire on the same modules in a complete dump of the same machine.
        var full = ScanResults(s.Writer.WriteFull(), "sarif", out _);
        foreach (var (rule, module, _) in results.Where(r => r.Capture == P))
            Assert.Contains((rule, module, "image"), full);

        // Every module and unloaded driver is an artifact, its capture stated.
        var artifacts = run.GetProperty("artifacts").EnumerateArray().Skip(1)
            .Select(a => (a.GetProperty("properties").GetProperty("moduleName").GetString(), a.GetProperty("properties").GetProperty("capture").GetString()))
            .ToList();
        Assert.Equal(s.Writer.Modules.Count + 3, artifacts.Count);
        Assert.Contains(("WdFilter.sys", "not captured"), artifacts);
        Assert.Contains(("pool_legacy.sys", "not captured"), artifacts); // a block of its code, no headers
        Assert.Contains(("dam.sys (unloaded)", "unloaded"), artifacts);
        var notes = run.GetProperty("invocations")[0].GetProperty("toolExecutionNotifications").EnumerateArray().ToList();
        Assert.DoesNotContain(notes, n => n.GetProperty("level").GetString() is "error" or "warning");
    }

    [Fact]
    public void Inspect_shows_version_data_blocks_and_unloaded_drivers()
    {
        using var dir = new TempDir();
        dir.File("mini.dmp", Scenario(DumpArch.X64).Writer.WriteTriage());
        var text = CliRunner.Run(dir.Path, "inspect", "mini.dmp");
        Assert.Equal(0, text.ExitCode);
        Assert.Contains($"version: build 19041, service pack build 0x3a10, NtBuildLab {BuildLab}", text.Stdout);
        Assert.Contains("triage minidump: modules are listed; 5 data block(s) (9384 bytes) hold part of 4 module image(s)", text.Stdout);
        Assert.Contains("unloaded drivers (3):", text.Stdout);
        Assert.Contains("fffff800`02100000 0x00008000 not recorded         {2F4E1D6C-6B (name cut to 12 characters by the kernel)", text.Stdout);

        var json = CliRunner.Run(dir.Path, "inspect", "mini.dmp", "--json");
        var lines = json.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var summary = JsonDocument.Parse(lines[0]).RootElement;
        Assert.Equal(BuildLab, summary.GetProperty("version").GetProperty("ntBuildLab").GetString());
        Assert.Equal(5, summary.GetProperty("dataBlocks").GetInt32());
        Assert.Equal(["dam.sys", "{2F4E1D6C-6B", "mcupdate_Gen"], summary.GetProperty("unloadedDrivers").EnumerateArray().Select(u => u.GetProperty("name").GetString()));
        Assert.Equal(4, summary.GetProperty("modules").EnumerateArray().Count(m => m.GetProperty("captured").GetBoolean()));
        // One object per captured module; the legacy driver's block holds only code, so its object is an error.
        Assert.Equal(5, lines.Length);
        Assert.Equal(3, lines.Skip(1).Count(l => l.Contains("\"machine\"", StringComparison.Ordinal)));
        Assert.Contains("pool_legacy.sys", Assert.Single(lines, l => l.Contains("\"error\"", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("blocks")]
    [InlineData("block-size")]
    [InlineData("unloaded")]
    [InlineData("cut")]
    public void Hostile_triage_extras_end_with_a_diagnostic(string what)
    {
        var s = Scenario(DumpArch.X64);
        if (what == "blocks") s.Writer.TriageBlockCountOverride = 0x7FFF_FFFF;
        if (what == "block-size") s.Writer.TriageBlockSizeOverride = 0xFFFF_FFF0;
        var bytes = s.Writer.WriteTriage();
        if (what == "unloaded")
        {
            // Unloaded-driver count → 2^62.
            var at = (int)BitConverter.ToUInt32(bytes, 0x2000 + 0x18);
            BitConverter.GetBytes(1UL << 62).CopyTo(bytes, at);
        }
        if (what == "cut") bytes = bytes[..(bytes.Length - 0x800)]; // inside the blocks' bytes
        using var file = new TempDumpFile(bytes);
        using var dump = DumpScenario.Open(file);

        Assert.Equal(s.Writer.Modules.Count, dump.Modules.Count);
        var codes = dump.Diagnostics.Select(d => d.Code).ToList();
        Assert.Contains(what switch
        {
            "blocks" => DumpDiagnosticCodes.TriageDataBlocks,
            "unloaded" => DumpDiagnosticCodes.UnloadedDrivers,
            _ => DumpDiagnosticCodes.FileTruncated,
        }, codes);
        foreach (var m in dump.Modules.Where(m => m.ImageAvailable)) // every read stays inside the file
        {
            using var image = dump.OpenModuleImage(m);
            image.Read(0, new byte[image.Length]);
            PeImage.TryOpen(dump.OpenModuleImage(m));
        }
        Assert.True(dump.UnloadedDrivers.Count <= 3);
    }
}
