using DriverAudit.Rules.Kernel;

namespace DriverAudit.Scanner.Configuration;

// Settings before running, for every command but scan (ScanSettings): each command's parse becomes a plain flags
// record (what was typed; null, false or empty = not given), a pure From() turns it into immutable settings or the
// list of every usage error at once (the command then exits 2), and only then does the command read or write
// anything. Paths are made full against the working directory with ScanSettings.Resolve (one rule for every command);
// rule paths are spelt as scan spells them (ScanSettings.CommandLineRulePaths). None of these commands reads
// driveraudit.yaml: that file configures scans (README, Usage).

/// <summary>What <c>inspect</c> was given.</summary>
internal sealed record InspectFlags
{
    public IReadOnlyList<string> Paths { get; init; } = [];
    public string? Format { get; init; }
    /// <summary>The hidden alias of <c>--format json</c> kept from earlier versions.</summary>
    public bool Json { get; init; }
    public IReadOnlyList<string> Include { get; init; } = [];
    public string? Module { get; init; }
}

/// <summary>What <c>inspect</c> runs with.</summary>
internal sealed record InspectSettings(IReadOnlyList<string> Paths, bool Json, IReadOnlyList<string> Include, string? Module)
{
    public static readonly string[] Formats = ["text", "json"];

    public static SettingsResult<InspectSettings> From(InspectFlags flags)
    {
        // --json says json: with another --format the two contradict each other.
        if (flags.Json && flags.Format is { } given && given != "json")
            return SettingsResult.Refused<InspectSettings>($"driveraudit: error: --json is --format json; it contradicts --format {given}.");
        return SettingsResult.Of(new InspectSettings(flags.Paths, flags.Json || flags.Format == "json", flags.Include, flags.Module));
    }
}

/// <summary>What <c>tags</c> was given.</summary>
internal sealed record TagsFlags
{
    public IReadOnlyList<string> Paths { get; init; } = [];
    public IReadOnlyList<string> Tag { get; init; } = [];
    public bool IgnoreCase { get; init; }
    public string? Poolused { get; init; }
    public string? Format { get; init; }
    public IReadOnlyList<string> Include { get; init; } = [];
}

/// <summary>What <c>tags</c> runs with: the --tag patterns parsed, --poolused as given and as a full path.</summary>
internal sealed record TagsSettings(IReadOnlyList<string> Paths, IReadOnlyList<TagPattern> Patterns, string? Poolused, string? PoolusedPath, string Format, IReadOnlyList<string> Include)
{
    public static readonly string[] Formats = ["text", "json", "pooltag"];

    public static SettingsResult<TagsSettings> From(TagsFlags flags, string workingDirectory)
    {
        var errors = new List<string>();
        var patterns = new List<TagPattern>();
        // "Ddk ,None" is two tags; a comma inside a tag is \x2C. Every bad pattern is reported, not only the first.
        foreach (var text in flags.Tag.SelectMany(t => t.Split(',')))
        {
            if (PoolTag.TryParsePattern(text, flags.IgnoreCase, out var p, out var error)) patterns.Add(p);
            else errors.Add($"driveraudit: {error}");
        }
        var format = flags.Format ?? "text";
        if (flags.Poolused is not null && format == "pooltag") errors.Add("driveraudit: --poolused writes text or json, not pooltag lines.");
        if (errors.Count > 0) return new SettingsResult<TagsSettings>(null, errors);
        return SettingsResult.Of(new TagsSettings(flags.Paths, patterns, flags.Poolused, ScanSettings.Resolve(flags.Poolused, workingDirectory), format, flags.Include));
    }
}

/// <summary>What <c>inventory</c> was given.</summary>
internal sealed record InventoryFlags
{
    public IReadOnlyList<string> Paths { get; init; } = [];
    public string? Format { get; init; }
    public string? Output { get; init; }
    public IReadOnlyList<string> Include { get; init; } = [];
    public IReadOnlyList<string> Exclude { get; init; } = [];
    public IReadOnlyList<string> Rules { get; init; } = [];
    public bool NoDefaultRules { get; init; }
    public int? Jobs { get; init; }
    public string? Host { get; init; }
    public string? Shard { get; init; }
    public string? Cache { get; init; }
}

/// <summary>What <c>inventory</c> runs with; the sweep options as scan holds them (<see cref="ScanSettings.Host"/> …).</summary>
internal sealed record InventorySettings
{
    public static readonly string[] Formats = ["json", "csv"];

