using System.Text;

namespace DriverAudit.Scanner.Cli;

/// <summary>The process's streams, injectable so tests run the CLI in-process.</summary>
/// <param name="Interactive">Stdout is a terminal and not CI: colours and a progress display are welcome.</param>
public sealed record CliIo(Stream StdoutStream, TextWriter Out, TextWriter Error, bool Interactive, string WorkingDirectory)
{
    public static CliIo FromConsole()
    {
        var ci = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"));
        var interactive = !ci && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("TERM") != "dumb";
        // Into a pipe or file, stdout is buffered (one write per 64 KiB, not per result line); on a terminal
        // text stays line by line so a person sees results as they come.
        var stdout = new BufferedStream(Console.OpenStandardOutput(), 1 << 16);
        TextWriter text = Console.IsOutputRedirected ? new StreamWriter(stdout, new UTF8Encoding(false), 1 << 14, leaveOpen: true) : Console.Out;
        return new CliIo(stdout, text, Console.Error, interactive, Environment.CurrentDirectory);
    }

    /// <summary>Writes out whatever is buffered (the process calls it before exiting).</summary>
    public void Flush()
    {
        Out.Flush();
        StdoutStream.Flush();
    }
}
