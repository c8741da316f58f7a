using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Cli;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.RulePack;
using Xunit;

namespace DriverAudit.Scanner.Tests.EndToEnd;

/// <summary>
/// Issue 16: a per-image wall-clock budget. Time is injected: the clock below moves <see cref="StepClock.Step"/>
/// seconds each time it is read, so no test waits or depends on the machine's speed.
/// </summary>
public sealed class TimeLimitTests
{
    private static readonly RuleSet Pack = RuleSet.Load(RuleSources.Embedded());

    /// <summary>A clock in whole seconds that advances by <see cref="Step"/> at every read.</summary>
    private sealed class StepClock : TimeProvider
    {
        private long _now;
        public long Step { get; set; }
        public int Reads { get; private set; }
        public override long TimestampFrequency => 1;

        public override long GetTimestamp()
        {
            Reads++;
            var t = _now;
            _now += Step;
            return t;
        }
    }

    private static InputReport Analyze(string path, string display, StepClock? clock, double limitSeconds = 30) =>
        new InputAnalyzer(Pack, new ScanOptions(1, RuleLevel.Error, false, ComputeHashes: false)
        {
            TimeLimit = TimeSpan.FromSeconds(limitSeconds),
            Clock = clock ?? (TimeProvider)TimeProvider.System,
        }).Analyze(new InputFile(path, display, Explicit: true));

    private static string Fixture(string name) => RepoPaths.Fixture("x64", name);

    private static IEnumerable<string> Results(ArtifactReport a) => a.Findings.Select(f => $"{f.Rule.Id} {f.Location} {f.Message}");

    [Fact]
    public void Past_the_limit_the_remaining_rules_are_skipped_and_named()
    {
        var path = Fixture("primitives.sys");
        var full = Assert.Single(Analyze(path, "primitives.sys", new StepClock { Step = 0 }).Artifacts);
        Assert.NotEmpty(full.Findings);
        Assert.DoesNotContain(full.Notifications, n => n.Code == NotificationCodes.TimeLimitReached);

        // One second per clock read, 5 s allowed: the deadline expires at the 6th rule checked.
        var clock = new StepClock { Step = 1 };
        var cut = Assert.Single(Analyze(path, "primitives.sys", clock, limitSeconds: 5).Artifacts);

        var note = Assert.Single(cut.Notifications, n => n.Code == NotificationCodes.TimeLimitReached);
        Assert.Equal(NotificationLevel.Warning, note.Level);
        Assert.Contains("time limit of 5 s per image", note.Message, StringComparison.Ordinal);
        Assert.Equal(7, clock.Reads); // the start, then one read per rule checked: the 6th (6 s > 5 s) says "expired"
        Assert.True(cut.Analyzed);
        // What was evaluated is exactly what a full analysis finds for those rules: nothing invented, nothing reordered.
        Assert.Subset(Results(full).ToHashSet(), Results(cut).ToHashSet());
        Assert.True(cut.Findings.Count < full.Findings.Count);
    }

    [Fact]
    public void One_image_over_the_limit_does_not_stop_the_next()
    {
        var clock = new StepClock { Step = 3600 };
        var first = Assert.Single(Analyze(Fixture("primitives.sys"), "a.sys", clock).Artifacts);
        Assert.Empty(first.Findings); // an hour per read: the first rule already finds the budget spent
        Assert.Contains(first.Notifications, n => n.Code == NotificationCodes.TimeLimitReached);

        clock.Step = 0;
        var second = Assert.Single(Analyze(Fixture("primitives.sys"), "b.sys", clock).Artifacts);
        var reference = Assert.Single(Analyze(Fixture("primitives.sys"), "b.sys", clock: null).Artifacts);
        Assert.Equal(Results(reference), Results(second));
        Assert.Equal(reference.Notifications.Select(n => n.Message), second.Notifications.Select(n => n.Message));
    }

    [Fact]
    public void A_limit_of_zero_means_none()
    {
        var clock = new StepClock { Step = 3600 };
        var report = Assert.Single(Analyze(Fixture("primitives.sys"), "p.sys", clock, limitSeconds: 0).Artifacts);
        var reference = Assert.Single(Analyze(Fixture("primitives.sys"), "p.sys", clock: null).Artifacts);
        Assert.Equal(Results(reference), Results(report));
        Assert.DoesNotContain(report.Notifications, n => n.Code == NotificationCodes.TimeLimitReached);
    }

    [Fact]
    public void Each_dump_module_has_its_own_budget_and_all_are_reported()
    {
        var s = new DumpScenario(DumpArch.X64);
        using var t = new TempDir();
        var path = t.File("m.dmp", s.Writer.WriteFull());

        var report = Analyze(path, "m.dmp", new StepClock { Step = 3600 });

        var modules = report.Artifacts.Where(a => a.ModuleName is not null).ToList();
        Assert.Equal(3, modules.Count);
        Assert.All(modules, m => Assert.Contains(m.Notifications, n => n.Code == NotificationCodes.TimeLimitReached));
        Assert.All(modules, m => Assert.Empty(m.Findings));
        var reference = Analyze(path, "m.dmp", clock: null);
        Assert.DoesNotContain(reference.Artifacts.SelectMany(a => a.Notifications), n => n.Code == NotificationCodes.TimeLimitReached);
        Assert.NotEmpty(reference.Artifacts.SelectMany(a => a.Findings));
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("90000")]
    public void The_option_refuses_what_is_not_seconds(string value)
    {
        using var t = new TempDir();
        t.File("a.sys", File.ReadAllBytes(Fixture("primitives.sys")));
        var outcome = CliRunner.Run(t.Path, "scan", "a.sys", "--time-limit", value);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("--time-limit expects seconds", outcome.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void The_option_is_accepted_and_the_descriptor_is_declared()
    {
        using var t = new TempDir();
        t.File("a.sys", File.ReadAllBytes(Fixture("primitives.sys")));
        var outcome = CliRunner.Run(t.Path, "scan", "a.sys", "--time-limit", "0.5", "-f", "sarif");
        Assert.Contains("\"DA0032\"", outcome.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("time limit", outcome.Stderr, StringComparison.Ordinal);
    }
}