    public IReadOnlyList<string> Paths { get; init; } = [];
    public bool Csv { get; init; }
    public string? Output { get; init; }
    public IReadOnlyList<string> Include { get; init; } = [];
    public IReadOnlyList<string> Exclude { get; init; } = [];
    public IReadOnlyList<string> RulePaths { get; init; } = [];
    public bool IncludeDefaultRules { get; init; } = true;
    public int Jobs { get; init; } = 1;
    public string? Host { get; init; }
    public string? Shard { get; init; }
    public string? CachePath { get; init; }

    /// <param name="processorCount">The default of --jobs.</param>
    public static SettingsResult<InventorySettings> From(InventoryFlags flags, string workingDirectory, int processorCount) =>
        SettingsResult.Of(new InventorySettings
        {
            Paths = flags.Paths,
            Csv = flags.Format == "csv",
            Output = flags.Output,
            Include = flags.Include,
            Exclude = flags.Exclude,
            RulePaths = ScanSettings.CommandLineRulePaths(flags.Rules, workingDirectory),
            IncludeDefaultRules = !flags.NoDefaultRules,
            Jobs = flags.Jobs ?? processorCount,
            Host = flags.Host,
            Shard = flags.Shard,
            CachePath = ScanSettings.Resolve(flags.Cache, workingDirectory),
        });
}

/// <summary>What <c>merge</c> was given.</summary>
internal sealed record MergeFlags
{
    public IReadOnlyList<string> Logs { get; init; } = [];
    public string? Output { get; init; }
    public string? Db { get; init; }
    public string? Format { get; init; }
}

/// <summary>
/// What <c>merge</c> runs with: the logs and --db as full paths; <see cref="Output"/> as given (null or <c>-</c> is stdout).
/// <see cref="WritesSarif"/>: the SARIF goes to -o, else to stdout unless only --db was asked for.
/// </summary>
internal sealed record MergeSettings(IReadOnlyList<string> Logs, string? Output, string? DbPath)
{
    public static readonly string[] Formats = ["sarif"];

    public bool WritesSarif => Output is not null || DbPath is null;

    public static SettingsResult<MergeSettings> From(MergeFlags flags, string workingDirectory) =>
        SettingsResult.Of(new MergeSettings([.. flags.Logs.Select(p => ScanSettings.Resolve(p, workingDirectory)!)], flags.Output, ScanSettings.Resolve(flags.Db, workingDirectory)));
}

/// <summary>What <c>report</c> was given.</summary>
internal sealed record ReportFlags
{
    public string? Fleet { get; init; }
    public string? Output { get; init; }
    public string? Format { get; init; }
}

/// <summary>What <c>report</c> runs with: the fleet database or SARIF log as a full path, -o as given.</summary>
internal sealed record ReportSettings(string Source, string? Output)
{
    public static readonly string[] Formats = ["html"];

    public static SettingsResult<ReportSettings> From(ReportFlags flags, string workingDirectory) =>
        SettingsResult.Of(new ReportSettings(ScanSettings.Resolve(flags.Fleet ?? "", workingDirectory)!, flags.Output));
}

/// <summary>What a <c>rules</c> subcommand was given (list, show, validate, test; docs keeps its own two paths).</summary>
internal sealed record RulesFlags
{
    /// <summary>list/show: --rules; validate/test: the rule files or folders to check (the focus).</summary>
    public IReadOnlyList<string> Rules { get; init; } = [];
    public bool NoDefaultRules { get; init; }
    public string? Format { get; init; }
    /// <summary>show: the rule id or name.</summary>
    public string? Id { get; init; }
}

/// <summary>What a <c>rules</c> subcommand runs with: rule paths spelt as scan spells them, the format, show's rule.</summary>
internal sealed record RulesSettings(IReadOnlyList<string> RulePaths, bool IncludeDefaultRules, string Format, string Id)
{
    public static readonly string[] Formats = ["text", "json"];

    public bool Json => Format == "json";

    public static SettingsResult<RulesSettings> From(RulesFlags flags, string workingDirectory) =>
        SettingsResult.Of(new RulesSettings(ScanSettings.CommandLineRulePaths(flags.Rules, workingDirectory), !flags.NoDefaultRules, flags.Format ?? "text", flags.Id ?? ""));
}

/// <summary>Builds <see cref="SettingsResult{T}"/> values.</summary>
internal static class SettingsResult
{
    public static SettingsResult<T> Of<T>(T settings) where T : class => new(settings, []);

    public static SettingsResult<T> Refused<T>(params string[] errors) where T : class => new(null, errors);
}
