using System.CommandLine;
using DriverAudit.Scanner.Configuration;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Fleet;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Reporting;

namespace DriverAudit.Scanner.Cli;

/// <summary>
/// <c>driveraudit inventory PATHS [--host] [--format json|csv]</c>: one record per driver image (file or dump module)
/// with hashes, build, version and signer facts and the ids of the rules that fired — the per-host half of a sweep.
/// </summary>
internal static class InventoryCommand
{
    public static Command Create(CliIo io)
    {
        var paths = CliInputs.PathsArgument("Driver files, kernel dumps or folders to list.");
        var fleet = new FleetOptions();
        var format = CliInputs.FormatOption("json (JSON Lines, one object per image) or csv. Default: json.", "json", InventorySettings.Formats);
        var output = new Option<string?>("--output", "-o") { Description = "Write the inventory to FILE ('-' = stdout) instead of stdout, as scan -o does: atomically, links followed, special files written directly.", HelpName = "FILE" };
        var include = new Option<string[]>("--include") { Description = "Glob of files to list inside folders (repeatable). Default: **/*.sys and **/*.dmp." };
        var exclude = new Option<string[]>("--exclude") { Description = "Glob of files to skip inside folders (repeatable)." };
        var rules = new Option<string[]>("--rules") { Description = "Extra rule file or folder of *.yaml rules (repeatable)." };
        var noDefault = new Option<bool>("--no-default-rules") { Description = "Do not run the embedded rule pack (ruleIds then lists only --rules)." };
        var jobs = new Option<int>("--jobs", "-j")
        {
            Description = "Inputs analysed in parallel. Default: the number of processors.",
            DefaultValueFactory = _ => Environment.ProcessorCount,
        };
        jobs.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > 256) r.AddError("--jobs must be between 1 and 256.");
        });
        var command = new Command("inventory", "List driver images with hashes (file, SHA-1, Authenticode), machine, timestamp, PDB, " +
                                               "version info, signer and the ids of the rules that fired, as JSON Lines or CSV.")
        {
            paths, format, output, include, exclude, rules, noDefault, jobs,
        };
        fleet.AddTo(command);
        command.SetAction(parse => CliInputs.RunWith(InventorySettings.From(new InventoryFlags
        {
            Paths = parse.GetValue(paths) ?? [],
            Format = parse.GetValue(format),
            Output = parse.GetValue(output),
            Include = parse.GetValue(include) ?? [],
            Exclude = parse.GetValue(exclude) ?? [],
            Rules = parse.GetValue(rules) ?? [],
            NoDefaultRules = parse.GetValue(noDefault),
            Jobs = parse.GetValue(jobs),
            Host = parse.GetValue(fleet.Host),
            Shard = parse.GetValue(fleet.Shard),
            Cache = parse.GetValue(fleet.Cache),
        }, io.WorkingDirectory, Environment.ProcessorCount), io, settings => Run(settings, io)));
        return command;
    }

    /// <summary>Lists with settings already decided; 3 when something could not be listed.</summary>
    internal static int Run(InventorySettings settings, CliIo io)
    {
        if (!CliInputs.AllExist(settings.Paths, io, "listed")) return ExitCodes.UsageOrConfiguration;
        var ruleSet = ScanCommand.LoadRules(settings.RulePaths, settings.IncludeDefaultRules, io);
        if (ruleSet is null) return ExitCodes.UsageOrConfiguration;
        var root = new SourceRoot(io.WorkingDirectory);
        var sweep = new FleetSettings(settings.Host, settings.Shard, settings.CachePath);
        var options = new ScanOptions(settings.Jobs, FailOn: null, FailOnInputError: true, ComputeHashes: false, CollectInventory: true);
        // The output is opened before any input is read: a folder or an unwritable place fails fast (exit 2).
        if (CliInputs.OpenOutput(settings.Output, io, "nothing was listed") is not { } target) return ExitCodes.UsageOrConfiguration;
        using var targetScope = target;
        var items = sweep.Select(CliInputs.Crawl(io, settings.Paths, new CrawlOptions(settings.Include, settings.Exclude), root), settings.Paths, io);
        if (!sweep.TryOpenCache(ruleSet, [], io, out var cache)) return ExitCodes.UsageOrConfiguration;
        var sink = new InventorySink(target, settings.Csv, io.Error);
        using (cache)
        using (sink)
        {
            var context = new ScanContext(ruleSet.Rules, root.FullPath, root.AsFileUri, DateTimeOffset.UtcNow, Host: sweep.HostLabelFor(settings.Paths, io));
            var summary = new ScanEngine(FleetOptions.Analyzer(ruleSet, options, cache), options).Run(items, sink, context);
            FleetOptions.Report(cache, io);
            io.Error.WriteLine($"Listed {summary.Analyzed} image(s) from {summary.Inputs} input(s)" +
                               (summary.Failed > 0 ? $"; {summary.Failed} could not be analysed." : "."));
            // 3 when something could not be listed: an inventory with holes must not pass for a complete one.
            return summary.Failed > 0 ? ExitCodes.InputErrors : ExitCodes.Clean;
        }
    }
}
