using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.RulePack;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace DriverAudit.Scanner.Configuration;

/// <summary>A configuration error at file:line:column (1-based).</summary>
internal sealed record ConfigError(string File, int Line, int Column, string Message)
{
    public override string ToString() => $"{File}:{Line}:{Column}: {Message}";
}

internal sealed class ConfigException(IReadOnlyList<ConfigError> errors)
    : Exception(string.Join(Environment.NewLine, errors))
{
    public IReadOnlyList<ConfigError> Errors { get; } = errors;
}

/// <summary>
/// <c>driveraudit.yaml</c>: scan settings kept in the repository. Paths in it (<c>rules</c>,
/// <c>hash-lists</c>) are relative to the file; globs (<c>include</c>, <c>exclude</c>) apply inside the
/// scanned folders as on the command line.
/// </summary>
internal sealed record ConfigFile
{
    public const string DefaultName = "driveraudit.yaml";

    /// <summary>A config file is a few lines; refuse megabytes before parsing them.</summary>
    public const int MaxChars = 256 * 1024;

    /// <summary>Deeper than any sensible config; bounds the model's recursion on hostile input.</summary>
    public const int MaxDepth = 16;

    private static readonly string[] Keys = ["only", "disable", "level", "include", "exclude", "rules", "fail-on", "hash-lists", "suppressions"];

    /// <summary>The file read (full path); null for <see cref="None"/>.</summary>
    public string? Path { get; init; }
    public SelectionLayer Selection { get; init; } = SelectionLayer.Empty;
    public IReadOnlyList<string> Include { get; init; } = [];
    public IReadOnlyList<string> Exclude { get; init; } = [];
    /// <summary>Extra rule files or folders, as full paths.</summary>
    public IReadOnlyList<string> Rules { get; init; } = [];
    /// <summary>error | warning | note | none, or null when not set.</summary>
    public string? FailOn { get; init; }
    /// <summary>Named hash lists (e.g. <c>known-vulnerable</c>) → full path; parsed here, used by hash rules.</summary>
    public IReadOnlyDictionary<string, string> HashLists { get; init; } = new SortedDictionary<string, string>(StringComparer.Ordinal);
    /// <summary>Accepted risks (<see cref="ConfigSuppressions"/>), located at this file's full path.</summary>
    public IReadOnlyList<Engine.Suppression> Suppressions { get; init; } = [];

    public static ConfigFile None { get; } = new();

    /// <summary>
    /// The explicit <paramref name="explicitPath"/> (which must exist), else <c>driveraudit.yaml</c> in
    /// <paramref name="scanRoot"/> when present, else <see cref="None"/>. Throws <see cref="ConfigException"/>.
    /// </summary>
    public static ConfigFile Discover(string? explicitPath, string scanRoot)
    {
        if (explicitPath is not null)
        {
            if (FileKinds.Of(explicitPath) == FileKind.Missing) throw new ConfigException([new ConfigError(explicitPath, 1, 1, "no such config file")]);
            return Load(explicitPath);
        }
        var candidate = System.IO.Path.Combine(scanRoot, DefaultName);
        return FileKinds.Of(candidate) == FileKind.Missing ? None : Load(candidate);
    }

    public static ConfigFile Load(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        string text;
        try
        {
            text = ArgumentFile.ReadAllText(full, ArgumentFile.MaxConfigBytes, "config file");
        }
        catch (ArgumentFileException e)
        {
            throw new ConfigException([new ConfigError(path, 1, 1, "the config file " + e.Reason)]);
        }
        return Parse(text, full);
    }

    /// <summary>Parses config text; <paramref name="path"/> names it in errors and anchors its relative paths.</summary>
    public static ConfigFile Parse(string text, string path)
    {
        var errors = new List<ConfigError>();
        var root = ReadRoot(text, path, errors);
        if (errors.Count > 0) throw new ConfigException(errors);
        if (root is null) return new ConfigFile { Path = path };
        var reader = new Reader(path, errors);
        var config = reader.Read(root);
        if (errors.Count > 0) throw new ConfigException(errors);
        return config;
    }

