using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.Json;
using DriverAudit.Scanner.Configuration;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Reporting;

namespace DriverAudit.Scanner.Cli;

/// <summary>What every command that reads inputs shares: the paths argument, the crawl, JSON Lines output.</summary>
internal static class CliInputs
{
    /// <summary>A one-or-more paths argument that refuses unknown dash-words (see <see cref="RejectUnknownOptions"/>).</summary>
    public static Argument<string[]> PathsArgument(string description)
    {
        var paths = new Argument<string[]>("paths") { Description = description, Arity = ArgumentArity.OneOrMore };
        paths.Validators.Add(RejectUnknownOptions);
        return paths;
    }

    /// <summary>
    /// A path argument swallows any token, so an unknown option such as <c>--fial-on</c> would be taken for a
    /// file name. Refuse dash-words that name nothing on disk (a real file can still follow <c>--</c>).
    /// </summary>
    public static void RejectUnknownOptions(ArgumentResult result)
    {
        foreach (var token in result.Tokens)
            if (token.Value.StartsWith('-') && token.Value.Length > 1 && !File.Exists(token.Value) && !Directory.Exists(token.Value))
                result.AddError($"Unrecognized option '{token.Value}'.");
    }

    /// <summary>
    /// Every command's <c>--format</c> / <c>-f</c>: one switch with one spelling, offering exactly the formats the
    /// command can write (shell completion lists them). <paramref name="defaultValue"/> null: the command decides
    /// (scan: from <c>-o</c>'s extension).
    /// </summary>
    public static Option<string?> FormatOption(string description, string? defaultValue, params string[] formats)
    {
        var option = new Option<string?>("--format", "-f") { Description = description };
        if (defaultValue is not null) option.DefaultValueFactory = _ => defaultValue;
        option.AcceptOnlyFromAmong(formats);
        return option;
    }

    /// <summary>
    /// Every command's last step before running: settings, or every usage error printed at once and exit 2
    /// (<see cref="ExitCodes.UsageOrConfiguration"/>) before any input is read.
    /// </summary>
    public static int RunWith<T>(SettingsResult<T> result, CliIo io, Func<T, int> run)
        where T : class
    {
        if (result.Settings is { } settings) return run(settings);
        foreach (var error in result.Errors) io.Error.WriteLine(error);
        return ExitCodes.UsageOrConfiguration;
    }

    /// <summary>Options name paths relative to the working directory the CLI was given (tests run it in-process).</summary>
    public static string? Resolve(string? path, CliIo io) => ScanSettings.Resolve(path, io.WorkingDirectory);

    /// <summary>
    /// Every command that reads inputs refuses the same way a path that is not there: a usage error (exit 2) before
    /// anything is read, since a typo must never pass for an empty or clean result. Prints each missing path (ten at most).
    /// </summary>
    /// <param name="verb">"scanned", "inspected", "listed": ends "nothing was …".</param>
    public static bool AllExist(IEnumerable<string> paths, CliIo io, string verb)
    {
        var missing = paths.Where(p => !PathExists(Resolve(p, io)!)).ToList();
        foreach (var p in missing.Take(10)) io.Error.WriteLine($"driveraudit: error: '{p}' does not exist.");
        if (missing.Count > 10) io.Error.WriteLine($"driveraudit: … and {missing.Count - 10} more missing path(s).");
        if (missing.Count == 0) return true;
        io.Error.WriteLine($"driveraudit: nothing was {verb}.");
        return false;
    }

    private static bool PathExists(string path)
    {
        try { return File.Exists(path) || Directory.Exists(path); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException) { return false; }
    }

    /// <summary>
    /// Every command's <c>-o</c>: null or <c>-</c> is stdout, anything else goes through <see cref="ReportOutput.Open"/>
    /// (atomic replace, links followed, special files written directly, folders refused). Opened before the command
    /// does any work; a refusal is printed with <paramref name="consequence"/> ("nothing was scanned") and gives null (exit 2).
    /// </summary>
    public static ReportOutput? OpenOutput(string? argument, CliIo io, string consequence)
    {
        try
        {
            return argument is null ? ReportOutput.Stdout(io.StdoutStream)
                : ReportOutput.Open(argument == "-" ? "-" : Resolve(argument, io)!, io.StdoutStream);
        }
        catch (OutputRefusedException e)
        {
            io.Error.WriteLine($"driveraudit: {e.Message}; {consequence}.");
            return null;
        }
    }

    /// <summary>The crawl of the command line's paths, resolved against the working directory.</summary>
    public static IEnumerable<InputItem> Crawl(CliIo io, IEnumerable<string>? paths, CrawlOptions options, SourceRoot root) =>
        new InputCrawler(options, root).Enumerate((paths ?? []).Select(p => Resolve(p, io)!));

    /// <summary>Ends one JSON Lines object: the writer is flushed and reset for the next root value.</summary>
    public static void EndJsonLine(Utf8JsonWriter writer, CliIo io)
    {
        writer.Flush();
        writer.Reset();
        io.StdoutStream.WriteByte((byte)'\n');
        io.StdoutStream.Flush();
    }
}
