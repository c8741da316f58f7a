using DriverAudit.Rules.Yaml;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.RulePack;

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

    /// <summary>The one YAML reader (<see cref="YamlTreeReader"/>) with a config file's limits and words; an empty file is an empty config.</summary>
    private static readonly YamlFileKind Kind = new("a config file", "a config file", MaxChars, MaxDepth);

    private static YamlNode? ReadRoot(string text, string path, List<ConfigError> errors) =>
        YamlTreeReader.Read(text, Kind, (line, column, message) => errors.Add(new ConfigError(path, line, column, message)));

    /// <summary>Walks the root mapping; every problem is recorded with its position, reading goes on.</summary>
    private sealed class Reader(string path, List<ConfigError> errors)
    {
        private readonly string _folder = System.IO.Path.GetDirectoryName(path) ?? ".";

        public ConfigFile Read(YamlNode root)
        {
            if (root is YamlScalar { IsNull: true }) return new ConfigFile { Path = path };
            if (root is not YamlMapping map)
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
            foreach (var (keyNode, value) in map.Entries)
            {
                var key = keyNode.Value;
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
            $"{System.IO.Path.GetFileName(path)}:{node.Line}:{node.Column}: '{key}'";

        private string? Scalar(YamlNode node, string key)
        {
            if (node is YamlScalar { Value: { Length: > 0 } s }) return s;
            Error(node, $"'{key}' must be a word");
            return null;
        }

        /// <summary>One string or a list of strings.</summary>
        private IEnumerable<(string Value, YamlNode Node)> Strings(YamlNode node, string key)
        {
            if (node is YamlScalar { Value: { Length: > 0 } one }) return [(one, node)];
            if (node is YamlSequence list)
            {
                var items = new List<(string, YamlNode)>();
                foreach (var item in list.Items)
                {
                    if (item is YamlScalar { Value: { Length: > 0 } s }) items.Add((s, item));
                    else Error(item, $"'{key}' entries must be strings");
                }
                return items;
            }
            Error(node, $"'{key}' must be a string or a list of strings");
            return [];
        }

        private IEnumerable<(YamlScalar Key, YamlScalar Value)> Pairs(YamlNode node, string key, string expected)
        {
            if (node is not YamlMapping map)
            {
                Error(node, $"'{key}' must be {expected}");
                return [];
            }
            var pairs = new List<(YamlScalar, YamlScalar)>();
            foreach (var (k, v) in map.Entries)
            {
                if (k.Value.Length > 0 && v is YamlScalar { Value.Length: > 0 } vs) pairs.Add((k, vs));
                else Error(k.Value.Length > 0 ? v : k, $"'{key}' must be {expected}");
            }
            return pairs;
        }

        private void Error(YamlNode node, string message) => errors.Add(new ConfigError(path, node.Line, node.Column, message));
    }
}
