using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.RulePack;

namespace DriverAudit.Scanner.Configuration;

/// <summary>
/// What <c>driveraudit scan</c> was given on its command line, as parsed and before anything is merged:
/// null, false or an empty list means "not given". Plain data, so the merge can be tested without a parser.
/// </summary>
internal sealed record ScanFlags
{
    public IReadOnlyList<string> Paths { get; init; } = [];
    public string? FilesFrom { get; init; }
    public string? Output { get; init; }
    public string? Format { get; init; }
    public string? Color { get; init; }
    public bool Quiet { get; init; }
    public IReadOnlyList<string> Include { get; init; } = [];
    public IReadOnlyList<string> Exclude { get; init; } = [];
    public IReadOnlyList<string> Rules { get; init; } = [];
    public bool NoDefaultRules { get; init; }
    public IReadOnlyList<string> Only { get; init; } = [];
    public IReadOnlyList<string> Disable { get; init; } = [];
    public IReadOnlyList<string> Level { get; init; } = [];
    public IReadOnlyList<string> HashList { get; init; } = [];
    public string? Config { get; init; }
    public string? FailOn { get; init; }
    public bool FailOnError { get; init; }
    public int? Jobs { get; init; }
    public double? TimeLimit { get; init; }
    public string? SourceRoot { get; init; }
    public string? Category { get; init; }
    public string? Baseline { get; init; }
    public bool IncludeAbsent { get; init; }
    public bool IncludeSuppressed { get; init; }
    public bool NoProgress { get; init; }
    public string? Host { get; init; }
    public string? Shard { get; init; }
    public string? Cache { get; init; }
}

/// <summary>How text output is coloured: <c>--color auto|always|never</c>.</summary>
internal enum ColorMode
{
    Auto,
    Always,
    Never,
}

/// <summary>
/// Everything a scan runs with, decided before it starts: the defaults, then <c>driveraudit.yaml</c>, then the
/// command line, merged by <see cref="Merge"/>. Paths are full paths (config paths relative to the config file,
/// command-line paths relative to the working directory), except <see cref="Paths"/>, <see cref="FilesFrom"/> and
/// <see cref="Output"/>, which keep their spelling for messages and for <c>-</c>.
/// </summary>
internal sealed record ScanSettings
{
    /// <summary>Report formats; <c>-o</c>'s extension picks one when <c>--format</c> is not given.</summary>
    public static readonly string[] Formats = ["text", "sarif", "json", "markdown"];

    public IReadOnlyList<string> Paths { get; init; } = [];
    public string? FilesFrom { get; init; }
    public string? Output { get; init; }
    public string Format { get; init; } = "text";
    public ColorMode Color { get; init; }
    public bool Quiet { get; init; }
    public bool NoProgress { get; init; }
    public string SourceRoot { get; init; } = "";
    /// <summary>The config file read, or <see cref="ConfigFile.None"/>; its suppressions apply to the run.</summary>
    public ConfigFile Config { get; init; } = ConfigFile.None;
    public IReadOnlyList<string> Include { get; init; } = [];
    public IReadOnlyList<string> Exclude { get; init; } = [];
    /// <summary>The config's rule paths, then the command line's (they add up).</summary>
    public IReadOnlyList<string> RulePaths { get; init; } = [];
    public bool IncludeDefaultRules { get; init; } = true;
    /// <summary>The config file's selection, then the command line's, which wins (<see cref="RuleSelector.Apply"/>).</summary>
    public IReadOnlyList<SelectionLayer> Selection { get; init; } = [];
    public SelectionLayer CommandLineSelection => Selection.Count > 0 ? Selection[^1] : SelectionLayer.Empty;
    /// <summary>Named hash lists → full path: the config's, each replaced by a --hash-list of the same name.</summary>
    public IReadOnlyDictionary<string, string> HashLists { get; init; } = new Dictionary<string, string>();
    /// <summary>Lowest level that fails the run; null for <c>none</c>.</summary>
    public RuleLevel? FailOn { get; init; } = RuleLevel.Error;
    public bool FailOnInputError { get; init; }
    public int Jobs { get; init; } = 1;
    public TimeSpan TimeLimit { get; init; } = Engine.ScanOptions.DefaultTimeLimit;
    public string? Category { get; init; }
    public string? BaselinePath { get; init; }
    public bool IncludeAbsent { get; init; }
    public bool IncludeSuppressed { get; init; }
    public string? Host { get; init; }
    public string? Shard { get; init; }
    public string? CachePath { get; init; }

