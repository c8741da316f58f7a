using System.CommandLine;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Fleet;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.RulePack;

namespace DriverAudit.Scanner.Cli;

/// <summary>The options a sweep adds to <c>scan</c> and <c>inventory</c>: --host, --shard K/N, --cache FILE.</summary>
internal sealed class FleetOptions
{
    public Option<string?> Host { get; } = HostLabel.CreateOption();
    public Option<string?> Shard { get; } = ShardSpec.CreateOption();
    public Option<string?> Cache { get; } = new("--cache")
    {
        Description = "SQLite result cache: a file whose SHA-256, rules and DriverAudit build are unchanged is hashed, not analysed again. " +
                      "Safe to share between concurrent scans; a corrupt cache is reported and rebuilt.",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Host);
        command.Options.Add(Shard);
        command.Options.Add(Cache);
    }

    /// <summary>The analysis step: the analyzer, behind the cache when there is one.</summary>
    public static Func<InputItem, InputReport> Analyzer(RuleSet rules, ScanOptions options, ResultCache? cache) =>
        cache is null
            ? new InputAnalyzer(rules, options).Analyze
            // The cache stores a report only when the analysis hashed the same bytes: hashes are always computed.
            : new CachingAnalyzer(new InputAnalyzer(rules, options with { ComputeHashes = true }), cache, rules, options).Analyze;

    public static void Report(ResultCache? cache, CliIo io)
    {
        if (cache is not null) io.Error.WriteLine($"Cache: {cache.Hits} hit(s), {cache.Misses} miss(es).");
    }
}

/// <summary>The sweep options' values: --host, --shard K/N (checked by the parser) and --cache as a full path.</summary>
internal sealed record FleetSettings(string? Host, string? Shard, string? CachePath)
{
    public string? HostLabelFor(IEnumerable<string>? paths, CliIo io) =>
        HostLabel.Resolve(Host, (paths ?? []).Select(p => CliInputs.Resolve(p, io)!));

    /// <summary>The crawl, or only this worker's shard of it.</summary>
    public IEnumerable<InputItem> Select(IEnumerable<InputItem> items, IEnumerable<string>? paths, CliIo io)
    {
        if (Shard is not { } text || !ShardSpec.TryParse(text, out var spec, out _)) return items;
        return Sharding.Select(items, spec, [.. (paths ?? []).Select(p => Path.GetFullPath(CliInputs.Resolve(p, io)!))]);
    }

    /// <summary>Opens --cache when given; null without it. False (message printed) when the file cannot be a cache.</summary>
    public bool TryOpenCache(RuleSet rules, IEnumerable<string> hashLists, CliIo io, out ResultCache? cache)
    {
        cache = null;
        if (CachePath is not { } path) return true;
        if (Directory.Exists(path))
        {
            io.Error.WriteLine($"driveraudit: --cache: '{path}' is a folder.");
            return false;
        }
        var embedded = RuleSources.Embedded().ToDictionary(s => s.Path, s => s.Text, StringComparer.Ordinal);
        var hash = ResultCache.RulePackHash(rules.Rules, source =>
        {
            if (embedded.TryGetValue(source, out var text)) return text;
            try { return File.ReadAllText(source); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        }, hashLists);
        try
        {
            cache = ResultCache.Open(path, hash, ResultCache.ToolBuild, io.Error);
            return true;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            io.Error.WriteLine($"driveraudit: --cache: {e.Message}");
            return false;
        }
    }
}
