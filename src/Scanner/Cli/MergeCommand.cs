using System.CommandLine;
using DriverAudit.Scanner.Configuration;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Fleet;
using DriverAudit.Scanner.Reporting;

namespace DriverAudit.Scanner.Cli;

/// <summary>
/// <c>driveraudit merge LOGS... [-o fleet.sarif] [--db fleet.sqlite]</c>: per-host SARIF logs and inventories into one
/// fleet run and a SQLite database. Without --db the database is a temporary file: the SARIF is always written from it.
/// </summary>
internal static class MergeCommand
{
    public static Command Create(CliIo io)
    {
        var logs = CliInputs.PathsArgument("Per-host SARIF logs (scan --host H -f sarif), inventories (inventory --host H) or earlier fleet logs.");
        var output = new Option<string?>("--output", "-o") { Description = "Write the fleet SARIF log to FILE ('-' = stdout), as scan -o does. Default: stdout, unless --db is given.", HelpName = "FILE" };
        var db = new Option<string?>("--db")
        {
            Description = "Fleet database (SQLite) to create or add this merge to; earlier merges stay, so 'new since the previous merge' can be asked.",
        };
        // One format today; the switch exists so every command that writes results takes the same --format.
        var format = CliInputs.FormatOption("sarif (the fleet run as one SARIF log). Default: sarif.", "sarif", MergeSettings.Formats);
        var command = new Command("merge", "Merge per-host logs: artifacts de-duplicated by SHA-256, each result listing every host that has it, rules once; " +
                                           "optionally into a SQLite fleet database (docs/fleet-database.md).")
        {
            logs, output, format, db,
        };
        command.SetAction(parse => CliInputs.RunWith(MergeSettings.From(new MergeFlags
        {
            Logs = parse.GetValue(logs) ?? [],
            Output = parse.GetValue(output),
            Db = parse.GetValue(db),
            Format = parse.GetValue(format),
        }, io.WorkingDirectory), io, settings => Run(settings, io)));
        return command;
    }

    /// <summary>Merges with settings already decided; 3 when a log could not be read.</summary>
    internal static int Run(MergeSettings settings, CliIo io)
    {
        var dbPath = settings.DbPath;
        if (dbPath is not null && Directory.Exists(dbPath))
        {
            io.Error.WriteLine($"driveraudit: '{dbPath}' is a folder.");
            return ExitCodes.UsageOrConfiguration;
        }
        // The SARIF goes to -o, else stdout unless only --db was asked for; opened before any log is read.
        ReportOutput? target = null;
        if (settings.WritesSarif)
        {
            target = CliInputs.OpenOutput(settings.Output, io, "nothing was merged");
            if (target is null) return ExitCodes.UsageOrConfiguration;
        }
        using var targetScope = target;
        var paths = settings.Logs;
        var temp = dbPath is null ? Path.Combine(Path.GetTempPath(), $"driveraudit-merge-{Environment.ProcessId}-{Guid.NewGuid():N}.sqlite") : null;
        try
        {
            FleetDatabase database;
            try { database = FleetDatabase.Open(dbPath ?? temp!); }
            catch (InvalidDataException e)
            {
                io.Error.WriteLine($"driveraudit: --db: {e.Message}");
                return ExitCodes.UsageOrConfiguration;
            }
            using (database)
            {
                var problems = new List<string>();
                int images = 0, results = 0;
                var hosts = new HashSet<string>(StringComparer.Ordinal);
                using (var ingest = new FleetIngest(database, database.BeginMerge(ToolInfo.SemanticVersion, paths.Count)))
                {
                    foreach (var path in paths)
                    {
                        try
                        {
                            var s = ingest.Add(path);
                            if (s.Warning is not null) io.Error.WriteLine($"driveraudit: warning: {s.Warning}");
                            images += s.Images;
                            results += s.Results;
                            hosts.UnionWith(s.Hosts);
                        }
                        catch (InvalidDataException e)
                        {
                            problems.Add(e.Message);
                            io.Error.WriteLine($"driveraudit: {e.Message}");
                        }
                    }
                }
                if (target is not null)
                {
                    try
                    {
                        FleetSarif.Write(database, target.Stream, problems, problems.Count == 0);
                        target.Commit();
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        io.Error.WriteLine($"driveraudit: cannot write '{target.Path ?? "-"}': {e.Message}");
                        return ExitCodes.UsageOrConfiguration;
                    }
                }
                io.Error.WriteLine($"Merged {paths.Count - problems.Count} of {paths.Count} log(s): {hosts.Count} host(s), {images} image record(s), {results} result(s)" +
                                   (dbPath is null ? "." : $"; database '{dbPath}'."));
                // 3: the fleet view has holes (a log could not be read), as for scan --fail-on-error.
                return problems.Count > 0 ? ExitCodes.InputErrors : ExitCodes.Clean;
            }
        }
        finally
        {
            if (temp is not null) foreach (var f in new[] { temp, temp + "-journal", temp + "-wal", temp + "-shm" }) File.Delete(f);
        }
    }
}
