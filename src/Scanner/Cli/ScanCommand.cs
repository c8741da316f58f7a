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

/// <summary><c>driveraudit scan PATH...</c>: crawl, analyse, report, gate.</summary>
internal static class ScanCommand
{
    /// <summary>Report formats; <c>-o</c>'s extension picks one when <c>--format</c> is not given.</summary>
    public static readonly string[] Formats = ["text", "sarif", "json", "markdown"];

    public static Command Create(CliIo io)
    {
        var paths = new Argument<string[]>("paths")
        {
            Description = "Files, folders and kernel dumps to scan. Folders are walked recursively; files named here are always scanned.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        paths.Validators.Add(CliInputs.RejectUnknownOptions);
        var filesFrom = new Option<string?>("--files-from")
        {
            Description = "Also scan the paths listed in this file, one per line ('-' = standard input).",
            HelpName = "FILE",
        };
        var output = new Option<string?>("--output", "-o")
        {
            Description = "Write the report to FILE ('-' = stdout). A regular file is replaced atomically; a symbolic link's target " +
                          "is replaced; a FIFO or device is written directly. The extension picks the format (.sarif, .json/.jsonl, .md).",
            HelpName = "FILE",
        };
        var format = new Option<string?>("--format", "-f")
        {
            Description = "text, sarif, json (JSON Lines) or markdown. Default: from -o's extension, else text.",
        };
        format.AcceptOnlyFromAmong(Formats);
        var color = new Option<string>("--color")
        {
            Description = "Colour text output: auto (a terminal, unless NO_COLOR is set), always or never.",
            DefaultValueFactory = _ => "auto",
        };
        color.AcceptOnlyFromAmong("auto", "always", "never");
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Findings only: no summary, no progress, only error notifications on stderr." };
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
        var timeLimit = new Option<double>("--time-limit")
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
        var sourceRoot = new Option<string?>("--source-root")
        {
            Description = "Folder that SARIF URIs are relative to (%SRCROOT%). Default: the root of the git checkout holding the current folder, else the current folder.",
        };
        var category = new Option<string?>("--category")
        {
            Description = "SARIF run category: automationDetails.id becomes driveraudit/NAME/, so uploads of several builds (x64, x86, a matrix) do not replace each other.",
            HelpName = "NAME",
        };
        var includeAbsent = new Option<bool>("--include-absent")
        {
            Description = "With --baseline, keep the baseline's results not found again (baselineState absent) in the SARIF log. " +
                          "Off by default: GitHub ignores baselineState and would show them as open alerts.",
        };
        var includeSuppressed = new Option<bool>("--include-suppressed")
        {
            Description = "Keep results suppressed by the config file in the SARIF log, with SARIF suppressions (kind external, status accepted). " +
                          "Off by default: GitHub code scanning does not read suppressions and would show them as open alerts.",
        };
        var noProgress = new Option<bool>("--no-progress") { Description = "Never show the progress display (it appears only on a terminal's stderr)." };
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
                          "Keys: only, disable, level, include, exclude, rules, fail-on, hash-lists, suppressions. Command-line options win: " +
                          "their lists replace the file's, --level overrides merge (the command line's last), rule paths add up.",
        };

        var fleet = new FleetOptions();

        var command = new Command("scan", "Scan driver files, folders and kernel dumps; report findings as text, SARIF, JSON Lines or Markdown.")
        {
            paths, filesFrom, output, format, color, quiet, include, exclude, rules, noDefault, only, disable, level, config, failOn, failOnError,
            jobs, timeLimit, sourceRoot, hashList, category, baseline, includeAbsent, includeSuppressed, noProgress,
        };
        fleet.AddTo(command);

        command.SetAction(parse =>
        {
            var root = new SourceRoot(CliInputs.Resolve(parse.GetValue(sourceRoot), io) ?? RepositoryRoot(io.WorkingDirectory));
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
            var quietRun = parse.GetValue(quiet);
            var loaded = LoadRules([.. settings.Rules, .. parse.GetValue(rules) ?? []], !parse.GetValue(noDefault), io, lists);
            if (loaded is null) return ExitCodes.UsageOrConfiguration;
            var selected = RuleSelector.Apply(loaded, [settings.Selection, commandLine], io.Error);
            if (selected is null) return ExitCodes.UsageOrConfiguration;
            var ruleSet = WithoutRulesMissingLists(selected, loaded, commandLine, io.Error, quietRun);
            if (ruleSet is null) return ExitCodes.UsageOrConfiguration;
            var startTime = DateTimeOffset.UtcNow;
            var suppressions = ConfigSuppressions.ForRun(settings, root, loaded, startTime, io.Error);

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

            var outArg = parse.GetValue(output);
            var fmt = parse.GetValue(format) ?? FormatFromExtension(outArg) ?? "text";

            // Signals are handled from before the output exists, so no temporary file can outlive an interrupted run.
            using var interruption = Interruption.Install(io.HandleSignals, io.Error);
            // The output is checked and opened before any input is read: a folder or an unwritable place fails fast.
            if (CliInputs.OpenOutput(outArg, io, "nothing was scanned") is not { } target) return ExitCodes.UsageOrConfiguration;

            using (target)
            {
                // Keyed on the selection before list-less rules are left out: they find nothing either way, and
                // `inventory --cache` keys on the same set.
                if (!fleet.TryOpenCache(parse, selected, lists.Values, io, out var cache)) return ExitCodes.UsageOrConfiguration;
                using var cacheScope = cache;
                // Inputs fail closed: scanning nothing must never look like a clean scan (an empty SARIF upload closes every alert).
                var inputPaths = InputPaths(parse.GetValue(paths) ?? [], parse.GetValue(filesFrom), io);
                if (inputPaths is null) return ExitCodes.UsageOrConfiguration;
                var crawl = CliInputs.Crawl(io, inputPaths, new CrawlOptions(
                    OrConfig(parse.GetValue(include), settings.Include), OrConfig(parse.GetValue(exclude), settings.Exclude)), root);
                var found = FirstFileOrNothing(crawl);
                if (found is null)
                {
                    io.Error.WriteLine($"driveraudit: no file to scan: the inputs hold no file matching {string.Join(", ", OrConfig(parse.GetValue(include), settings.Include) is { Count: > 0 } inc ? inc : CrawlOptions.DefaultIncludes)}" +
                                       (OrConfig(parse.GetValue(exclude), settings.Exclude) is { Count: > 0 } exc ? $" (excluding {string.Join(", ", exc)})" : "") +
                                       "; nothing was scanned.");
                    return ExitCodes.UsageOrConfiguration;
                }
                var items = fleet.Select(parse, found, inputPaths, io);

                var colorOn = parse.GetValue(color) switch
                {
                    "always" => true,
                    "never" => false,
                    _ => target.IsStdout && io.Interactive && string.IsNullOrEmpty(io.GetEnvironmentVariable("NO_COLOR")),
                };
                var options = new ScanOptions(
                    parse.GetValue(jobs),
                    (parse.GetValue(failOn) ?? settings.FailOn) switch { "note" => RuleLevel.Note, "warning" => RuleLevel.Warning, "none" => null, _ => RuleLevel.Error },
                    parse.GetValue(failOnError),
                    ComputeHashes: fmt == "sarif" || suppressions.NeedsHashes)
                {
                    TimeLimit = TimeSpan.FromSeconds(parse.GetValue(timeLimit)),
                };

                using IScanSink sink = fmt switch
                {
                    "sarif" => new SarifWriter(target, SarifWriter.CategoryId(parse.GetValue(category)), includeAbsent: parse.GetValue(includeAbsent), includeSuppressed: parse.GetValue(includeSuppressed)),
                    "json" => new JsonLinesSink(target),
                    "markdown" => new MarkdownSink(target),
                    _ => new TextWriterSink(target, io.Out, io.Error, colorOn, quietRun),
                };
                var context = new ScanContext(ruleSet.Rules, root.FullPath, root.AsFileUri, startTime, previous, fleet.HostLabelFor(parse, inputPaths, io))
                {
                    Suppressions = suppressions,
                };
                var engine = new ScanEngine(FleetOptions.Analyzer(ruleSet, options, cache), options);
                // Progress only on a terminal's stderr, and never over a report printed on the same screen.
                var showProgress = io.ErrorIsTerminal && !parse.GetValue(noProgress) && !quietRun && !(target.IsStdout && io.Interactive);
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
                if (fmt != "text" && !quietRun) io.Error.WriteLine(TextWriterSink.SummaryLine(summary));
                FleetOptions.Report(cache, io);
                return summary.ExitCode;
            }
        });
        return command;
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

    /// <summary>The format an output file's extension asks for, or null (then text).</summary>
    internal static string? FormatFromExtension(string? output)
    {
        if (output is null || output == "-") return null;
        var name = output.ToLowerInvariant();
        if (name.EndsWith(".sarif", StringComparison.Ordinal) || name.EndsWith(".sarif.json", StringComparison.Ordinal)) return "sarif";
        if (name.EndsWith(".jsonl", StringComparison.Ordinal) || name.EndsWith(".json", StringComparison.Ordinal) || name.EndsWith(".ndjson", StringComparison.Ordinal)) return "json";
        if (name.EndsWith(".md", StringComparison.Ordinal) || name.EndsWith(".markdown", StringComparison.Ordinal)) return "markdown";
        return null;
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
    private static IEnumerable<InputItem>? FirstFileOrNothing(IEnumerable<InputItem> crawl)
    {
        var enumerator = crawl.GetEnumerator();
        var head = new List<InputItem>();
        while (enumerator.MoveNext())
        {
            head.Add(enumerator.Current);
            if (enumerator.Current is InputFile) return Replay(head, enumerator);
        }
        enumerator.Dispose();
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

    private static IReadOnlyList<RulePattern> Patterns(string[]? values, string origin) =>
        [.. (values ?? []).SelectMany(v => RulePattern.Split(v, origin))];

    /// <summary>A list option given on the command line replaces the config file's list.</summary>
    private static IReadOnlyList<string> OrConfig(string[]? commandLine, IReadOnlyList<string> config) =>
        commandLine is { Length: > 0 } ? commandLine : config;

    /// <summary>Loads and compiles the rules through <see cref="RuleCatalog.Load(RulePackRequest, string, TextWriter)"/>; null after printing the errors.</summary>
    internal static RuleSet? LoadRules(IReadOnlyList<string> extra, bool includeDefault, CliIo io, IReadOnlyDictionary<string, string>? hashLists = null) =>
        RuleCatalog.Load(new RulePackRequest(extra, includeDefault) { HashLists = hashLists ?? new Dictionary<string, string>(), Consequence = "; nothing was scanned" }, io.WorkingDirectory, io.Error)?.Set;
}
