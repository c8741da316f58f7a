using System.CommandLine;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Configuration;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Fleet;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Reporting;
using DriverAudit.Scanner.Reporting.Sarif;
using DriverAudit.Scanner.RulePack;
using Spectre.Console;

namespace DriverAudit.Scanner.Cli;

/// <summary>
/// <c>driveraudit scan PATH...</c>: crawl, analyse, report, gate. Three steps: the options are declared
/// (<see cref="ScanOptionSet"/>), a parse becomes <see cref="ScanFlags"/> and then immutable <see cref="ScanSettings"/>
/// (defaults, driveraudit.yaml, flags: <see cref="ScanSettings.Merge"/>), and <see cref="Run"/> scans with them.
/// </summary>
internal static class ScanCommand
{
    /// <summary>Declares the options; running is <see cref="Execute"/>: settings first, then the scan.</summary>
    public static Command Create(CliIo io)
    {
        var o = new ScanOptionSet();
        var command = new Command("scan", "Scan driver files, folders and kernel dumps; report findings as text, SARIF, JSON Lines or Markdown.")
        {
            o.Paths, o.FilesFrom, o.Output, o.Format, o.Color, o.Quiet, o.Include, o.Exclude, o.Rules, o.NoDefault, o.Only, o.Disable, o.Level, o.Config,
            o.FailOn, o.FailOnError, o.Jobs, o.TimeLimit, o.SourceRoot, o.HashList, o.Category, o.Baseline, o.IncludeAbsent, o.IncludeSuppressed, o.NoProgress,
        };
        o.Fleet.AddTo(command);
        command.SetAction(parse => Execute(o.Read(parse), io));
        return command;
    }

    /// <summary>
    /// Raw options → settings (the config file read, then <see cref="ScanSettings.Merge"/>) → <see cref="Run"/>.
    /// Any problem with the settings is a usage error (exit 2) before an input is read.
    /// </summary>
    internal static int Execute(ScanFlags flags, CliIo io)
    {
        var root = CliInputs.Resolve(flags.SourceRoot, io) ?? RepositoryRoot(io.WorkingDirectory);
        ConfigFile config;
        try
        {
            config = ConfigFile.Discover(CliInputs.Resolve(flags.Config, io), new SourceRoot(root).FullPath);
        }
        catch (ConfigException e)
        {
            foreach (var error in e.Errors) io.Error.WriteLine(error.ToString());
            io.Error.WriteLine($"driveraudit: {e.Errors.Count} configuration error(s); nothing was scanned.");
            return ExitCodes.UsageOrConfiguration;
        }
        return CliInputs.RunWith(ScanSettings.Merge(flags, config, io.WorkingDirectory, root, Environment.ProcessorCount), io, settings => Run(settings, io));
    }

