using DriverAudit.Benchmarks.Corpus;
using DriverAudit.Rules.Engine;
using DriverAudit.TestSupport;

namespace DriverAudit.Benchmarks.Rules;

/// <summary>
/// A rule set loaded from files, with the files that did not load. rules/ may hold rules written for features
/// another branch adds; a benchmark of this build skips those files (and says so) rather than failing.
/// </summary>
public sealed class RulePack
{
    private RulePack(string name, RuleSet set, IReadOnlyList<RuleSource> sources, IReadOnlyList<string> skipped)
    {
        Name = name;
        Set = set;
        Sources = sources;
        Skipped = skipped;
    }

    public string Name { get; }
    public RuleSet Set { get; }
    /// <summary>The rule files that loaded, in path order.</summary>
    public IReadOnlyList<RuleSource> Sources { get; }
    /// <summary>"file: first error" for each file left out.</summary>
    public IReadOnlyList<string> Skipped { get; }

    /// <summary>Every rules/*.yaml this build can load.</summary>
    public static RulePack DefaultFromDisk() => FromFiles("rules/*.yaml",
        Directory.EnumerateFiles(RepoPaths.Rules, "*.yaml").Order(StringComparer.Ordinal));

    /// <summary>The single import rule DA1001 (untagged pool allocation), the smallest realistic pack.</summary>
    public static RulePack SingleImportRule() => FromFiles("DA1001", [Path.Combine(RepoPaths.Rules, "DA1001.yaml")]);

    public static RulePack FromFiles(string name, IEnumerable<string> files)
    {
        var loaded = new List<RuleSource>();
        var skipped = new List<string>();
        foreach (var file in files)
        {
            var source = new RuleSource(file, File.ReadAllText(file));
            try
            {
                RuleSet.Load([source]); // alone first, so one unsupported file cannot sink the rest
                loaded.Add(source);
            }
            catch (RuleLoadException e)
            {
                skipped.Add($"{Path.GetFileName(file)}: {e.Errors.FirstOrDefault()?.Message ?? e.Message}");
            }
        }
        if (loaded.Count == 0) throw new InvalidOperationException($"no rule of {name} loads with this build");
        return new RulePack(name, RuleSet.Load(loaded), loaded, skipped);
    }

    /// <summary>One console line per skipped file and a count, so a run's table says what it measured.</summary>
    public void Describe(TextWriter log)
    {
        foreach (var s in Skipped) log.WriteLine($"// {Name}: skipped (does not load with this build) {s}");
        log.WriteLine($"// {Name}: {Set.Rules.Count} rules loaded from {Sources.Count} files ({Skipped.Count} skipped): {string.Join(", ", Set.Rules.Select(r => r.Id))}");
    }

    /// <summary>Copies the loadable files into <paramref name="dir"/>, for the CLI's --rules.</summary>
    public void WriteTo(string dir)
    {
        Directory.CreateDirectory(dir);
        foreach (var s in Sources) File.WriteAllText(Path.Combine(dir, Path.GetFileName(s.Path)), s.Text);
    }
}
