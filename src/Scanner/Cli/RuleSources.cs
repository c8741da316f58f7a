using DriverAudit.Rules.Engine;

namespace DriverAudit.Scanner.Cli;

/// <summary>Collects rule texts: the pack embedded in the executable, then files and folders from --rules.</summary>
public static class RuleSources
{
    private const string EmbeddedPrefix = "rules/";

    public static IEnumerable<RuleSource> Embedded()
    {
        var assembly = typeof(RuleSources).Assembly;
        foreach (var name in assembly.GetManifestResourceNames()
                     .Where(n => n.StartsWith(EmbeddedPrefix, StringComparison.Ordinal))
                     .OrderBy(n => n, StringComparer.Ordinal))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            yield return new RuleSource("embedded:" + name, reader.ReadToEnd());
        }
    }

    /// <summary>A .yaml/.yml file, or every such file under a folder (sorted). Problems are returned, not thrown.</summary>
    public static IReadOnlyList<RuleSource> FromPath(string path, List<RuleError> errors)
    {
        var list = new List<RuleSource>();
        try
        {
            if (Directory.Exists(path))
            {
                var files = Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                    .Where(f => f.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".yml", StringComparison.OrdinalIgnoreCase))
                    .OrderBy(f => f, StringComparer.Ordinal);
                foreach (var f in files) list.Add(new RuleSource(f, File.ReadAllText(f)));
                if (list.Count == 0) errors.Add(new RuleError(path, 1, 1, "no rule files (*.yaml, *.yml) in this folder"));
            }
            else if (File.Exists(path))
            {
                list.Add(new RuleSource(path, File.ReadAllText(path)));
            }
            else
            {
                errors.Add(new RuleError(path, 1, 1, "no such rule file or folder"));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            errors.Add(new RuleError(path, 1, 1, "cannot read: " + e.Message));
        }
        return list;
    }
}