    /// <summary>Runs a scan with settings already decided: rules, output, inputs, engine, sink, exit code.</summary>
    internal static int Run(ScanSettings settings, CliIo io)
    {
        var root = new SourceRoot(settings.SourceRoot);
        var loaded = LoadRules(settings.RulePaths, settings.IncludeDefaultRules, io, settings.HashLists);
        if (loaded is null) return ExitCodes.UsageOrConfiguration;
        var selected = RuleSelector.Apply(loaded, settings.Selection, io.Error);
        if (selected is null) return ExitCodes.UsageOrConfiguration;
        var ruleSet = WithoutRulesMissingLists(selected, loaded, settings.CommandLineSelection, io.Error, settings.Quiet);
        if (ruleSet is null) return ExitCodes.UsageOrConfiguration;
        var startTime = DateTimeOffset.UtcNow;
        var suppressions = ConfigSuppressions.ForRun(settings.Config, root, loaded, startTime, io.Error);

        Baseline? previous = null;
        if (settings.BaselinePath is { } baselinePath)
        {
            try { previous = Baseline.Load(baselinePath); }
            catch (InvalidDataException e)
            {
                io.Error.WriteLine($"driveraudit: --baseline: {e.Message}");
                return ExitCodes.UsageOrConfiguration;
            }
        }

        // Signals are handled from before the output exists, so no temporary file can outlive an interrupted run.
        using var interruption = Interruption.Install(io.HandleSignals, io.Error);
        // The output is checked and opened before any input is read: a folder or an unwritable place fails fast.
        if (CliInputs.OpenOutput(settings.Output, io, "nothing was scanned") is not { } target) return ExitCodes.UsageOrConfiguration;

        using (target)
        {
            var fleet = new FleetSettings(settings.Host, settings.Shard, settings.CachePath);
            // Keyed on the selection before list-less rules are left out: they find nothing either way, and
            // `inventory --cache` keys on the same set.
            if (!fleet.TryOpenCache(selected, settings.HashLists.Values, io, out var cache)) return ExitCodes.UsageOrConfiguration;
            using var cacheScope = cache;
            // Inputs fail closed: scanning nothing must never look like a clean scan (an empty SARIF upload closes every alert).
            var inputPaths = InputPaths([.. settings.Paths], settings.FilesFrom, io);
            if (inputPaths is null) return ExitCodes.UsageOrConfiguration;
            var crawl = CliInputs.Crawl(io, inputPaths, new CrawlOptions(settings.Include, settings.Exclude), root);
            var found = FirstFileOrNothing(crawl, out var skipped);
            if (found is null)
            {
                // Say why each input was skipped (a FIFO, a device, an unreadable folder): "no file matching" alone misleads.
                foreach (var problem in skipped) io.Error.WriteLine($"driveraudit: {problem.Code}: {problem.Message}");
                io.Error.WriteLine($"driveraudit: no file to scan: the inputs hold no file matching {string.Join(", ", settings.Include is { Count: > 0 } inc ? inc : CrawlOptions.DefaultIncludes)}" +
                                   (settings.Exclude is { Count: > 0 } exc ? $" (excluding {string.Join(", ", exc)})" : "") +
                                   "; nothing was scanned.");
                return ExitCodes.UsageOrConfiguration;
            }
            var items = fleet.Select(found, inputPaths, io);

            var colorOn = settings.Color switch
            {
                ColorMode.Always => true,
                ColorMode.Never => false,
                _ => target.IsStdout && io.Interactive && string.IsNullOrEmpty(io.GetEnvironmentVariable("NO_COLOR")),
            };
            var options = new ScanOptions(settings.Jobs, settings.FailOn, settings.FailOnInputError,
                ComputeHashes: settings.Format == "sarif" || suppressions.NeedsHashes)
            {
                TimeLimit = settings.TimeLimit,
            };

            using IScanSink sink = settings.Format switch
            {
                "sarif" => new SarifWriter(target, SarifWriter.CategoryId(settings.Category), includeAbsent: settings.IncludeAbsent, includeSuppressed: settings.IncludeSuppressed),
                "json" => new JsonLinesSink(target),
                "markdown" => new MarkdownSink(target),
                _ => new TextWriterSink(target, io.Out, io.Error, colorOn, settings.Quiet),
            };
            var context = new ScanContext(ruleSet.Rules, root.FullPath, root.AsFileUri, startTime, previous, fleet.HostLabelFor(inputPaths, io))
            {
                Suppressions = suppressions,
            };
            var engine = new ScanEngine(FleetOptions.Analyzer(ruleSet, options, cache), options);
            // Progress only on a terminal's stderr, and never over a report printed on the same screen.
            var showProgress = io.ErrorIsTerminal && !settings.NoProgress && !settings.Quiet && !(target.IsStdout && io.Interactive);
            ScanSummary summary;
            try
            {
                summary = showProgress
                    ? Progress.Run(io, crawl, total => engine.Run(items, sink, context, total, interruption.Token))
                    : engine.Run(items, sink, context, null, interruption.Token);
            }
            catch (OperationCanceledException) when (interruption.ExitCode != 0)
            {
                io.Error.WriteLine("driveraudit: interrupted; no report was written.");
                return interruption.ExitCode;
            }
            if (interruption.ExitCode != 0) return interruption.ExitCode;
            if (settings.Format != "text" && !settings.Quiet) io.Error.WriteLine(TextWriterSink.SummaryLine(summary));
            FleetOptions.Report(cache, io);
            return summary.ExitCode;
        }
    }