    /// <summary>
    /// Checks the event stream first (tags, anchors, aliases, depth, one document), so the representation
    /// model only ever sees plain data, then loads it. Null for an empty file.
    /// </summary>
    private static YamlNode? ReadRoot(string text, string path, List<ConfigError> errors)
    {
        if (text.Length > MaxChars)
        {
            errors.Add(new ConfigError(path, 1, 1, $"the file is {text.Length} characters long; a config file may hold at most {MaxChars}"));
            return null;
        }
        try
        {
            var parser = new Parser(new StringReader(text));
            int depth = 0, documents = 0;
            while (parser.MoveNext())
            {
                var evt = parser.Current!;
                switch (evt)
                {
                    case DocumentStart when ++documents > 1:
                        errors.Add(At(path, evt.Start, "the file holds more than one YAML document"));
                        return null;
                    case AnchorAlias alias:
                        errors.Add(At(path, evt.Start, $"YAML aliases (*{alias.Value}) are not allowed in a config file"));
                        return null;
                    case NodeEvent node when !node.Tag.IsEmpty:
                        errors.Add(At(path, evt.Start, $"YAML tags ({node.Tag}) are not allowed in a config file"));
                        return null;
                    case NodeEvent node when !node.Anchor.IsEmpty:
                        errors.Add(At(path, evt.Start, $"YAML anchors (&{node.Anchor}) are not allowed in a config file"));
                        return null;
                }
                if (evt is SequenceStart or MappingStart && ++depth > MaxDepth)
                {
                    errors.Add(At(path, evt.Start, $"nesting deeper than {MaxDepth} levels"));
                    return null;
                }
                if (evt is SequenceEnd or MappingEnd) depth--;
            }
            var stream = new YamlStream();
            stream.Load(new StringReader(text));
            return stream.Documents.Count == 0 ? null : stream.Documents[0].RootNode;
        }
        catch (YamlException e)
        {
            errors.Add(At(path, e.Start, "invalid YAML: " + Clean(e.Message)));
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or OverflowException)
        {
            // YamlDotNet throws these on some malformed input; keep them a config error, never a crash.
            errors.Add(new ConfigError(path, 1, 1, "invalid YAML: " + e.Message));
            return null;
        }
    }

    private static ConfigError At(string path, Mark mark, string message) =>
        new(path, (int)Math.Clamp(mark.Line, 1, int.MaxValue), (int)Math.Clamp(mark.Column, 1, int.MaxValue), message);

    /// <summary>YamlDotNet prefixes messages with its own "(Line: 1, Col: 2, ...)"; the position is already given.</summary>
    private static string Clean(string message)
    {
        int close = message.StartsWith("(Line:", StringComparison.Ordinal) ? message.IndexOf("): ", StringComparison.Ordinal) : -1;
        return close > 0 ? message[(close + 3)..] : message;
    }

    /// <summary>Walks the root mapping; every problem is recorded with its position, reading goes on.</summary>
    private sealed class Reader(string path, List<ConfigError> errors)
    {
        private readonly string _folder = System.IO.Path.GetDirectoryName(path) ?? ".";

