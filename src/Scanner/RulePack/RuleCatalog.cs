using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Yaml;
using DriverAudit.Scanner.Inputs;

namespace DriverAudit.Scanner.RulePack;

/// <summary>What rules a command loads: the embedded pack or not, rule files and folders, named hash lists.</summary>
/// <param name="Paths">Rule files or folders (relative to the working directory).</param>
/// <param name="IncludeDefault">Load the pack embedded in driveraudit.</param>
internal sealed record RulePackRequest(IReadOnlyList<string> Paths, bool IncludeDefault)
{
    /// <summary>When set, the loader also adds every error it prints here (<c>rules validate --format json</c>).</summary>
    public ICollection<RuleError>? Errors { get; init; }

    /// <summary>Named lists for <c>@name</c> references: name → absolute file path.</summary>
    public IReadOnlyDictionary<string, string> HashLists { get; init; } = new Dictionary<string, string>();

    /// <summary>The given paths are what the command is about (validate, test): an embedded rule they redefine is left out.</summary>
    public bool Focused { get; init; }

    /// <summary>Ends the error count line: "; nothing was scanned" for commands that read inputs.</summary>
    public string Consequence { get; init; } = "";
}

/// <summary>
/// A loaded rule set together with the texts it came from, for the commands that show rules as written
/// (<c>rules show</c>, <c>rules docs</c>) or test the rules of particular files (<c>rules test</c>).
/// </summary>
internal sealed class RuleCatalog
{
    private readonly IReadOnlyDictionary<string, string> _textByPath;

    private RuleCatalog(RuleSet set, IReadOnlyDictionary<string, string> textByPath, IReadOnlySet<string> focus)
    {
        Set = set;
        _textByPath = textByPath;
        Focus = focus;
    }

    public RuleSet Set { get; }

    /// <summary>Source paths of the files the command is about (the <c>PATH</c> of validate/test); others only resolve references.</summary>
    public IReadOnlySet<string> Focus { get; }

    /// <summary>The rules of the focus files, or every rule when there is no focus.</summary>
    public IEnumerable<Rule> FocusRules => Focus.Count == 0 ? Set.Rules : Set.Rules.Where(r => Focus.Contains(r.SourcePath));

    public string? TextOf(Rule rule) => _textByPath.GetValueOrDefault(rule.SourcePath);

    /// <summary>
    /// The embedded pack (unless <paramref name="includeDefault"/> is false) plus <paramref name="extra"/>.
    /// Returns null after printing every error as file:line:column.
    /// </summary>
    public static RuleCatalog? Load(IReadOnlyList<string> extra, bool includeDefault, string workingDirectory, TextWriter error) =>
        Load(new RulePackRequest(extra, includeDefault), workingDirectory, error);

    /// <summary>
    /// The rules of <paramref name="paths"/>, with the embedded pack loaded beside them so <c>rule:</c>
    /// references to it resolve, as in a scan. An embedded rule whose id a given file also defines is left
    /// out: that file is its new version (validating or testing an edited copy of the pack).
    /// </summary>
    /// <param name="errors">When given, also receives every error printed (for JSON output).</param>
    public static RuleCatalog? LoadFocused(IReadOnlyList<string> paths, bool includeDefault, string workingDirectory, TextWriter error, ICollection<RuleError>? errors = null) =>
        Load(new RulePackRequest(paths, includeDefault) { Focused = true, Errors = errors }, workingDirectory, error);

