using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Lists;
using DriverAudit.Rules.Yaml;

namespace DriverAudit.Rules.Loading;

/// <summary>
/// Resolves hash-list references through the host's hook, parses each list once per load, and records
/// warnings for named lists nobody supplied.
/// </summary>
internal sealed class ListResolver(RuleLoadOptions? options)
{
    private readonly Dictionary<(string Reference, string RulePath), (HashList? List, string? Error, bool Missing)> _cache = [];

    private readonly HashSet<string> _warned = new(StringComparer.Ordinal);

    /// <summary>One warning per missing named list, at its first reference.</summary>
    public List<RuleWarning> Warnings { get; } = [];

    public static bool IsNamed(string reference) => reference.StartsWith('@');

    /// <summary>The list, or null after recording an error at <paramref name="at"/>.</summary>
    public HashList? Resolve(string reference, YamlNode at, ErrorSink errors)
    {
        bool named = IsNamed(reference);
        var key = (reference, named ? "" : errors.File);
        if (!_cache.TryGetValue(key, out var entry))
        {
            var content = options?.ResolveList?.Invoke(reference, errors.File);
            if (content is null) entry = (null, null, true);
            else if (content.Error is not null) entry = (null, $"hash list {content.Name} {content.Error}", false);
            else
            {
                var list = HashListParser.Parse(content.Text, out var error);
                entry = (list, error is null ? null : $"hash list {content.Name}: {error}", false);
            }
            _cache[key] = entry;
        }
        if (entry.Missing)
        {
            if (named)
            {
                if (_warned.Add(reference))
                    Warnings.Add(new RuleWarning(errors.File, at.Line, at.Column,
                    $"hash list {reference} was not supplied; the feature matches nothing until it is (scanner: --hash-list {reference[1..]}=FILE)"));
                return HashList.Empty;
            }
            errors.Add(at, options?.ResolveList is null
                ? $"hash list '{reference}' cannot be read: no list resolver is configured"
                : $"hash list '{reference}' not found");
            return null;
        }
        if (entry.Error is not null) { errors.Add(at, entry.Error); return null; }
        return entry.List;
    }
}
