using System.Text;
using DriverAudit.Scanner.Cli;

namespace DriverAudit.Scanner.Tests.TestSupport;

/// <summary>Runs the real command line in-process and captures what it prints.</summary>
public static class CliRunner
{
    public sealed record Outcome(int ExitCode, string Stdout, string Stderr);

    public static Outcome Run(string workingDirectory, params string[] args)
    {
        using var stdout = new MemoryStream();
        var outText = new StringWriter();
        var err = new StringWriter();
        // Text written through the TextWriter and bytes through the stream both count as stdout.
        var exit = DriverAuditCli.Run(args, new CliIo(stdout, outText, err, Interactive: false, workingDirectory));
        var printed = outText.ToString() + Encoding.UTF8.GetString(stdout.ToArray());
        return new Outcome(exit, printed, err.ToString());
    }
}
