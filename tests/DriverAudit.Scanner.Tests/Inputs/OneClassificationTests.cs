using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Inputs;
using Xunit;

namespace DriverAudit.Scanner.Tests.Inputs;

/// <summary>
/// One opener under every command: the same input gets the same classification and the same exit code from scan,
/// inspect, tags and inventory. scan gates unanalysable inputs only with --fail-on-error (its default gates findings),
/// so it runs here with --fail-on-error --fail-on none.
/// </summary>
public sealed class OneClassificationTests : IDisposable
{
    private readonly TempDir _dir = new();

    public OneClassificationTests()
    {
        _dir.File("driver.sys", File.ReadAllBytes(RepoPaths.Fixture("x64", "pool_modern.sys")));
        _dir.File("MEMORY.DMP", new FixtureDumpScenario(DumpArch.X64).Write("full"));
        _dir.File("mini.dmp", DriverAudit.Scanner.Tests.Dumps.TriageScanTests.Scenario(DumpArch.X64).Writer.WriteTriage());
        var user = new byte[256];
        "MDMP"u8.CopyTo(user);
        _dir.File("app.dmp", user);
        _dir.File("notes.sys", "not a driver at all, just text"u8.ToArray());
    }

    public void Dispose() => _dir.Dispose();

    // Rows as objects: xunit needs a public member, InputClass is internal to the scanner.
    public static IEnumerable<object?[]> Inputs =>
    [
        ["driver.sys", InputClass.PeImage, ExitCodes.Clean],
        ["MEMORY.DMP", InputClass.KernelDump, ExitCodes.Clean],
        ["mini.dmp", InputClass.TriageDump, ExitCodes.Clean],
        ["app.dmp", InputClass.UserModeDump, ExitCodes.InputErrors],
        ["notes.sys", InputClass.NotPe, ExitCodes.InputErrors],
        ["missing.sys", null, ExitCodes.UsageOrConfiguration],
    ];

    [Theory]
    [MemberData(nameof(Inputs))]
    internal void Every_command_classifies_and_exits_alike(string name, InputClass? expected, int exit)
    {
        if (expected is InputClass kind)
        {
            var path = Path.Combine(_dir.Path, name);
            using var input = InputOpener.Open(new InputFile(path, name, Explicit: true));
            Assert.Equal(kind, input.Class);
            Assert.Equal(kind is InputClass.PeImage or InputClass.KernelDump or InputClass.TriageDump, input.Analysable);
        }

        var runs = new Dictionary<string, CliRunner.Outcome>
        {
            ["scan"] = CliRunner.Run(_dir.Path, "scan", name, "--fail-on-error", "--fail-on", "none", "--format", "json", "--no-progress"),
            ["inspect"] = CliRunner.Run(_dir.Path, "inspect", name),
            ["inspect --json"] = CliRunner.Run(_dir.Path, "inspect", "--format", "json", name),
            ["tags"] = CliRunner.Run(_dir.Path, "tags", name),
            ["inventory"] = CliRunner.Run(_dir.Path, "inventory", name),
        };
        foreach (var (command, r) in runs)
        {
            Assert.True(exit == r.ExitCode, $"{command} {name}: exit {r.ExitCode}, expected {exit}\n{r.Stderr}");
            Assert.DoesNotContain("   at ", r.Stderr);
        }

        // The same words for the same class, whichever command met it.
        switch (expected)
        {
            case InputClass.UserModeDump:
                Assert.Contains("DA0014", runs["scan"].Stdout);
                foreach (var command in new[] { "inspect", "tags", "inventory" })
                    Assert.Contains("user-mode dump", runs[command].Stderr + runs[command].Stdout);
                Assert.Contains("\"input\":\"user-mode dump\"", runs["inspect --json"].Stdout);
                break;
            case InputClass.NotPe:
                Assert.Contains("DA0011", runs["scan"].Stdout);
                foreach (var command in new[] { "inspect", "tags", "inventory" })
                    Assert.Contains("MZ", runs[command].Stderr + runs[command].Stdout);
                break;
            case null:
                foreach (var (command, r) in runs) Assert.Contains("'missing.sys' does not exist", r.Stderr);
                break;
        }
    }
}
