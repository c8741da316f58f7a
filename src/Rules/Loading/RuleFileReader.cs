using System.Globalization;
using System.Text.RegularExpressions;
using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Messages;
using DriverAudit.Rules.Predicates;
using DriverAudit.Rules.Yaml;

namespace DriverAudit.Rules.Loading;

/// <summary>One rule file read and checked on its own; cross-file checks happen in <see cref="RuleLoader"/>.</summary>
internal sealed record RuleDraft(
    Rule Rule, Predicate Match, MessageTemplate Message, YamlNode IdNode, YamlNode NameNode, YamlNode MessageNode,
    IReadOnlyList<RuleRefNode> References, ErrorSink Errors);

/// <summary>Reads the metadata and match tree of one rule file.</summary>
internal static partial class RuleFileReader
{
    public const int MaxDescription = 1024;
    public const int MaxTitle = 1024;
    public const int MaxTags = 10;

    private static readonly string[] Required = ["id", "name", "title", "level", "precision", "description", "help", "message", "match"];
    private static readonly string[] Optional = ["security-severity", "tags", "cwe", "references", "examples", "report"];
    private static readonly string[] AllKeys = [.. Required, .. Optional];

    /// <summary>Returns a draft when the file is valid on its own; otherwise null (errors are in <paramref name="errors"/>).</summary>
    public static RuleDraft? Read(RuleSource source, ErrorSink errors, ListResolver lists, out string? declaredId)
    {
        declaredId = null;
        var root = YamlTreeReader.Read(source.Text, errors);
        if (root is null) return null;
        var read = new NodeReader(errors);
        if (read.Mapping(root, "a rule file") is not { } map) return null;

        read.OnlyKeys(map, "a rule", AllKeys);
        var fields = map.Entries.ToDictionary(e => e.Key.Value, e => e.Value, StringComparer.Ordinal);
        foreach (var key in Required)
            if (!fields.ContainsKey(key)) errors.Add(map, $"missing required key '{key}'");

        YamlNode? Field(string key) => fields.GetValueOrDefault(key);
        int before = errors.Count;

        string? id = Field("id") is { } idNode ? Id(read, idNode) : null;
        declaredId = id;
        string? name = Field("name") is { } nameNode ? Name(read, nameNode) : null;
        string? title = Field("title") is { } titleNode ? Title(read, titleNode) : null;
        RuleLevel? level = Field("level") is { } levelNode ? Enum(read, levelNode, "'level'", LevelNames) : null;
        string? precision = Field("precision") is { } precisionNode ? Precision(read, precisionNode) : null;
        string? description = Field("description") is { } descriptionNode ? Description(read, descriptionNode) : null;
        string? help = Field("help") is { } helpNode ? read.String(helpNode, "'help'")?.Trim() : null;
        double? severity = Field("security-severity") is { } severityNode ? Severity(read, severityNode) : null;
        var tags = Field("tags") is { } tagsNode ? Tags(read, tagsNode) : [];
        var cwe = Field("cwe") is { } cweNode ? Cwe(read, cweNode) : [];
        if (tags.Count + cwe.Count > MaxTags && tags.Count <= MaxTags)
            errors.Add(Field("tags") ?? Field("cwe")!, $"{tags.Count} tags and {cwe.Count} CWE ids make {tags.Count + cwe.Count} SARIF tags (each CWE becomes external/cwe/cwe-N); GitHub keeps {MaxTags}");
        var references = Field("references") is { } refNode ? References(read, refNode) : [];
        var (matchExamples, noMatchExamples) = Field("examples") is { } exNode ? Examples(read, exNode) : ([], []);
        RuleReport report = Field("report") is { } reportNode ? Enum(read, reportNode, "'report'", ReportNames) ?? RuleReport.PerAnchor : RuleReport.PerAnchor;

        var compiler = new MatchCompiler(read, lists);
        var match = Field("match") is { } matchNode ? compiler.Compile(matchNode) : null;

        MessageTemplate? message = null;
        if (Field("message") is { } messageNode && read.String(messageNode, "'message'") is { } messageText)
            message = Message(messageNode, messageText.Trim(), errors);

        if (errors.Count > before || id is null || name is null || title is null || level is null || precision is null
            || description is null || help is null || match is null || message is null)
            return null;

        var rule = new Rule
        {
            Id = id, Name = name, Title = title, Level = level.Value, SecuritySeverity = severity, Precision = precision,
            Tags = tags, Cwe = cwe, References = references, Description = description, Help = help,
            MessageTemplate = message.Text, SourcePath = source.Path, MatchExamples = matchExamples,
            NoMatchExamples = noMatchExamples, Report = report,
        };
        return new RuleDraft(rule, match, message, Field("id")!, Field("name")!, Field("message")!, compiler.References, errors);
    }

    private static readonly Dictionary<string, RuleLevel> LevelNames = new() { ["note"] = RuleLevel.Note, ["warning"] = RuleLevel.Warning, ["error"] = RuleLevel.Error };
    private static readonly string[] PrecisionNames = ["very-high", "high", "medium", "low"];
    private static readonly Dictionary<string, RuleReport> ReportNames = new() { ["per-anchor"] = RuleReport.PerAnchor, ["per-image"] = RuleReport.PerImage };

    private static T? Enum<T>(NodeReader read, YamlNode node, string what, Dictionary<string, T> names) where T : struct
    {
        if (read.String(node, what) is not { } text) return null;
        if (names.TryGetValue(text, out var value)) return value;
        read.Errors.Add(node, $"{what} must be one of {string.Join(", ", names.Keys)}, found '{text}'");
        return null;
    }