    /// <summary>
    /// The one merge: a command-line value wins over the config file's, which wins over the default. Lists
    /// given on the command line replace the file's (include, exclude, only, disable); rule paths add up;
    /// level overrides are layered (the command line's last); hash lists merge by name. Pure: reads no file.
    /// </summary>
    /// <param name="config">The config file already read (<see cref="ConfigFile.Discover"/>), or <see cref="ConfigFile.None"/>.</param>
    /// <param name="sourceRoot">The full path of the source root (--source-root, else the checkout's root).</param>
    /// <param name="processorCount">The default of --jobs.</param>
    public static SettingsResult<ScanSettings> Merge(ScanFlags flags, ConfigFile config, string workingDirectory, string sourceRoot, int processorCount)
    {
        var errors = new List<string>();
        var levelErrors = new StringWriter();
        var levels = RuleSelector.ParseLevelOptions(flags.Level, levelErrors);
        if (levels is null) errors.AddRange(Lines(levelErrors));

        var lists = new Dictionary<string, string>(config.HashLists, StringComparer.Ordinal);
        foreach (var entry in flags.HashList)
        {
            var eq = entry.IndexOf('=');
            if (eq <= 0 || eq == entry.Length - 1) errors.Add($"driveraudit: --hash-list expects NAME=FILE, got '{entry}'.");
            else lists[entry[..eq]] = Resolve(entry[(eq + 1)..], workingDirectory)!;
        }

        // A contradiction, not a preference: absent results exist only against a baseline.
        if (flags.IncludeAbsent && flags.Baseline is null)
            errors.Add("driveraudit: error: --include-absent keeps the baseline's results not found again; it needs --baseline FILE.");

        if (errors.Count > 0) return new SettingsResult<ScanSettings>(null, errors);

        var commandLine = new SelectionLayer(Patterns(flags.Only, "--only"), Patterns(flags.Disable, "--disable"), levels!);
        return new SettingsResult<ScanSettings>(new ScanSettings
        {
            Paths = flags.Paths,
            FilesFrom = flags.FilesFrom,
            Output = flags.Output,
            Format = flags.Format ?? FormatFromExtension(flags.Output) ?? "text",
            Color = flags.Color switch { "always" => ColorMode.Always, "never" => ColorMode.Never, _ => ColorMode.Auto },
            Quiet = flags.Quiet,
            NoProgress = flags.NoProgress,
            SourceRoot = sourceRoot,
            Config = config,
            Include = flags.Include.Count > 0 ? flags.Include : config.Include,
            Exclude = flags.Exclude.Count > 0 ? flags.Exclude : config.Exclude,
            RulePaths = [.. config.Rules, .. CommandLineRulePaths(flags.Rules, workingDirectory)],
            IncludeDefaultRules = !flags.NoDefaultRules,
            Selection = [config.Selection, commandLine],
            HashLists = lists,
            FailOn = (flags.FailOn ?? config.FailOn) switch { "note" => RuleLevel.Note, "warning" => RuleLevel.Warning, "none" => null, _ => RuleLevel.Error },
            FailOnInputError = flags.FailOnError,
            Jobs = flags.Jobs ?? processorCount,
            TimeLimit = flags.TimeLimit is { } seconds ? TimeSpan.FromSeconds(seconds) : Engine.ScanOptions.DefaultTimeLimit,
            Category = flags.Category,
            BaselinePath = Resolve(flags.Baseline, workingDirectory),
            IncludeAbsent = flags.IncludeAbsent,
            IncludeSuppressed = flags.IncludeSuppressed,
            Host = flags.Host,
            Shard = flags.Shard,
            CachePath = Resolve(flags.Cache, workingDirectory),
        }, []);
    }

    /// <summary>The format an output file's extension asks for, or null (then text).</summary>
    public static string? FormatFromExtension(string? output)
    {
        if (output is null || output == "-") return null;
        var name = output.ToLowerInvariant();
        if (name.EndsWith(".sarif", StringComparison.Ordinal) || name.EndsWith(".sarif.json", StringComparison.Ordinal)) return "sarif";
        if (name.EndsWith(".jsonl", StringComparison.Ordinal) || name.EndsWith(".json", StringComparison.Ordinal) || name.EndsWith(".ndjson", StringComparison.Ordinal)) return "json";
        if (name.EndsWith(".md", StringComparison.Ordinal) || name.EndsWith(".markdown", StringComparison.Ordinal)) return "markdown";
        return null;
    }

    /// <summary>
    /// --rules paths of any command, relative ones joined to the working directory: spelt as the rule loader always
    /// spelt them (its messages name them so), so every command names a rule file the same way.
    /// </summary>
    public static IReadOnlyList<string> CommandLineRulePaths(IReadOnlyList<string> paths, string workingDirectory) =>
        [.. paths.Select(p => Path.IsPathRooted(p) ? p : Path.Combine(workingDirectory, p))];

    /// <summary>A path given on the command line, made full against the working directory the CLI was given.</summary>
    public static string? Resolve(string? path, string workingDirectory) =>
        path is null ? null : Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(workingDirectory, path));

    private static IReadOnlyList<RulePattern> Patterns(IReadOnlyList<string> values, string origin) =>
        [.. values.SelectMany(v => RulePattern.Split(v, origin))];

    private static IEnumerable<string> Lines(StringWriter w) =>
        w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r'));
}

/// <summary>Settings, or the messages saying why there are none (the command then exits 2).</summary>
internal sealed record SettingsResult<T>(T? Settings, IReadOnlyList<string> Errors)
    where T : class;
