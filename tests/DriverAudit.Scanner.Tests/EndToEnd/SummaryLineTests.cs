using System.Text.Json;
using Xunit;

namespace DriverAudit.Scanner.Tests.EndToEnd;

/// <summary>The summary counts images on which some rule could not be evaluated (DA0021): unknown is said, not hidden.</summary>
public sealed class SummaryLineTests
{
    private static readonly string[] Inputs = [RepoPaths.Fixture("x64", "packed.sys"), RepoPaths.Fixture("x64", "wx_section.sys")];

    [Fact]
    public void Images_not_fully_evaluated_are_counted_in_text_markdown_and_json()
    {
        var text = CliRunner.Run(RepoPaths.Root, ["scan", .. Inputs]);
        Assert.Contains("Scanned 2 input(s), analysed 2 image(s), 1 not fully evaluated:", text.Stdout, StringComparison.Ordinal);
        Assert.Contains("DA0021", text.Stderr, StringComparison.Ordinal); // the notifications name the rules and the reason

        var md = CliRunner.Run(RepoPaths.Root, ["scan", "-f", "markdown", .. Inputs]);
        Assert.Contains("in 2 image(s) from 2 input(s), 1 not fully evaluated.", md.Stdout, StringComparison.Ordinal);

        var json = CliRunner.Run(RepoPaths.Root, ["scan", "-f", "json", .. Inputs]);
        var summary = JsonDocument.Parse(json.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement;
        Assert.Equal(1, summary.GetProperty("notFullyEvaluated").GetInt32());

        // A fully evaluated image alone says nothing of the kind.
        var clean = CliRunner.Run(RepoPaths.Root, ["scan", Inputs[1]]);
        Assert.DoesNotContain("not fully evaluated", clean.Stdout, StringComparison.Ordinal);
    }
}
