using System.Text;
using DriverAudit.Scanner.Cli;

namespace DriverAudit.TestSupport;

/// <summary>
/// Runs the real command line in-process and captures what it prints. Every SARIF log a test makes through
/// it — to a file or to stdout — is validated against the official schema before the test sees it.
/// </summary>
public static class CliRunner
{
    public sealed record Outcome(int ExitCode, string Stdout, string Stderr);

    public static Outcome Run(string workingDirectory, params string[] args) => RunWithInput(workingDirectory, TextReader.Null, args);

    /// <summary>Runs with <paramref name="stdin"/> as standard input (for <c>--files-from -</c>).</summary>
    /// <summary>
    /// Scans <paramref name="file"/> (in <paramref name="workingDirectory"/>) to SARIF and returns each result as
    /// "ruleId moduleName", sorted: the form the dump tests compare one input's findings with another's.
    /// </summary>
    public static List<string> ScanResultsByModule(string workingDirectory, string file)
    {
        var outcome = Run(workingDirectory, "scan", file, "--format", "sarif", "--output", file + ".sarif", "--no-progress");
        Xunit.Assert.True(outcome.ExitCode is 0 or 1, outcome.Stderr);
        using var sarif = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(workingDirectory, file + ".sarif")));
        var run = sarif.RootElement.GetProperty("runs")[0];
        return [.. run.GetProperty("results").EnumerateArray()
            .Select(r => r.GetProperty("ruleId").GetString() + " " + r.GetProperty("properties").GetProperty("moduleName").GetString())
            .Order(StringComparer.Ordinal)];
    }

    public static Outcome RunWithInput(string workingDirectory, TextReader stdin, params string[] args)
    {
        using var stdout = new MemoryStream();
        var outText = new StringWriter();
        var err = new StringWriter();
        // Text written through the TextWriter and bytes through the stream both count as stdout.
        var exit = DriverAuditCli.Run(args, new CliIo(stdout, outText, err, Interactive: false, workingDirectory) { Input = stdin });
        var printed = outText.ToString() + Encoding.UTF8.GetString(stdout.ToArray());
        ValidateSarif(workingDirectory, args, exit, printed);
        return new Outcome(exit, printed, err.ToString());
    }

    private static void ValidateSarif(string workingDirectory, string[] args, int exit, string stdout)
    {
        if (args.Length == 0 || args[0] != "scan" || exit == 2) return; // exit 2 writes no report
        var output = ValueOf(args, "--output", "-o");
        var format = ValueOf(args, "--format", "-f") ?? DriverAudit.Scanner.Configuration.ScanSettings.FormatFromExtension(output) ?? "text";
        if (format != "sarif") return;
        if (output is not null && output != "-")
        {
            var path = Path.IsPathRooted(output) ? output : Path.Combine(workingDirectory, output);
            // Only a regular file: reading back a FIFO the test wrote to would wait for a writer forever.
            if (DriverAudit.Scanner.Inputs.FileKinds.Of(path) == DriverAudit.Scanner.Inputs.FileKind.Regular) SarifSchema.AssertValid(File.ReadAllText(path));
        }
        else if (!args.Contains("--help") && !args.Contains("-h"))
        {
            SarifSchema.AssertValid(stdout);
        }
    }

    private static string? ValueOf(string[] args, string name, string shortName)
    {
        for (var i = 0; i + 1 < args.Length; i++)
            if (args[i] == name || args[i] == shortName) return args[i + 1];
        return null;
    }
}
