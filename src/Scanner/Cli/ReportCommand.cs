using System.CommandLine;
using System.Text;
using DriverAudit.Scanner.Configuration;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Fleet;
using DriverAudit.Scanner.Reporting;

namespace DriverAudit.Scanner.Cli;

/// <summary><c>driveraudit report fleet.sarif|fleet.sqlite -o fleet.html</c>: the fleet as one self-contained HTML page.</summary>
internal static class ReportCommand
{
    public static Command Create(CliIo io)
    {
        var input = new Argument<string>("fleet") { Description = "A fleet database (merge --db) or a SARIF log (merge -o, or one host's scan)." };
        var output = new Option<string?>("--output", "-o") { Description = "Write the HTML to FILE ('-' = stdout), as scan -o does. Default: stdout.", HelpName = "FILE" };
        // One format today; the switch exists so every command that writes results takes the same --format.
        var format = CliInputs.FormatOption("html (one self-contained page). Default: html.", "html", ReportSettings.Formats);
        var command = new Command("report", "Write the fleet as one self-contained HTML file: findings by rule and level, top drivers by hosts " +
                                            "affected, a per-host table and filterable lists; no external scripts, styles or fonts.")
        {
            input, output, format,
        };
        command.SetAction(parse => CliInputs.RunWith(ReportSettings.From(new ReportFlags
        {
            Fleet = parse.GetValue(input),
            Output = parse.GetValue(output),
            Format = parse.GetValue(format),
        }, io.WorkingDirectory), io, settings => Run(settings, io)));
        return command;
    }

    /// <summary>Writes the page with settings already decided.</summary>
    internal static int Run(ReportSettings settings, CliIo io)
    {
        var source = settings.Source;
        // Opened before the fleet is read: a folder or an unwritable place fails fast (exit 2).
        if (CliInputs.OpenOutput(settings.Output, io, "no report was written") is not { } target) return ExitCodes.UsageOrConfiguration;
        using var targetScope = target;
        string? temp = null;
        try
        {
            FleetDatabase db;
            try
            {
                if (IsSqlite(source)) db = FleetDatabase.Open(source, readOnly: true);
                else
                {
                    // A SARIF log goes through the same merge into a scratch database: one report code path.
                    temp = Path.Combine(Path.GetTempPath(), $"driveraudit-report-{Environment.ProcessId}-{Guid.NewGuid():N}.sqlite");
                    db = FleetDatabase.Open(temp);
                    using var ingest = new FleetIngest(db, db.BeginMerge(ToolInfo.SemanticVersion, 1));
                    var s = ingest.Add(source);
                    if (s.Warning is not null) io.Error.WriteLine($"driveraudit: warning: {s.Warning}");
                }
            }
            catch (InvalidDataException e)
            {
                io.Error.WriteLine($"driveraudit: {e.Message}");
                return ExitCodes.UsageOrConfiguration;
            }
            using (db)
            {
                try
                {
                    using (var writer = new StreamWriter(target.Stream, new UTF8Encoding(false), 1 << 16, leaveOpen: true))
                        FleetReport.Write(db, writer, Path.GetFileName(source));
                    target.Commit();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    io.Error.WriteLine($"driveraudit: cannot write '{target.Path ?? "-"}': {e.Message}");
                    return ExitCodes.UsageOrConfiguration;
                }
            }
            return ExitCodes.Clean;
        }
        finally
        {
            if (temp is not null) foreach (var f in new[] { temp, temp + "-journal", temp + "-wal", temp + "-shm" }) File.Delete(f);
        }
    }

    private static bool IsSqlite(string path)
    {
        Span<byte> head = stackalloc byte[16];
        try
        {
            using var f = File.OpenRead(path);
            return f.Read(head) == 16 && head.SequenceEqual("SQLite format 3\0"u8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; } // the SARIF path reports it
    }
}
