using Xunit;

namespace DriverAudit.Scanner.Tests.Cli;

/// <summary>One rule-pack loader: `rules validate` and `scan` accept and refuse exactly the same rule sets.</summary>
public sealed class RulePackParityTests
{
    public static TheoryData<string, string, bool, bool> RuleSets => new()
    {
        // name, match, write lists/x.txt beside the rule, accepted
        { "list-relative-to-rule-file", "hash: {sha256-in: lists/x.txt}", true, true },
        { "list-missing", "hash: {sha256-in: lists/x.txt}", false, false },
        { "named-list-not-supplied", "hash: {sha256-in: '@nobody-gave-it'}", false, true },
        { "plain-import", "import: ntoskrnl!ExAllocatePool", false, true },
        { "unknown-feature", "imports-everything: true", false, false },
        { "bad-machine", "header: {machine: vax}", false, false },
    };

    [Theory]
    [MemberData(nameof(RuleSets))]
    public void Validate_and_scan_agree(string name, string match, bool writeList, bool accepted)
    {
        using var t = new TempDir();
        // The rule lives in its own folder, the scan runs elsewhere: a relative list must be found beside the rule file.
        Directory.CreateDirectory(Path.Combine(t.Path, "pack", "lists"));
        Directory.CreateDirectory(Path.Combine(t.Path, "work"));
        File.WriteAllText(Path.Combine(t.Path, "pack", "rule.yaml"), CustomRules.Make("ACME100", "Parity", match));
        if (writeList) File.WriteAllText(Path.Combine(t.Path, "pack", "lists", "x.txt"), new string('a', 64) + "\n");
        var rule = Path.Combine(t.Path, "pack", "rule.yaml");
        var driver = RepoPaths.Fixture("x64", "pool_legacy.sys");
        var work = Path.Combine(t.Path, "work");

        var validate = CliRunner.Run(work, "rules", "validate", rule);
        var scan = CliRunner.Run(work, "scan", driver, "--rules", rule, "--no-progress", "--fail-on", "none");
        var focused = CliRunner.Run(work, "scan", driver, "--no-default-rules", "--rules", rule, "--no-progress", "--fail-on", "none");

        Assert.True(accepted == (validate.ExitCode == 0), $"{name}: validate exit {validate.ExitCode}\n{validate.Stderr}");
        Assert.True(accepted == (scan.ExitCode == 0), $"{name}: scan exit {scan.ExitCode}\n{scan.Stderr}");
        // A rule whose named list nobody gave is valid but checks nothing: alone, scan has no rule left to run (exit 2 by design).
        if (name != "named-list-not-supplied")
            Assert.True(accepted == (focused.ExitCode == 0), $"{name}: scan --no-default-rules exit {focused.ExitCode}\n{focused.Stderr}");
        if (!accepted)
        {
            Assert.Equal(2, validate.ExitCode);
            Assert.Equal(2, scan.ExitCode);
            // The same error, at the same place, from both.
            var firstError = validate.Stderr.Split('\n')[0];
            Assert.Contains("rule.yaml:", firstError);
            Assert.Contains(firstError, scan.Stderr);
        }
    }
}
