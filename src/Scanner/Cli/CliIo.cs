namespace DriverAudit.Scanner.Cli;

/// <summary>The process's streams, injectable so tests run the CLI in-process.</summary>
/// <param name="Interactive">Stdout is a terminal and not CI: colours and a progress display are welcome.</param>
public sealed record CliIo(Stream StdoutStream, TextWriter Out, TextWriter Error, bool Interactive, string WorkingDirectory)
{
    public static CliIo FromConsole()
    {
        var ci = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"));
        var interactive = !ci && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("TERM") != "dumb";
        return new CliIo(Console.OpenStandardOutput(), Console.Out, Console.Error, interactive, Environment.CurrentDirectory);
    }
}
