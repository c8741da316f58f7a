using System.Text;

namespace DriverAudit.Scanner.Cli;

/// <summary>The process's streams, injectable so tests run the CLI in-process.</summary>
/// <param name="Interactive">Stdout is a terminal (and TERM is not "dumb"): colours are welcome there (--color auto).</param>
internal sealed record CliIo(Stream StdoutStream, TextWriter Out, TextWriter Error, bool Interactive, string WorkingDirectory)
{
    /// <summary>Stderr is a terminal: the only place a progress display may appear.</summary>
    public bool ErrorIsTerminal { get; init; }

    /// <summary>Standard input, for <c>--files-from -</c>.</summary>
    public TextReader Input { get; init; } = TextReader.Null;

    /// <summary>Environment variables (NO_COLOR), injectable for tests.</summary>
    public Func<string, string?> GetEnvironmentVariable { get; init; } = _ => null;

    /// <summary>
    /// The real process installs SIGINT/SIGTERM handlers that stop a scan and remove its temporary files;
    /// in-process test runs do not (a test host's signals are its own).
    /// </summary>
    public bool HandleSignals { get; init; }

    public static CliIo FromConsole()
    {
        var terminal = Environment.GetEnvironmentVariable("TERM") != "dumb";
        // Into a pipe or file, stdout is buffered (one write per 64 KiB, not per result line); on a terminal
        // text stays line by line so a person sees results as they come.
        var stdout = new BufferedStream(Console.OpenStandardOutput(), 1 << 16);
        TextWriter text = Console.IsOutputRedirected ? new StreamWriter(stdout, new UTF8Encoding(false), 1 << 14, leaveOpen: true) : Console.Out;
        return new CliIo(stdout, text, Console.Error, terminal && !Console.IsOutputRedirected, Environment.CurrentDirectory)
        {
            ErrorIsTerminal = terminal && !Console.IsErrorRedirected,
            Input = Console.In,
            GetEnvironmentVariable = Environment.GetEnvironmentVariable,
            HandleSignals = true,
        };
    }

    /// <summary>Writes out whatever is buffered (the process calls it before exiting).</summary>
    public void Flush()
    {
        Out.Flush();
        StdoutStream.Flush();
    }
}