    /// <summary>The options of <c>scan</c>, declared once; <see cref="Read"/> turns a parse into <see cref="ScanFlags"/>.</summary>
    private sealed class ScanOptionSet
    {
        public Argument<string[]> Paths { get; } = new("paths")
        {
            Description = "Files, folders and kernel dumps to scan. Folders are walked recursively; files named here are always scanned.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        public Option<string?> FilesFrom { get; } = new("--files-from")
        {
            Description = "Also scan the paths listed in this file, one per line ('-' = standard input).",
            HelpName = "FILE",
        };
        public Option<string?> Output { get; } = new("--output", "-o")
        {
            Description = "Write the report to FILE ('-' = stdout). A regular file is replaced atomically; a symbolic link's target " +
                              "is replaced; a FIFO or device is written directly. The extension picks the format (.sarif, .json/.jsonl, .md).",
            HelpName = "FILE",
        };
        public Option<string?> Format { get; } = CliInputs.FormatOption("text, sarif, json (JSON Lines) or markdown. Default: from -o's extension, else text.", null, ScanSettings.Formats);
        public Option<string> Color { get; } = new("--color")
        {
            Description = "Colour text output: auto (a terminal, unless NO_COLOR is set), always or never.",
            DefaultValueFactory = _ => "auto",
        };
        public Option<bool> Quiet { get; } = new("--quiet", "-q") { Description = "Findings only: no summary, no progress, only error notifications on stderr." };
        public Option<string[]> Include { get; } = new("--include")
        {
            Description = "Glob of files to scan inside folders (repeatable). Default: **/*.sys and **/*.dmp.",
            AllowMultipleArgumentsPerToken = false,
        };
        public Option<string[]> Exclude { get; } = new("--exclude") { Description = "Glob of files to skip inside folders (repeatable)." };
        public Option<string[]> Rules { get; } = new("--rules") { Description = "Extra rule file or folder of *.yaml rules (repeatable)." };
        public Option<bool> NoDefault { get; } = new("--no-default-rules") { Description = "Do not load the rule pack embedded in driveraudit." };
        public Option<string?> FailOn { get; } = new("--fail-on")
        {
            Description = "Lowest finding level that makes the exit code 1: error, warning, note or none. Default: error.",
        };
        public Option<bool> FailOnError { get; } = new("--fail-on-error") { Description = "Exit with 3 when some inputs could not be analysed." };
        public Option<int> Jobs { get; } = new("--jobs", "-j")
        {
            Description = "Inputs analysed in parallel, 1 to 256. Default: the number of processors.",
            DefaultValueFactory = _ => Environment.ProcessorCount,
            CustomParser = r =>
            {
                var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
                if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 256)
                    return n;
                r.AddError($"--jobs expects a number from 1 to 256, got '{text}'.");
                return 0;
            },
        };
        public Option<double> TimeLimit { get; } = new("--time-limit")
        {
            Description = "Seconds of analysis per image (a file, or one module of a dump); past it the image's remaining rules are skipped " +
                              "with a DA0032 notification and the scan goes on. 0: no limit. Default: 30.",
            HelpName = "SECONDS",
            DefaultValueFactory = _ => ScanOptions.DefaultTimeLimit.TotalSeconds,
            CustomParser = r =>
            {
                var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
                if (double.TryParse(text, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out var n) && n <= 86_400)
                    return n;
                r.AddError($"--time-limit expects seconds from 0 to 86400, got '{text}'.");
                return 0;
            },
        };
        public Option<string?> SourceRoot { get; } = new("--source-root")
        {
            Description = "Folder that SARIF URIs are relative to (%SRCROOT%). Default: the root of the git checkout holding the current folder, else the current folder.",
        };
        public Option<string?> Category { get; } = new("--category")
        {
            Description = "SARIF run category: automationDetails.id becomes driveraudit/NAME/, so uploads of several builds (x64, x86, a matrix) do not replace each other.",
            HelpName = "NAME",
        };
        public Option<bool> IncludeAbsent { get; } = new("--include-absent")
        {
            Description = "With --baseline (required), keep the baseline's results not found again (baselineState absent) in the SARIF log. " +
                              "Off by default: GitHub ignores baselineState and would show them as open alerts.",
        };
        public Option<bool> IncludeSuppressed { get; } = new("--include-suppressed")
        {
            Description = "Keep results suppressed by the config file in the SARIF log, with SARIF suppressions (kind external, status accepted). " +
                              "Off by default: GitHub code scanning does not read suppressions and would show them as open alerts.",
        };
        public Option<bool> NoProgress { get; } = new("--no-progress") { Description = "Never show the progress display (it appears only on a terminal's stderr)." };
        public Option<string?> Baseline { get; } = new("--baseline")
        {
            Description = "A previous SARIF log: results get baselineState new/unchanged/absent, and only new results gate the exit code.",
        };
        public Option<string[]> Only { get; } = new("--only")
        {
            Description = "Run only the rules matching these ids or names; * and ? are wildcards, comma lists allowed (repeatable). " +
                              "Replaces the config file's 'only' and 'disable'.",
        };
        public Option<string[]> Disable { get; } = new("--disable")
        {
            Description = "Do not run the rules matching these ids or names (wildcards, comma lists; repeatable).",
        };
        public Option<string[]> Level { get; } = new("--level")
        {
            Description = "Report rules at another level: RULE=note|warning|error, RULE an id or name with wildcards (repeatable; the last match wins).",
        };
        public Option<string[]> HashList { get; } = new("--hash-list")
        {
            Description = "NAME=FILE: a hash list for rules that name '@NAME' (DA6001 reads '@known-vulnerable'): a plain list of " +
                              "SHA-256/SHA-1 hashes, or LOLDrivers' drivers.csv / drivers.json (repeatable; wins over the config's hash-lists).",
        };
        public Option<string?> Config { get; } = new("--config")
        {
            Description = $"Read settings from this YAML file. Default: {ConfigFile.DefaultName} in the source root, when present. " +
                              "Keys: only, disable, level, include, exclude, rules, fail-on, hash-lists, suppressions. Command-line options win: " +
                              "their lists replace the file's, --level overrides merge (the command line's last), rule paths add up.",
        };