        public ConfigFile Read(YamlNode root)
        {
            if (root is YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" }) return new ConfigFile { Path = path };
            if (root is not YamlMappingNode map)
            {
                Error(root, $"the config must be a mapping of settings ({string.Join(", ", Keys)})");
                return new ConfigFile { Path = path };
            }

            List<RulePattern> only = [], disable = [];
            List<LevelOverride> levels = [];
            List<string> include = [], exclude = [], rules = [];
            string? failOn = null;
            var hashLists = new SortedDictionary<string, string>(StringComparer.Ordinal);
            IReadOnlyList<Engine.Suppression> suppressions = [];
            foreach (var (keyNode, value) in map.Children)
            {
                if (keyNode is not YamlScalarNode { Value: { } key })
                {
                    Error(keyNode, "keys must be plain words");
                    continue;
                }
                switch (key)
                {
                    case "only":
                        foreach (var (s, node) in Strings(value, key)) only.AddRange(RulePattern.Split(s, Origin(node, key)));
                        break;
                    case "disable":
                        foreach (var (s, node) in Strings(value, key)) disable.AddRange(RulePattern.Split(s, Origin(node, key)));
                        break;
                    case "include":
                        include.AddRange(Strings(value, key).Select(x => x.Value));
                        break;
                    case "exclude":
                        exclude.AddRange(Strings(value, key).Select(x => x.Value));
                        break;
                    case "rules":
                        rules.AddRange(Strings(value, key).Select(x => Resolve(x.Value)));
                        break;
                    case "level":
                        foreach (var (k, v) in Pairs(value, key, "a mapping of rule id or pattern to level, e.g. {DA1003: error}"))
                        {
                            if (RuleSelector.TryParseLevel(v.Value!, out var level))
                                levels.Add(new LevelOverride(new RulePattern(k.Value!.Trim(), Origin(k, "level")), level));
                            else
                                Error(v, $"level must be note, warning or error, found '{v.Value}'");
                        }
                        break;
                    case "fail-on":
                        if (Scalar(value, key) is { } f)
                        {
                            if (f is "error" or "warning" or "note" or "none") failOn = f;
                            else Error(value, $"'fail-on' must be error, warning, note or none, found '{f}'");
                        }
                        break;
                    case "hash-lists":
                        foreach (var (k, v) in Pairs(value, key, "a mapping of list name to file, e.g. {known-vulnerable: lists/loldrivers.csv}"))
                            hashLists[k.Value!] = Resolve(v.Value!);
                        break;
                    case "suppressions":
                        suppressions = ConfigSuppressions.Read(value, path, Error);
                        break;
                    default:
                        Error(keyNode, $"unknown key '{key}'; expected one of: {string.Join(", ", Keys)}");
                        break;
                }
            }
            return new ConfigFile
            {
                Path = path,
                Selection = new SelectionLayer(only, disable, levels),
                Include = include,
                Exclude = exclude,
                Rules = rules,
                FailOn = failOn,
                HashLists = hashLists,
                Suppressions = suppressions,
            };
        }

        private string Resolve(string relative) =>
            System.IO.Path.GetFullPath(System.IO.Path.IsPathRooted(relative) ? relative : System.IO.Path.Combine(_folder, relative));

        private string Origin(YamlNode node, string key) =>
            $"{System.IO.Path.GetFileName(path)}:{node.Start.Line}:{node.Start.Column}: '{key}'";

        private string? Scalar(YamlNode node, string key)
        {
            if (node is YamlScalarNode { Value: { Length: > 0 } s }) return s;
            Error(node, $"'{key}' must be a word");
            return null;
        }

        /// <summary>One string or a list of strings.</summary>
        private IEnumerable<(string Value, YamlNode Node)> Strings(YamlNode node, string key)
        {
            if (node is YamlScalarNode { Value: { Length: > 0 } one }) return [(one, node)];
            if (node is YamlSequenceNode list)
            {
                var items = new List<(string, YamlNode)>();
                foreach (var item in list.Children)
                {
                    if (item is YamlScalarNode { Value: { Length: > 0 } s }) items.Add((s, item));
                    else Error(item, $"'{key}' entries must be strings");
                }
                return items;
            }
            Error(node, $"'{key}' must be a string or a list of strings");
            return [];
        }

        private IEnumerable<(YamlScalarNode Key, YamlScalarNode Value)> Pairs(YamlNode node, string key, string expected)
        {
            if (node is not YamlMappingNode map)
            {
                Error(node, $"'{key}' must be {expected}");
                return [];
            }
            var pairs = new List<(YamlScalarNode, YamlScalarNode)>();
            foreach (var (k, v) in map.Children)
            {
                if (k is YamlScalarNode { Value: { Length: > 0 } } ks && v is YamlScalarNode { Value: { Length: > 0 } } vs) pairs.Add((ks, vs));
                else Error(k is YamlScalarNode ? v : k, $"'{key}' must be {expected}");
            }
            return pairs;
        }

        private void Error(YamlNode node, string message) => errors.Add(At(path, node.Start, message));
    }
}