    /// <summary>
    /// The one rule-pack loader: every command (scan, inventory, inspect, rules …) loads its rules here, so they
    /// accept and refuse the same rule sets. Hash lists: <c>@name</c> from <see cref="RulePackRequest.HashLists"/>,
    /// a path relative to the rule file. Warnings of user rule files (a named list nobody supplied) are printed;
    /// the embedded pack's named lists are optional by design (DA6001 is silent without one). Returns null after
    /// printing every error as file:line:column and a count line ending in <see cref="RulePackRequest.Consequence"/>.
    /// </summary>
    /// <param name="workingDirectory">What relative rule paths (and embedded rules' list paths) are relative to.</param>
    /// <param name="error">Where warnings and errors are printed.</param>
    public static RuleCatalog? Load(RulePackRequest request, string workingDirectory, TextWriter error)
    {
        var errors = new List<RuleError>();
        foreach (var (name, file) in request.HashLists)
            if (ArgumentFile.Refusal(file) is { } why) errors.Add(new RuleError(file, 1, 1, $"hash list '{name}' {why}"));
        var given = new List<RuleSource>();
        foreach (var path in request.Paths)
            given.AddRange(RuleSources.FromPath(Path.IsPathRooted(path) ? path : Path.Combine(workingDirectory, path), errors));
        var sources = new List<RuleSource>();
        if (request.IncludeDefault)
        {
            var redefined = request.Focused ? given.Select(s => DeclaredId(s.Text)).OfType<string>().ToHashSet(StringComparer.Ordinal) : [];
            sources.AddRange(RuleSources.Embedded().Where(s => DeclaredId(s.Text) is not { } id || !redefined.Contains(id)));
        }
        sources.AddRange(given);
        if (sources.Count == 0 && errors.Count == 0)
            errors.Add(new RuleError("(command line)", 1, 1, "no rules: --no-default-rules was given without --rules"));

        if (errors.Count == 0)
        {
            try
            {
                var set = RuleSet.Load(sources, new RuleLoadOptions { ResolveList = (reference, ruleFile) => ReadList(reference, ruleFile, request.HashLists, workingDirectory) });
                foreach (var w in set.Warnings.Where(w => !w.File.StartsWith("embedded:", StringComparison.Ordinal))) error.WriteLine(w.ToString());
                var texts = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var s in sources) texts.TryAdd(s.Path, s.Text);
                var focus = request.Focused ? given.Select(s => s.Path).ToHashSet(StringComparer.Ordinal) : new HashSet<string>();
                return new RuleCatalog(set, texts, focus);
            }
            catch (RuleLoadException e)
            {
                errors.AddRange(e.Errors);
            }
        }
        foreach (var e in errors)
        {
            request.Errors?.Add(e);
            error.WriteLine($"{e}");
        }
        error.WriteLine($"driveraudit: {errors.Count} rule error(s){request.Consequence}.");
        return null;
    }

    /// <summary>
    /// A hash list for a rule: <c>@name</c> from --hash-list / the config's hash-lists, else a path relative to the
    /// rule file (to the working directory for embedded rules). Null when it does not exist.
    /// </summary>
    private static ListContent? ReadList(string reference, string ruleFile, IReadOnlyDictionary<string, string> named, string workingDirectory)
    {
        string? path;
        if (reference.StartsWith('@'))
            path = named.TryGetValue(reference[1..], out var file) ? file : null;
        else
        {
            var baseDir = ruleFile.StartsWith("embedded:", StringComparison.Ordinal) ? workingDirectory : Path.GetDirectoryName(Path.GetFullPath(ruleFile))!;
            path = Path.GetFullPath(Path.Combine(baseDir, reference));
        }
        if (path is null || FileKinds.Of(path) == FileKind.Missing) return null;
        try { return new ListContent(ArgumentFile.ReadAllText(path, ArgumentFile.MaxHashListBytes, "hash list"), path); }
        catch (ArgumentFileException e) { return new ListContent("", path, e.Reason); }
    }

    /// <summary>
    /// The top-level <c>id:</c> of a rule text, or null when the text cannot be read that far (the loader
    /// will say why). Read by the one YAML reader, with a rule file's limits.
    /// </summary>
    internal static string? DeclaredId(string text) =>
        RootMapping(text)?.Entries.FirstOrDefault(e => e.Key.Value == "id").Value is YamlScalar { IsNull: false } id ? id.Value : null;

    /// <summary>
    /// The <c>match:</c> entry of a rule exactly as written (key included, comments kept, indentation as in
    /// the file), or null when the text is unavailable.
    /// </summary>
    public string? MatchSource(Rule rule) => TextOf(rule) is { } text ? MatchSource(text) : null;

    internal static string? MatchSource(string text)
    {
        if (RootMapping(text) is not { } map) return null;
        var entries = map.Entries;
        for (int i = 0; i < entries.Count; i++)
        {
            if (entries[i].Key.Value != "match") continue;
            // The entry runs to the next top-level key, minus the blank and comment lines that belong to what follows.
            int from = Offset(text, entries[i].Key);
            int to = i + 1 < entries.Count ? Offset(text, entries[i + 1].Key) : text.Length;
            var lines = text[from..Math.Max(from, to)].Replace("\r\n", "\n").TrimEnd().Split('\n');
            int last = lines.Length - 1;
            while (last > 0 && (lines[last].TrimStart().StartsWith('#') || lines[last].Trim().Length == 0)) last--;
            return string.Join("\n", lines.Take(last + 1)).TrimEnd();
        }
        return null;
    }

    /// <summary>The root mapping of a rule text, or null when it is not one readable mapping (errors are the loader's to report).</summary>
    private static YamlMapping? RootMapping(string text) =>
        YamlTreeReader.Read(text, YamlFileKind.RuleFile, static (_, _, _) => { }) as YamlMapping;

    /// <summary>The character offset of a node's 1-based line and column in <paramref name="text"/>.</summary>
    private static int Offset(string text, YamlNode node)
    {
        int offset = 0;
        for (int line = 1; line < node.Line && offset < text.Length; line++)
        {
            int next = text.IndexOf('\n', offset);
            if (next < 0) return text.Length;
            offset = next + 1;
        }
        return Math.Min(text.Length, offset + node.Column - 1);
    }
}
