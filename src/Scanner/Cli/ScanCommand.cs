using System.CommandLine;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Fleet;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Reporting;
using DriverAudit.Scanner.Reporting.Sarif;
using Spectre.Console;

namespace DriverAudit.Scanner.Cli;

/// <summary><c>driveraudit scan PATH...</c>: crawl, analyse, report, gate.</summary>
public static class ScanCommand
{
    public static Command Create(CliIo io)
    {
        var paths = new Argument<string[]>("paths")
        {
            Description = "Files and folders to scan. Folders are walked recursively; files named here are always scanned.",
            Arity = ArgumentArity.OneOrMore,
        };
        paths.Validators.Add(CliInputs.RejectUnknownOptions);
        var output = new Option<string?>("--output", "-o") { Description = "Write the report to this file (atomically) instead of stdout." };
        var format = new Option<string?>("--format", "-f")
        {
            Description = "sarif, text or json (JSON Lines). Default: text on a terminal, sarif otherwise.",
        };
        format.AcceptOnlyFromAmong("sarif", "text", "json");
        var include = new Option<string[]>("--include")
        {
            Description = "Glob of files to scan inside folders (repeatable). Default: **/*.sys and **/*.dmp.",
            AllowMultipleArgumentsPerToken = false,
        };
        var exclude = new Option<string[]>("--exclude") { Description = "Glob of files to skip inside folders (repeatable)." };
        var rules = new Option<string[]>("--rules") { Description = "Extra rule file or folder of *.yaml rules (repeatable)." };
        var noDefault = new Option<bool>("--no-default-rules") { Description = "Do not load the rule pack embedded in driveraudit." };
        var failOn = new Option<string?>("--fail-on")
        {
            Description = "Lowest finding level that makes the exit code 1: error, warning, note or none. Default: error.",
        };
        failOn.AcceptOnlyFromAmong("error", "warning", "note", "none");
        var failOnError = new Option<bool>("--fail-on-error") { Description = "Exit with 3 when some inputs could not be analysed." };
        var jobs = new Option<int>("--jobs", "-j")
        {
            Description = "Inputs analysed in parallel. Default: the number of processors.",
            DefaultValueFactory = _ => Environment.ProcessorCount,
        };
        jobs.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > 256) r.AddError("--jobs must be between 1 and 256.");
        });
        var sourceRoot = new Option<string?>("--source-root")
        {
            Description = "Folder that SARIF URIs are relative to (%SRCROOT%). Default: the current folder.",
        };
        var category = new Option<string>("--category")
        {
            Description = "SARIF run category (automationDetails.id).",
            DefaultValueFactory = _ => "driveraudit/",
        };
        var noProgress = new Option<bool>("--no-progress") { Description = "Never show the progress display." };
        var baseline = new Option<string?>("--baseline")
        {
            Description = "A previous SARIF log: results get baselineState new/unchanged/absent, and only new results gate the exit code.",
        };
        var only = new Option<string[]>("--only")
        {
            Description = "Run only the rules matching these ids or names; * and ? are wildcards, comma lists allowed (repeatable). " +
                          "Replaces the config file's 'only' and 'disable'.",
        };
        var disable = new Option<string[]>("--disable")
        {
            Description = "Do not run the rules matching these ids or names (wildcards, comma lists; repeatable).",
        };
        var level = new Option<string[]>("--level")
        {
            Description = "Report rules at another level: RULE=note|warning|error, RULE an id or name with wildcards (repeatable; the last match wins).",
        };
        var hashList = new Option<string[]>("--hash-list")
        {
            Description = "NAME=FILE: a hash list for rules that name '@NAME' (DA6001 reads '@known-vulnerable'): a plain list of " +
                          "SHA-256/SHA-1 hashes, or LOLDrivers' drivers.csv / drivers.json (repeatable; wins over the config's hash-lists).",
        };
        var config = new Option<string?>("--config")
        {
            Description = $"Read settings from this YAML file. Default: {ConfigFile.DefaultName} in the source root, when present. " +
                          "Keys: only, disable, level, include, exclude, rules, fail-on, hash-lists. Command-line options win: " +
                          "their lists replace the file's, --level overrides merge (the command line's last), rule paths add up.",
        };

        var fleet = new FleetOptions();

        var command = new Command("scan", "Scan driver files and folders; report findings as text, SARIF or JSON.")
        {
            paths, output, format, include, exclude, rules, noDefault, only, disable, level, config, failOn, failOnError, jobs, sourceRoot,
            hashList, category, baseline, noProgress,
        };
        fleet.AddTo(command);

        command.SetAction(parse =>
        {
            var root = new SourceRoot(CliInputs.Resolve(parse.GetValue(sourceRoot), io) ?? io.WorkingDirectory);
            ConfigFile settings;
            try
            {
                settings = ConfigFile.Discover(CliInputs.Resolve(parse.GetValue(config), io), root.FullPath);
            }
            catch (ConfigException e)
            {
                foreach (var error in e.Errors) io.Error.WriteLine(error.ToString());
                io.Error.WriteLine($"driveraudit: {e.Errors.Count} configuration error(s); nothing was scanned.");
                return ExitCodes.UsageOrConfiguration;
            }
            var levels = RuleSelector.ParseLevelOptions(parse.GetValue(level) ?? [], io.Error);
            if (levels is null) return ExitCodes.UsageOrConfiguration;
            var commandLine = new SelectionLayer(
                Patterns(parse.GetValue(only), "--only"), Patterns(parse.GetValue(disable), "--disable"), levels);

            var lists = new Dictionary<string, string>(settings.HashLists, StringComparer.Ordinal);
            foreach (var entry in parse.GetValue(hashList) ?? [])
            {
                var eq = entry.IndexOf('=');
                if (eq <= 0 || eq == entry.Length - 1)
                {
                    io.Error.WriteLine($"driveraudit: --hash-list expects NAME=FILE, got '{entry}'.");
                    return ExitCodes.UsageOrConfiguration;
                }
                lists[entry[..eq]] = CliInputs.Resolve(entry[(eq + 1)..], io)!;
            }
            var loaded = LoadRules([.. settings.Rules, .. parse.GetValue(rules) ?? []], !parse.GetValue(noDefault), io, lists);
            if (loaded is null) return ExitCodes.UsageOrConfiguration;
            var ruleSet = RuleSelector.Apply(loaded, [settings.Selection, commandLine], io.Error);

            var outPath = CliInputs.Resolve(parse.GetValue(output), io);
            Baseline? previous = null;
            if (CliInputs.Resolve(parse.GetValue(baseline), io) is { } baselinePath)
            {
                try { previous = Baseline.Load(baselinePath); }
                catch (InvalidDataException e)
                {
                    io.Error.WriteLine($"driveraudit: --baseline: {e.Message}");
                    return ExitCodes.UsageOrConfiguration;
                }
            }
            var fmt = parse.GetValue(format) ?? (outPath is null && io.Interactive ? "text" : "sarif");
            var options = new ScanOptions(
                parse.GetValue(jobs),
                (parse.GetValue(failOn) ?? settings.FailOn) switch { "note" => RuleLevel.Note, "warning" => RuleLevel.Warning, "none" => null, _ => RuleLevel.Error },
                parse.GetValue(failOnError),
                ComputeHashes: fmt == "sarif");

            var items = fleet.Select(parse, CliInputs.Crawl(io, parse.GetValue(paths), new CrawlOptions(
                OrConfig(parse.GetValue(include), settings.Include), OrConfig(parse.GetValue(exclude), settings.Exclude)), root), parse.GetValue(paths), io);
            if (!fleet.TryOpenCache(parse, ruleSet, lists.Values, io, out var cache)) return ExitCodes.UsageOrConfiguration;

            IScanSink sink;
            try
            {
                sink = fmt switch
                {
                    "sarif" => new SarifWriter(outPath, io.StdoutStream, parse.GetValue(category)!),
                    "json" => new JsonLinesSink(outPath, io.StdoutStream),
                    _ => new TextWriterSink(outPath, io.Out, io.Error, color: io.Interactive),
                };
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                io.Error.WriteLine($"driveraudit: cannot write '{outPath}': {e.Message}");
                return ExitCodes.UsageOrConfiguration;
            }

            using (cache)
            using (sink)
            {
                var context = new ScanContext(ruleSet.Rules, root.FullPath, root.AsFileUri, DateTimeOffset.UtcNow, previous, fleet.HostLabelFor(parse, parse.GetValue(paths), io));
                var engine = new ScanEngine(FleetOptions.Analyzer(ruleSet, options, cache), options);
                // Progress only where a person watches and results do not go to the same screen.
                var showProgress = io.Interactive && !parse.GetValue(noProgress) && (outPath is not null || fmt != "text") && !Console.IsErrorRedirected;
                ScanSummary summary;
                if (showProgress)
                {
                    var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
                    summary = console.Status().Start("Scanning…", ctx =>
                        engine.Run(items, sink, context, n => ctx.Status($"Scanning… {n} input(s) done")));
                }
                else
                {
                    summary = engine.Run(items, sink, context);
                }
                if (fmt != "text") io.Error.WriteLine(TextWriterSink.SummaryLine(summary));
                FleetOptions.Report(cache, io);
                return summary.ExitCode;
            }
        });
        return command;
    }

    /// <summary>
    /// A hash list for a rule: <c>@name</c> from --hash-list / the config's hash-lists, else a path relative to the
    /// rule file (to the working directory for embedded rules). Null when it does not exist.
    /// </summary>
    private static ListContent? ReadList(string reference, string ruleFile, IReadOnlyDictionary<string, string> named, CliIo io)
    {
        string? path;
        if (reference.StartsWith('@'))
            path = named.TryGetValue(reference[1..], out var file) ? file : null;
        else
        {
            var baseDir = ruleFile.StartsWith("embedded:", StringComparison.Ordinal) ? io.WorkingDirectory : Path.GetDirectoryName(Path.GetFullPath(ruleFile))!;
            path = Path.GetFullPath(Path.Combine(baseDir, reference));
        }
        if (path is null || FileKinds.Of(path) == FileKind.Missing) return null;
        try { return new ListContent(ArgumentFile.ReadAllText(path, ArgumentFile.MaxHashListBytes, "hash list"), path); }
        catch (ArgumentFileException e) { return new ListContent("", path, e.Reason); }
    }

    private static IReadOnlyList<RulePattern> Patterns(string[]? values, string origin) =>
        [.. (values ?? []).SelectMany(v => RulePattern.Split(v, origin))];

    /// <summary>A list option given on the command line replaces the config file's list.</summary>
    private static IReadOnlyList<string> OrConfig(string[]? commandLine, IReadOnlyList<string> config) =>
        commandLine is { Length: > 0 } ? commandLine : config;

    /// <summary>Loads and compiles the rules; prints every error as file:line:column and returns null on failure.</summary>
    internal static RuleSet? LoadRules(IReadOnlyList<string> extra, bool includeDefault, CliIo io, IReadOnlyDictionary<string, string>? hashLists = null)
    {
        var errors = new List<RuleError>();
        var lists = hashLists ?? new Dictionary<string, string>();
        foreach (var (name, file) in lists)
            if (ArgumentFile.Refusal(file) is { } why) errors.Add(new RuleError(file, 1, 1, $"hash list '{name}' {why}"));
        var sources = new List<RuleSource>();
        if (includeDefault) sources.AddRange(RuleSources.Embedded());
        foreach (var path in extra)
            sources.AddRange(RuleSources.FromPath(Path.IsPathRooted(path) ? path : Path.Combine(io.WorkingDirectory, path), errors));
        if (sources.Count == 0 && errors.Count == 0)
            errors.Add(new RuleError("(command line)", 1, 1, "no rules: --no-default-rules was given without --rules"));

        if (errors.Count == 0)
        {
            try
            {
                var set = RuleSet.Load(sources, new RuleLoadOptions { ResolveList = (reference, ruleFile) => ReadList(reference, ruleFile, lists, io) });
                // The embedded pack's named lists are optional by design (DA6001 is silent without one): no noise.
                foreach (var w in set.Warnings.Where(w => !w.File.StartsWith("embedded:", StringComparison.Ordinal))) io.Error.WriteLine(w.ToString());
                return set;
            }
            catch (RuleLoadException e)
            {
                errors.AddRange(e.Errors);
            }
        }
        foreach (var e in errors) io.Error.WriteLine($"{e}");
        io.Error.WriteLine($"driveraudit: {errors.Count} rule error(s); nothing was scanned.");
        return null;
    }
}
