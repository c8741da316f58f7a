using System.Text.Json;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Cli;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.RulePack;
using Xunit;

namespace DriverAudit.Scanner.Tests.Dumps;

/// <summary>Damaged dumps: one module listed twice, a flood of notifications.</summary>
public sealed class DumpRobustnessTests
{
    private static readonly RuleSet Pack = RuleSet.Load(RuleSources.Embedded());

    private static InputReport Analyze(byte[] dump, TempDir t)
    {
        var path = t.File("m.dmp", dump);
        return new InputAnalyzer(Pack, new ScanOptions(1, RuleLevel.Error, false, ComputeHashes: true)).Analyze(new InputFile(path, "m.dmp", Explicit: true));
    }

    /// <summary>The scenario driver's layout (same sections, so the same size as the listed one).</summary>
    private static byte[] SmallDriver() => MiniPe.Build(true, 0x65A0C0DE, 0x0000BEEF,
        new MiniSection(".text", 0x1000, MiniPe.Pattern(0x1200, 5)),
        new MiniSection(".rdata", 0x3000, MiniPe.Pattern(0x400, 6)),
        new MiniSection("INIT", 0x4000, MiniPe.Pattern(0x600, 7)));

    [Fact]
    public void A_module_listed_twice_is_one_artifact_and_a_notification()
    {
        var s = new DumpScenario(DumpArch.X64);
        // The same loader entry twice in PsLoadedModuleList (same name, base, size, path).
        s.Writer.AddModule(s.Driver.FullPath, s.Driver.Base, SmallDriver());
        using var t = new TempDir();

        var report = Analyze(s.Writer.WriteFull(), t);

        var modules = report.Artifacts.Where(a => a.ModuleName is not null).ToList();
        Assert.Equal(3, modules.Count);
        Assert.Single(modules, m => m.ModuleName == s.Driver.Name);
        Assert.Contains(report.Artifacts[0].Notifications, n => n.Code == NotificationCodes.MalformedDump && n.Message.Contains("names 1 module(s) a second time"));

        // And the SARIF log stays valid (artifacts must be unique).
        var run = CliRunner.Run(t.Path, "scan", "m.dmp", "--format", "sarif", "--output", "out.sarif", "--fail-on", "none");
        Assert.Equal(0, run.ExitCode);
        var sarif = JsonDocument.Parse(File.ReadAllText(Path.Combine(t.Path, "out.sarif"))).RootElement.GetProperty("runs")[0];
        var artifacts = sarif.GetProperty("artifacts").EnumerateArray().Select(a => a.GetRawText()).ToList();
        Assert.Equal(artifacts.Count, artifacts.Distinct().Count());
    }

    [Fact]
    public void Notifications_per_dump_are_capped_with_a_count_of_the_rest()
    {
        var s = new DumpScenario(DumpArch.X64);
        // 600 modules whose headers are not in the dump: one "skipped" notification each.
        for (var i = 0; i < 600; i++)
        {
            var m = s.Writer.AddModule($@"\SystemRoot\System32\drivers\gone{i:000}.sys", 0xFFFFF80010000000UL + (ulong)i * 0x10000, SmallDriver());
            s.Writer.ZeroRange(m, 0, 0x400);
        }
        using var t = new TempDir();

        var report = Analyze(s.Writer.WriteFull(), t);

        var notes = report.Artifacts.SelectMany(a => a.Notifications).ToList();
        Assert.Equal(DumpInputAnalyzer.MaxNotificationsPerDump + 1, notes.Count);
        var last = Assert.Single(notes, n => n.Code == NotificationCodes.NotificationsTruncated);
        // The synthetic kernel's random .text reads as packed: its code rules add "not evaluated" notes (listed first).
        var notEvaluated = notes.Count(n => n.Code == NotificationCodes.RuleNotEvaluated);
        Assert.Contains($"{600 + notEvaluated - DumpInputAnalyzer.MaxNotificationsPerDump} more notification(s)", last.Message);
        Assert.Equal(603, report.Artifacts.Count(a => a.ModuleName is not null)); // every module is still an artifact
    }
}