        public FleetOptions Fleet { get; } = new();

        public ScanOptionSet()
        {
            Paths.Validators.Add(CliInputs.RejectUnknownOptions);
            Color.AcceptOnlyFromAmong("auto", "always", "never");
            FailOn.AcceptOnlyFromAmong("error", "warning", "note", "none");
        }

        public ScanFlags Read(ParseResult parse) => new()
        {
            Paths = parse.GetValue(Paths) ?? [],
            FilesFrom = parse.GetValue(FilesFrom),
            Output = parse.GetValue(Output),
            Format = parse.GetValue(Format),
            Color = parse.GetValue(Color),
            Quiet = parse.GetValue(Quiet),
            Include = parse.GetValue(Include) ?? [],
            Exclude = parse.GetValue(Exclude) ?? [],
            Rules = parse.GetValue(Rules) ?? [],
            NoDefaultRules = parse.GetValue(NoDefault),
            Only = parse.GetValue(Only) ?? [],
            Disable = parse.GetValue(Disable) ?? [],
            Level = parse.GetValue(Level) ?? [],
            HashList = parse.GetValue(HashList) ?? [],
            Config = parse.GetValue(Config),
            FailOn = parse.GetValue(FailOn),
            FailOnError = parse.GetValue(FailOnError),
            Jobs = parse.GetValue(Jobs),
            TimeLimit = parse.GetValue(TimeLimit),
            SourceRoot = parse.GetValue(SourceRoot),
            Category = parse.GetValue(Category),
            Baseline = parse.GetValue(Baseline),
            IncludeAbsent = parse.GetValue(IncludeAbsent),
            IncludeSuppressed = parse.GetValue(IncludeSuppressed),
            NoProgress = parse.GetValue(NoProgress),
            Host = parse.GetValue(Fleet.Host),
            Shard = parse.GetValue(Fleet.Shard),
            Cache = parse.GetValue(Fleet.Cache),
        };
    }

    /// <summary>
    /// The default source root: the nearest folder above <paramref name="workingDirectory"/> holding <c>.git</c> (a folder,
    /// or a file for worktrees and submodules), else the working directory. URIs, and the fingerprints made from them,
    /// are then repository-relative wherever in the checkout the scan runs, so a baseline made from another folder matches.
    /// </summary>
    internal static string RepositoryRoot(string workingDirectory)
    {
        try
        {
            for (var dir = new DirectoryInfo(workingDirectory); dir is not null; dir = dir.Parent)
                if (Path.Exists(Path.Combine(dir.FullName, ".git"))) return dir.FullName;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.SecurityException) { }
        return workingDirectory;
    }

