using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Tests.Cli;

/// <summary>Small custom rule files for selection, validation and example tests, and facts of real fixtures.</summary>
internal static class CustomRules
{
    /// <param name="match">YAML of the match tree at column 1; indented under <c>match:</c> (which is line 9).</param>
    public static string Make(string id, string name, string match, string level = "warning", string extra = "")
    {
        var indented = string.Join("\n", match.Trim('\n').Split('\n').Select(l => "  " + l));
        return $"""
            id: {id}
            name: {name}
            title: {name} title
            level: {level}
            precision: high
            description: A rule used by tests.
            help: Do not do that.
            message: "{'{'}artifact{'}'} matched."
            match:
            {indented}
            {extra}
            """;
    }

    /// <summary>
    /// ACME001 matches legacy pool imports; ACME002 only refers to ACME001; ACME003 matches writable+executable
    /// sections (never on pool_legacy.sys); ACME004 is a note about any image.
    /// </summary>
    public static RuleSet Pack() => RuleSet.Load(
    [
        new RuleSource("acme1.yaml", Make("ACME001", "LegacyPool", "import: ntoskrnl!ExAllocatePool")),
        new RuleSource("acme2.yaml", Make("ACME002", "ReusesLegacyPool", "rule: ACME001", level: "error")),
        new RuleSource("acme3.yaml", Make("ACME003", "WxSection", "section: {writable: true, executable: true}")),
        new RuleSource("acme4.yaml", Make("ACME004", "AnyImage", "header: {machine: [x64, x86]}", level: "note")),
    ]);

    public static PeFacts Facts(string arch, string fixture)
    {
        var path = RepoPaths.Fixture(arch, fixture);
        var source = new MemoryImageSource(File.ReadAllBytes(path), ImageLayout.File, new ImageOrigin(path));
        var image = PeImage.TryOpen(source).Image ?? throw new InvalidOperationException(fixture + " did not open");
        return new PeFacts(image, fixture);
    }
}
