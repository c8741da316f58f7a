using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Inputs;

namespace DriverAudit.Scanner.RulePack;

/// <summary>Collects rule texts: the pack embedded in the executable, then files and folders from --rules.</summary>
internal static class RuleSources
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

    /// <summary>
    /// A .yaml/.yml file, or every such file under a folder (sorted). Problems are returned, not thrown. Each
    /// file is read by <see cref="ArgumentFile"/>: regular files only, at most <see cref="ArgumentFile.MaxRuleFileBytes"/>.
    /// </summary>
    public static IReadOnlyList<RuleSource> FromPath(string path, List<RuleError> errors)
    {
        var list = new List<RuleSource>();
        try
        {
            var kind = FileKinds.Of(path);
            if (kind == FileKind.Directory)
            {
                var files = Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                    .Where(f => f.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".yml", StringComparison.OrdinalIgnoreCase))
                    .OrderBy(f => f, StringComparer.Ordinal);
                foreach (var f in files) Read(f, list, errors);
                if (list.Count == 0 && errors.Count == 0) errors.Add(new RuleError(path, 1, 1, "no rule files (*.yaml, *.yml) in this folder"));
            }
            else if (kind == FileKind.Missing)
            {
                errors.Add(new RuleError(path, 1, 1, "no such rule file or folder"));
            }
            else
            {
                Read(path, list, errors);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            errors.Add(new RuleError(path, 1, 1, "cannot read: " + e.Message));
        }
        return list;
    }

    private static void Read(string file, List<RuleSource> list, List<RuleError> errors)
    {
        try { list.Add(new RuleSource(file, ArgumentFile.ReadAllText(file, ArgumentFile.MaxRuleFileBytes, "rule file"))); }
        catch (ArgumentFileException e) { errors.Add(new RuleError(file, 1, 1, "the rule file " + e.Reason)); }
    }
}