    private static string? Precision(NodeReader read, YamlNode node)
    {
        if (read.String(node, "'precision'") is not { } text) return null;
        if (PrecisionNames.Contains(text)) return text;
        read.Errors.Add(node, $"'precision' must be one of {string.Join(", ", PrecisionNames)}, found '{text}'");
        return null;
    }

    private static string? Id(NodeReader read, YamlNode node)
    {
        if (read.String(node, "'id'") is not { } id) return null;
        if (RuleIds.IsValid(id)) return id;
        read.Errors.Add(node, RuleIds.Explain(id));
        return null;
    }

    private static string? Name(NodeReader read, YamlNode node)
    {
        if (read.String(node, "'name'") is not { } name) return null;
        if (PascalCase().IsMatch(name)) return name;
        read.Errors.Add(node, $"'name' must be PascalCase letters and digits, at most 64 characters (e.g. UntaggedPoolAllocation), found '{name}'");
        return null;
    }

    private static string? Title(NodeReader read, YamlNode node)
    {
        if (read.String(node, "'title'")?.Trim() is not { } title) return null;
        if (title.Contains('\n')) { read.Errors.Add(node, "'title' must be a single line"); return null; }
        if (title.Length > MaxTitle) { read.Errors.Add(node, $"'title' is {title.Length} characters long; SARIF shortDescription allows {MaxTitle}"); return null; }
        return title;
    }

    private static string? Description(NodeReader read, YamlNode node)
    {
        if (read.String(node, "'description'")?.Trim() is not { } text) return null;
        if (text.Length <= MaxDescription) return text;
        read.Errors.Add(node, $"'description' is {text.Length} characters long; SARIF fullDescription allows {MaxDescription}");
        return null;
    }

    private static double? Severity(NodeReader read, YamlNode node)
    {
        if (read.Number(node, "'security-severity'") is not double value) return null;
        if (value is >= 0.1 and <= 10.0) return value;
        read.Errors.Add(node, $"'security-severity' must be between 0.1 and 10.0, found {value.ToString(CultureInfo.InvariantCulture)}");
        return null;
    }

    private static IReadOnlyList<string> Tags(NodeReader read, YamlNode node)
    {
        if (read.Sequence(node, "'tags'") is not { } seq) return [];
        if (seq.Items.Count > MaxTags) read.Errors.Add(node, $"{seq.Items.Count} tags; GitHub keeps at most {MaxTags}");
        var tags = new List<string>();
        foreach (var item in seq.Items)
        {
            if (read.String(item, "a tag") is not { } tag) continue;
            if (!TagSyntax().IsMatch(tag)) read.Errors.Add(item, $"tag '{tag}' must be lowercase letters, digits, '-', '.' or '/'");
            else if (tags.Contains(tag)) read.Errors.Add(item, $"duplicate tag '{tag}'");
            else tags.Add(tag);
        }
        return tags;
    }

    private static IReadOnlyList<int> Cwe(NodeReader read, YamlNode node)
    {
        if (read.Sequence(node, "'cwe'") is not { } seq) return [];
        var ids = new List<int>();
        foreach (var item in seq.Items)
        {
            if (read.Integer(item, "a CWE id (a number such as 401)", 1, 99_999) is not long id) continue;
            if (ids.Contains((int)id)) read.Errors.Add(item, $"duplicate CWE {id}");
            else ids.Add((int)id);
        }
        return ids;
    }

    private static IReadOnlyList<string> References(NodeReader read, YamlNode node)
    {
        if (read.Sequence(node, "'references'") is not { } seq) return [];
        var urls = new List<string>();
        foreach (var item in seq.Items)
        {
            if (read.String(item, "a reference") is not { } url) continue;
            if (Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "https" or "http") urls.Add(url);
            else read.Errors.Add(item, $"reference '{url}' must be an absolute http(s) URL");
        }
        return urls;
    }

    private static (IReadOnlyList<string>, IReadOnlyList<string>) Examples(NodeReader read, YamlNode node)
    {
        if (read.Mapping(node, "'examples'") is not { } map) return ([], []);
        read.OnlyKeys(map, "'examples'", ["match", "no-match"]);
        List<string> match = [], noMatch = [];
        foreach (var (k, v) in map.Entries)
        {
            var target = k.Value switch { "match" => match, "no-match" => noMatch, _ => null };
            if (target is null || read.Strings(v, $"'{k.Value}'") is not { } paths) continue;
            foreach (var (at, path) in paths)
            {
                if (path.Contains('\\') || path.StartsWith('/') || path.Contains(':') || path.Split('/').Contains(".."))
                    read.Errors.Add(at, $"example path '{path}' must be relative to the repository root, with forward slashes and no '..'");
                else target.Add(path);
            }
        }
        return (match, noMatch);
    }

    private static MessageTemplate? Message(YamlNode node, string text, ErrorSink errors)
    {
        var problems = new List<string>();
        var template = MessageTemplate.Parse(text, problems);
        if (text.Length > 0 && !text.EndsWith('.') && !text.EndsWith('!') && !text.EndsWith('?'))
            problems.Add("'message' must be a complete sentence ending with '.', '!' or '?'");
        if (text.Contains('\n')) problems.Add("'message' must be a single line");
        foreach (var p in problems) errors.Add(node, p);
        return problems.Count == 0 ? template : null;
    }

    [GeneratedRegex("^[A-Z][A-Za-z0-9]{1,63}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex PascalCase();

    [GeneratedRegex("^[a-z0-9][a-z0-9./-]{0,63}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex TagSyntax();
}