    /// <summary>
    /// The command line's paths plus <c>--files-from</c>'s, each checked to exist; null after printing the problem.
    /// <c>-</c> is not a path (it would scan a file named "-" or nothing): paths come from stdin only through --files-from -.
    /// </summary>
    private static string[]? InputPaths(string[] arguments, string? filesFrom, CliIo io)
    {
        var all = new List<string>(arguments);
        if (arguments.Contains("-"))
        {
            io.Error.WriteLine("driveraudit: '-' is not a path; to read paths from standard input use --files-from -. Nothing was scanned.");
            return null;
        }
        if (filesFrom is not null)
        {
            try
            {
                using var reader = filesFrom == "-" ? null : new StreamReader(CliInputs.Resolve(filesFrom, io)!);
                var source = reader ?? io.Input;
                while (source.ReadLine() is { } line)
                    if (line.Trim().Length > 0) all.Add(line.TrimEnd('\r'));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                io.Error.WriteLine($"driveraudit: --files-from: cannot read '{filesFrom}': {e.Message}");
                return null;
            }
        }
        if (all.Count == 0)
        {
            io.Error.WriteLine(filesFrom is null
                ? "driveraudit: scan needs at least one path (or --files-from FILE). Run 'driveraudit scan --help' for usage."
                : $"driveraudit: --files-from '{filesFrom}' lists no path; nothing was scanned.");
            return null;
        }
        return CliInputs.AllExist(all, io, "scanned") ? [.. all] : null;
    }

    /// <summary>
    /// The crawl, replayed from the start, when it yields at least one file; null when it yields none (an empty
    /// folder, globs that match nothing). Pulls only up to the first file, so a large tree is not walked twice.
    /// </summary>
    private static IEnumerable<InputItem>? FirstFileOrNothing(IEnumerable<InputItem> crawl, out IReadOnlyList<InputProblem> skipped)
    {
        var enumerator = crawl.GetEnumerator();
        var head = new List<InputItem>();
        skipped = [];
        while (enumerator.MoveNext())
        {
            head.Add(enumerator.Current);
            if (enumerator.Current is InputFile) return Replay(head, enumerator);
        }
        enumerator.Dispose();
        skipped = [.. head.OfType<InputProblem>()];
        return null;

        static IEnumerable<InputItem> Replay(List<InputItem> head, IEnumerator<InputItem> rest)
        {
            using (rest)
            {
                foreach (var item in head) yield return item;
                while (rest.MoveNext()) yield return rest.Current;
            }
        }
    }

    /// <summary>
    /// Rules whose named hash list nobody supplied check nothing. Named with --only, that is an error (exit 2);
    /// otherwise they are left out of the run with a note saying how to supply the list, never silently kept.
    /// </summary>
    private static RuleSet? WithoutRulesMissingLists(RuleSet selected, RuleSet loaded, SelectionLayer commandLine, TextWriter error, bool quiet)
    {
        // Each warning of the loader is a named hash list nobody supplied: "hash list @known-vulnerable was not supplied…".
        var files = loaded.Warnings.GroupBy(w => w.File, StringComparer.Ordinal).ToDictionary(g => g.Key, g =>
        {
            var name = System.Text.RegularExpressions.Regex.Match(g.First().Message, @"@([\w.-]+)");
            return name.Success ? $"it needs the hash list @{name.Groups[1].Value}; give --hash-list {name.Groups[1].Value}=FILE" : g.First().Message;
        }, StringComparer.Ordinal);
        if (files.Count == 0) return selected;
        var blind = selected.Rules.Where(r => files.ContainsKey(r.SourcePath)).ToList();
        if (blind.Count == 0) return selected;
        var asked = blind.Where(r => commandLine.Only.Any(p => p.Matches(r))).ToList();
        foreach (var r in asked)
            error.WriteLine($"driveraudit: error: --only selects {r.Id} {r.Name}, which cannot work: {files[r.SourcePath]}.");
        if (asked.Count > 0)
        {
            error.WriteLine("driveraudit: nothing was scanned.");
            return null;
        }
        if (!quiet)
            foreach (var r in blind)
                error.WriteLine($"driveraudit: note: {r.Id} {r.Name} is not run: {files[r.SourcePath]}.");
        var ids = blind.Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
        if (blind.Count == selected.Rules.Count)
        {
            error.WriteLine("driveraudit: error: no rule left to run; nothing was scanned.");
            return null;
        }
        return selected.Select(r => !ids.Contains(r.Id));
    }

    /// <summary>Loads and compiles the rules through <see cref="RuleCatalog.Load(RulePackRequest, string, TextWriter)"/>; null after printing the errors.</summary>
    internal static RuleSet? LoadRules(IReadOnlyList<string> extra, bool includeDefault, CliIo io, IReadOnlyDictionary<string, string>? hashLists = null) =>
        RuleCatalog.Load(new RulePackRequest(extra, includeDefault) { HashLists = hashLists ?? new Dictionary<string, string>(), Consequence = "; nothing was scanned" }, io.WorkingDirectory, io.Error)?.Set;
}
